"""hub: a streaming media server compatible with ipchub."""

__version__ = "0.1.0"
