"""``zcp autodl ...``: the AutoDL commands, as a click group the ``zcp`` CLI mounts."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from autodl.dataset import load_dataset
from autodl.writer import format_dataset, format_image_folder


@click.group("autodl")
def autodl_group() -> None:
    """AutoDL challenge datasets (TFRecord format, read without TensorFlow)."""


@autodl_group.command("format")
@click.option("--from-folder", "folder", type=click.Path(exists=True, file_okay=False,
              path_type=Path), help="Image folder root/<class>/<image> (PNG/JPEG kept as is).")
@click.option("--from-npz", "npz", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="npz with x (N,H,W,C) or (N,T,H,W,C), y (N,) int or (N,C) 0/1, "
                   "optional classes (names).")
@click.option("--name", default=None, help="Dataset name (default: the folder/npz stem).")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory in which <name>/ is created (it must not exist yet).")
@click.option("--test-fraction", default=0.2, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of the examples in the test split.")
@click.option("--seed", default=0, show_default=True, help="Seed of the train/test split.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Read the written dataset back and compare it exactly.")
def format_cmd(folder: Path | None, npz: Path | None, name: str | None, out_dir: Path,
               test_fraction: float, seed: int, verify: bool) -> None:
    """Write a dataset in the AutoDL format (TFRecords, metadata, .solution)."""
    if (folder is None) == (npz is None):
        raise click.UsageError("give exactly one of --from-folder and --from-npz")
    try:
        if folder is not None:
            root = format_image_folder(folder, out_dir, name, test_fraction=test_fraction,
                                       seed=seed, verify=verify)
        else:
            with np.load(npz, allow_pickle=False) as data:
                missing = {"x", "y"} - set(data.files)
                if missing:
                    raise click.UsageError(f"{npz} lacks array(s) {sorted(missing)}")
                classes = [str(c) for c in data["classes"]] if "classes" in data.files else None
                root = format_dataset(data["x"], data["y"], out_dir, name or npz.stem,
                                      classes=classes, test_fraction=test_fraction, seed=seed,
                                      verify=verify)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    train, test, _ = load_dataset(root)
    click.echo(f"wrote {root}: {len(train)} train / {len(test)} test examples, "
               f"{train.metadata.get_output_size()} classes"
               + (" (verified)" if verify else ""))


@autodl_group.command("info")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info_cmd(dataset_dir: Path) -> None:
    """Summarise an AutoDL dataset <name>/ after checking every record."""
    train, test, solution = load_dataset(dataset_dir)
    for split, dataset in (("train", train), ("test", test)):
        meta = dataset.metadata
        shapes = {example.x.shape for example in dataset.iter_examples()}
        shape_text = next(iter(shapes)) if len(shapes) == 1 else f"{len(shapes)} distinct shapes"
        click.echo(f"{split}: {len(dataset)} examples, format {meta.matrix_spec[0].format}, "
                   f"tensor shape {meta.get_tensor_shape()}, examples {shape_text}")
    names = [n or str(i) for i, n in enumerate(train.metadata.class_names())]
    click.echo(f"classes ({len(names)}): {', '.join(names)}")
    click.echo("solution: " + ("none" if solution is None else f"{solution.shape[0]} rows"))
