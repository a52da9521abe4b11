"""alarms stage."""
