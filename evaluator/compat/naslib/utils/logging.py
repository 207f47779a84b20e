"""``naslib.utils.logging``: ``setup_logger``."""

from __future__ import annotations

import contextlib
import logging
import sys


def setup_logger(output: str | None = None, name: str = "naslib") -> logging.Logger:
    """A logger writing to stderr (and to ``output`` when it can be opened) at DEBUG level."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
        if output:
            # a read-only submission directory: stderr only
            with contextlib.suppress(OSError):
                logger.addHandler(logging.FileHandler(output))
    return logger
