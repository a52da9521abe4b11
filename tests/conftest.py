"""Shared pytest set-up: fixture modules for real services."""

pytest_plugins = ["tests.fixtures.mosquitto", "tests.fixtures.rtsp", "tests.fixtures.postgres", "tests.fixtures.console"]
