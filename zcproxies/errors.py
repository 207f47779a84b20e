"""Exception types: every user-facing failure is one of these, with a message saying what to fix."""


class ZcpError(Exception):
    """Base class of all errors raised by zcp on bad input."""


class UnknownName(ZcpError, KeyError):
    """A space, task, dataset or proxy name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidArchitecture(ZcpError, ValueError):
    """An architecture encoding that is not a member of its search space."""


class DataError(ZcpError, OSError):
    """A data file that is missing, corrupt or not of the expected layout."""
