#!/usr/bin/env bash
# Vendors the console map's library into the package (run by hand when the pinned versions change;
# the built files are committed, so neither setup nor run time needs npm or a CDN).
#   Leaflet 1.9.4 (BSD-2-Clause) and Leaflet.markercluster 1.5.3 (MIT), from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET=1.9.4
CLUSTER=1.5.3
DEST=edge_agent/central/static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "leaflet@$LEAFLET" "leaflet.markercluster@$CLUSTER" >/dev/null)
for pkg in "$WORK"/*.tgz; do tar -xzf "$pkg" -C "$WORK" && mv "$WORK/package" "$WORK/$(basename "$pkg" .tgz)"; done
rm -rf "$DEST" && mkdir -p "$DEST"
cp "$WORK/leaflet-$LEAFLET/dist/leaflet.js" "$WORK/leaflet-$LEAFLET/dist/leaflet.css" "$DEST/"
cp "$WORK/leaflet-$LEAFLET/LICENSE" "$DEST/LICENSE.leaflet"
cp "$WORK/leaflet.markercluster-$CLUSTER/dist/leaflet.markercluster.js" \
   "$WORK/leaflet.markercluster-$CLUSTER/dist/MarkerCluster.css" \
   "$WORK/leaflet.markercluster-$CLUSTER/dist/MarkerCluster.Default.css" "$DEST/"
cp "$WORK/leaflet.markercluster-$CLUSTER/MIT-LICENCE.txt" "$DEST/LICENSE.markercluster" 2>/dev/null \
  || cp "$WORK/leaflet.markercluster-$CLUSTER/LICENSE"* "$DEST/LICENSE.markercluster"
(cd "$DEST" && sha256sum -- *.js *.css > SHA256SUMS)
echo "vendored leaflet $LEAFLET and leaflet.markercluster $CLUSTER into $DEST"
