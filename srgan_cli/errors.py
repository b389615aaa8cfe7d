"""Domain errors: the one exception family the CLI maps to a one-line message and an exit code."""


class SrganError(Exception):
    """A user-facing failure: bad input, bad model file, impossible request (exit 1)."""

    exit_code = 1


class UsageError(SrganError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = 2
