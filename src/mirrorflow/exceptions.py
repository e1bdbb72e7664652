"""Exceptions raised for problems a user can fix: bad config or bad input data."""

__all__ = ["MirrorflowError", "ConfigError", "InputDataError"]


class MirrorflowError(Exception):
    """Base class of every error mirrorflow raises on purpose."""


class ConfigError(MirrorflowError, ValueError):
    """A configuration value is invalid or inconsistent with the data."""


class InputDataError(MirrorflowError, ValueError):
    """An input file is missing, unreadable or malformed; the message names the file."""
