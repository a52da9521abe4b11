"""Configuration: pydantic models and the one YAML loader that maps errors to file:line."""
