"""The newer zero-cost proxies: ZiCo, MeCo, SWAP, AZ-NAS, TE-NAS and GradSign.

Importing this module registers the per-architecture proxies (defined in ``modern_*.py``):
``zico``, ``meco``, ``swap``, ``gradsign``, ``tenas_ntk``, ``tenas_lr``, ``az_expressivity``,
``az_progressivity``, ``az_trainability`` and ``az_complexity``. AZ-NAS and TE-NAS score an
architecture by its ranks among a population; ``aznas_population`` and ``tenas_population``
turn a table of per-architecture component scores into those scores. Definitions, sources and
every deviation from the authors' code: ``docs/proxies_modern.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zcproxies.proxies.modern_activation import meco, swap, tenas_lr
from zcproxies.proxies.modern_aznas import (
    az_complexity,
    az_expressivity,
    az_progressivity,
    az_trainability,
    aznas_components,
)
from zcproxies.proxies.modern_common import rank_combine
from zcproxies.proxies.modern_gradient import gradsign, tenas_ntk, zico

AZNAS_COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
TENAS_COMPONENTS = ("tenas_ntk", "tenas_lr")


def aznas_population(scores: pd.DataFrame) -> np.ndarray:
    """AZ-NAS score of each row: sum over the 4 components of log(rank / N), higher is better.

    ``scores`` has one row per architecture and the ``AZNAS_COMPONENTS`` columns (the
    registered proxies' values); ranks are ascending with ties averaged (scipy's ``rankdata``),
    as the authors' notebook. The best possible score is 0 (top rank in every component).
    """
    return rank_combine(scores, AZNAS_COMPONENTS, log=True)


def tenas_population(scores: pd.DataFrame) -> np.ndarray:
    """TE-NAS score of each row: rank of ``tenas_ntk`` + rank of ``tenas_lr``, higher is better.

    Ascending ranks with ties averaged; ``tenas_ntk`` is the negated condition number, so the
    best-conditioned NTK gets the top rank, as in AZ-NAS' NB201 port of TE-NAS.
    """
    return rank_combine(scores, TENAS_COMPONENTS, log=False)


__all__ = [
    "AZNAS_COMPONENTS",
    "TENAS_COMPONENTS",
    "az_complexity",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "aznas_components",
    "aznas_population",
    "gradsign",
    "meco",
    "swap",
    "tenas_lr",
    "tenas_ntk",
    "tenas_population",
    "zico",
]
