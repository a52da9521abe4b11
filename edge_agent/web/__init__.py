"""The shared web layer: log-in, sessions, CSRF, Host check, templates and bundled assets."""
