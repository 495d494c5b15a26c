"""Expected failures: the CLI prints their message as one line and exits non-zero."""


class ZooError(Exception):
    """Something the user can fix: missing data, a corrupt checkpoint, a run that exists."""

    exit_code = 1


class UsageError(ZooError):
    """The command was given something invalid: an unknown model, key, value or path."""

    exit_code = 2
