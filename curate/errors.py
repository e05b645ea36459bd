"""Errors a user sees. Each message says what went wrong, where, and what to do."""


class CurateError(Exception):
    """Base class for errors the CLI prints without a traceback (exit code 2)."""


class ConfigError(CurateError):
    """A configuration or argument was refused before any work started."""


class NoInputFiles(ConfigError):
    """The inputs named only directories, and they hold no files (a landing directory nothing has landed in)."""
