"""The one exception the scripts turn into a one-line message.

A `UserError` is a problem the user can fix (a missing file, a bad flag, a log directory that does
not match). Every script runs its `main` through `run_script`, which prints it as
`error: <message>` and exits with status 2, never with a traceback. Anything else is a bug in this
project and is allowed to raise.
"""

import sys


class UserError(Exception):
    """A problem with the user's input; the message says what is wrong and what to do."""


class DataError(UserError):
    """Data files that are missing, truncated, of the wrong dataset or otherwise unusable."""


def run_script(main):
    """Exit with main()'s status; a UserError becomes one line (status 2), Ctrl-C status 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except UserError as e:  # the user's to fix: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
