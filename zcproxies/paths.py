"""Where external data lives: one setting, ``ZCP_SHARED_DATA``, defaulting to ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ZCP_SHARED_DATA"


def shared_data_dir() -> Path:
    """Directory of the shared public data (never part of the repository).

    ``$ZCP_SHARED_DATA`` wins; otherwise ``../shared/data`` relative to the project root.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def have_shared_data() -> bool:
    """True when the shared data directory exists."""
    return shared_data_dir().is_dir()
