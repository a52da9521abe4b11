#!/usr/bin/env bash
# podman with the options this kind of machine needs, for `build`, `run` and `create`:
#   scripts/podman.sh run --rm -it localhost/edge-agent:x86 --version
# - runc: the default runtime (crun) fails on hybrid cgroups ("cgroups in hybrid mode not supported")
# - ulimits: podman's defaults exceed the hard limits of many CI machines ("setrlimit: Operation not
#   permitted"), and the nproc hard limit itself can be refused; 4096 is plenty for the agent
# Other subcommands pass through unchanged.
set -euo pipefail
cmd=${1:?usage: podman.sh build|run|create ARGS...}
shift
case "$cmd" in
  build|run|create)
    nofile=$(ulimit -Hn); { [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ]; } && nofile=20000
    nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; } && nproc=4096
    exec podman "$cmd" --runtime "$(command -v runc)" \
      --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@" ;;
  *) exec podman "$cmd" "$@" ;;
esac
