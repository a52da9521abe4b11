"""Shared pytest set-up: fixture modules for real services."""

pytest_plugins = ["tests.fixtures.mosquitto", "tests.fixtures.rtsp", "tests.fixtures.site", "tests.fixtures.postgres",
                  "tests.fixtures.console", "tests.fixtures.editor"]


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration needs real services: mark it so `-m "not integration"`
    runs the quick part alone, whether or not a file remembered its own marker."""
    import pytest

    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
