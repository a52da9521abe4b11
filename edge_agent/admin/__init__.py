"""What a technician runs around the agent: `check` (every file, cross-checked with the model and
the zone geometry), `check --probe` (cameras and broker reached for real), `schema` (the JSON
Schemas). It sits above the pipeline's stages, so it may use them all; nothing below imports it."""
