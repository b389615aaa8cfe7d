"""Domain errors: the one exception family the CLI maps to a one-line message and an exit code."""


class SrganError(Exception):
    """A user-facing failure: bad input, bad model file, impossible request (exit 1)."""

    exit_code = 1
    ends_process_at_once = False  # True: end without the interpreter's shutdown after the error line


class LostPeerError(SrganError):
    """A worker of a multi-worker run lost its peers (exit 1). TensorFlow's collective threads and pools are broken
    then, so the process ends at once after its error line: a normal interpreter shutdown can hang, or print their
    errors as tracebacks."""

    ends_process_at_once = True


class UsageError(SrganError):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = 2
