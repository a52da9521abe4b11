"""`edge-agent zones edit`: the technicians' zone editor (a local web page on the shared web layer)."""
