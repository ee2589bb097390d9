"""The `--help` layout of the project's scripts: every default shown once.

argparse's ArgumentDefaultsHelpFormatter appends "(default: X)" to every option, also to those
whose default is None and those whose help already says what the default is, so a reader saw
"(default: as trained) (default: None)", and "(default: False)" after every plain switch. This
one appends it only where it adds something.
"""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each default shown once (not for flags whose help states it, nor "False" for a switch); a
    newline starts a new line."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or (
                isinstance(action, argparse._StoreTrueAction)):  # a switch: off unless given
            return text
        return super()._get_help_string(action)

    def _split_lines(self, text, width):
        lines = []
        for part in text.split("\n"):
            lines += super()._split_lines(part, width)
        return lines
