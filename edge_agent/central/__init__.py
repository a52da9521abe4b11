"""Central command: store, ingest and alarm workflow behind the web console (the `[central]` extra)."""
