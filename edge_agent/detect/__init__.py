"""detect stage."""
