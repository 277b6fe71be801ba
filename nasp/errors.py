"""Errors a user can cause. The CLI turns each into one message and exit code 2."""


class NaspError(Exception):
    """Base class for every error caused by user input (bad config, missing data, ...)."""


class ConfigError(NaspError):
    """A config key or value is invalid."""


class RegistryError(NaspError, KeyError):
    """An unknown name was asked of a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class GenotypeError(NaspError):
    """A genotype does not fit its search space."""


class DataError(NaspError):
    """A dataset is missing, unreadable or malformed."""


class ResumeError(NaspError):
    """A run folder given to ``resume=`` cannot be resumed."""


class FileRefusedError(NaspError):
    """A file nasp will not read or write: a link, a FIFO, a device, a hard link, or larger than its bound."""
