"""edge-agent: edge computer vision for shoreline and railway cameras."""

__version__ = "0.1.0"
