"""The one exception the scripts turn into a one-line message.

A `UserError` is a problem the user can fix (a missing file, a bad flag, a log directory that does
not match). Every script runs its `main` through `run_script`, which prints it as
`error: <message>` and exits with status 2, never with a traceback. Anything else is a bug in this
project and is allowed to raise.
"""

import os
import sys


class UserError(Exception):
    """A problem with the user's input; the message says what is wrong and what to do."""


class DataError(UserError):
    """Data files that are missing, truncated, of the wrong dataset or otherwise unusable."""


def run_script(main):
    """Exit with main()'s status; a UserError becomes one line (status 2), Ctrl-C status 130,
    a reader that closed the pipe (`compare.py --print-commands | head`) status 141 as in a shell."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # Python would report the error again when it flushes stdout at exit: point stdout at
        # /dev/null first (the recipe of Python's documentation on SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except UserError as e:  # the user's to fix: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
