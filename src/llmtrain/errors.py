"""The error hierarchy. Every user mistake raises an `LLMTrainError` subclass whose message
names the thing, the value and the fix; the CLI prints it without a traceback and exits 2.
`assert` is kept for internal invariants only."""


class LLMTrainError(Exception):
    """Base class of the errors a user can cause and fix."""


class ConfigError(LLMTrainError):
    """A config key, value or combination is invalid."""


class DataError(LLMTrainError):
    """An input file or prepared data directory is missing, unreadable or inconsistent."""


class CheckpointError(LLMTrainError):
    """A checkpoint is missing, corrupt or does not match the run."""


class ExportError(LLMTrainError):
    """A model cannot be exported to the requested format."""
