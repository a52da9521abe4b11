"""Errors a user can act on. The CLI prints their message (no traceback) and exits 2."""


class EdgeAgentError(Exception):
    """Base of every error whose message tells the user what to fix."""


class ConfigError(EdgeAgentError):
    """One or more problems in the YAML files, each as `file:line: key: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ModelError(EdgeAgentError):
    """A model file is missing, truncated, of the wrong kind or fails its checksum."""


class SourceError(EdgeAgentError):
    """A video source cannot be opened or read; the message names the camera, never its password."""
