"""The one exception the scripts turn into a one-line message.

A `UserError` is a problem the user can fix (a missing file, a bad flag, a log directory that does
not match). `train.py` and `eval.py` print it as `error: <message>` and exit with status 2, never
with a traceback. Anything else is a bug in this project and is allowed to raise.
"""


class UserError(Exception):
    """A problem with the user's input; the message says what is wrong and what to do."""


class DataError(UserError):
    """Data files that are missing, truncated, of the wrong dataset or otherwise unusable."""
