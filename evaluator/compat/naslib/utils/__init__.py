"""``naslib.utils``: the helpers submissions use (``set_seed``, ``AttrDict``, ...)."""

from naslib.utils.logging import setup_logger
from naslib.utils.utils import (
    AttrDict,
    AverageMeter,
    accuracy,
    get_project_root,
    get_train_val_loaders,
    iter_flatten,
    set_seed,
)


def get_dataset_api(*args: object, **kwargs: object) -> None:
    """Benchmark tables are never visible to a submission (the evaluator keeps them)."""
    raise RuntimeError(
        "get_dataset_api: benchmark tables are not available to submissions in the evaluator"
    )


__all__ = [
    "AttrDict",
    "AverageMeter",
    "accuracy",
    "get_dataset_api",
    "get_project_root",
    "get_train_val_loaders",
    "iter_flatten",
    "set_seed",
    "setup_logger",
]
