"""illhub: a link aggregator and metadata harvester for the interlibrary loan community."""

from pipeline.version import __version__

__all__ = ["__version__"]
