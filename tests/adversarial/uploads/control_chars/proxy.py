"""Raises with a message full of what breaks outputs: NUL, terminal escapes, a bidi override,
Markdown pipes and backticks, a newline and a spreadsheet formula; prints it to stderr too."""

import sys

MESSAGE = 'NUL\x00 ESC\x1b[31m red \u202e rtl | pipe `tick`\n=HYPERLINK("http://x")'


def score(model, batch):
    print(MESSAGE, file=sys.stderr)
    raise ValueError(MESSAGE)
