"""patrol stage."""
