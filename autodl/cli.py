"""``zcp autodl ...``: the AutoDL commands, as a click group the ``zcp`` CLI mounts."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import click
import numpy as np

from autodl.dataset import load_dataset
from autodl.writer import format_dataset, format_image_folder


@click.group("autodl")
def autodl_group() -> None:
    """AutoDL challenge datasets, training and scoring."""


@autodl_group.command("format")
@click.option(
    "--from-folder",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Image folder root/<class>/<image> (PNG/JPEG kept as is).",
)
@click.option(
    "--from-npz",
    "npz",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="npz with x (N,H,W,C) or (N,T,H,W,C), y (N,) int or (N,C) 0/1, optional classes (names).",
)
@click.option("--name", default=None, help="Dataset name (default: the folder/npz stem).")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory in which <name>/ is created (it must not exist yet).",
)
@click.option(
    "--test-fraction",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of the examples in the test split.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the train/test split.")
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Read the written dataset back and compare it exactly.",
)
def format_cmd(
    folder: Path | None,
    npz: Path | None,
    name: str | None,
    out_dir: Path,
    test_fraction: float,
    seed: int,
    verify: bool,
) -> None:
    """Write a dataset in the AutoDL format (TFRecords, metadata, .solution)."""
    if (folder is None) == (npz is None):
        raise click.UsageError("give exactly one of --from-folder and --from-npz")
    try:
        if folder is not None:
            root = format_image_folder(
                folder, out_dir, name, test_fraction=test_fraction, seed=seed, verify=verify
            )
        else:
            with np.load(npz, allow_pickle=False) as data:
                missing = {"x", "y"} - set(data.files)
                if missing:
                    raise click.UsageError(f"{npz} lacks array(s) {sorted(missing)}")
                classes = [str(c) for c in data["classes"]] if "classes" in data.files else None
                root = format_dataset(
                    data["x"],
                    data["y"],
                    out_dir,
                    name or npz.stem,
                    classes=classes,
                    test_fraction=test_fraction,
                    seed=seed,
                    verify=verify,
                )
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    train, test, _ = load_dataset(root)
    click.echo(
        f"wrote {root}: {len(train)} train / {len(test)} test examples, "
        f"{train.metadata.get_output_size()} classes" + (" (verified)" if verify else "")
    )


@autodl_group.command("info")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info_cmd(dataset_dir: Path) -> None:
    """Summarise an AutoDL dataset <name>/ after checking every record."""
    train, test, solution = load_dataset(dataset_dir)
    for split, dataset in (("train", train), ("test", test)):
        meta = dataset.metadata
        shapes = {example.x.shape for example in dataset.iter_examples()}
        shape_text = next(iter(shapes)) if len(shapes) == 1 else f"{len(shapes)} distinct shapes"
        click.echo(
            f"{split}: {len(dataset)} examples, format {meta.matrix_spec[0].format}, "
            f"tensor shape {meta.get_tensor_shape()}, examples {shape_text}"
        )
    names = [n or str(i) for i, n in enumerate(train.metadata.class_names())]
    click.echo(f"classes ({len(names)}): {', '.join(names)}")
    click.echo("solution: " + ("none" if solution is None else f"{solution.shape[0]} rows"))


# autodl.search.PRUNING_MODES, spelled out so that `format` and `info` do not import torch
PRUNING_CHOICES = ("proxy", "random", "baseline")
DEFAULT_THREADS = 1  # measured: on a loaded 2-core machine more threads made epochs 10-20x slower


class StatusLine:
    """The run's live status: elapsed, phase, networks trained, members scored, predictions and
    the best validation NAUC. On a terminal one line rewritten in place (also every second, so
    the clock moves during long chunks); otherwise a plain line per phase change, at most one
    every ``every`` seconds in between."""

    def __init__(self, stream: TextIO, every: float = 10.0) -> None:
        self.stream, self.every = stream, every
        self.tty = stream.isatty()
        self.info: dict = {}
        self.shown_at, self.shown_phase = -float("inf"), None
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        if self.tty:
            threading.Thread(target=self._tick, daemon=True).start()

    @staticmethod
    def render(info: dict) -> str:
        """One status line from a status dict."""
        nauc = info.get("val_nauc")
        parts = [f"{info.get('elapsed', 0.0):6.1f} s", str(info.get("phase"))]
        if "networks" in info:
            parts.append(f"{info['networks']} networks")
            parts.append(f"{info['scored']}/{info['pool']} scored")
        parts.append(f"{info.get('predictions', 0)} predictions")
        parts.append("best val NAUC " + ("-" if nauc is None else f"{nauc:.3f}"))
        return " | ".join(parts)

    def update(self, info: dict) -> None:
        """Show ``info`` (a ``run_ingestion`` status)."""
        with self.lock:
            self.info, self.base = info, time.perf_counter() - info.get("elapsed", 0.0)
            if self.tty:
                self._draw()
            elif info.get("phase") != self.shown_phase or (
                info.get("elapsed", 0.0) - self.shown_at >= self.every
            ):
                self.shown_at, self.shown_phase = info.get("elapsed", 0.0), info.get("phase")
                print(self.render(info), file=self.stream, flush=True)

    def close(self) -> None:
        """End the line (terminal) and stop the clock."""
        self.stopped.set()
        with self.lock:
            if self.tty and self.info:
                print(file=self.stream, flush=True)

    def _draw(self) -> None:
        line = self.render({**self.info, "elapsed": time.perf_counter() - self.base})
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self.lock:
                if self.info and not self.stopped.is_set():
                    self._draw()


@autodl_group.command("run")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--time-budget",
    required=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds for the whole train/test loop (the ALC's T), counted from the process start.",
)
@click.option(
    "--pruning",
    type=click.Choice(PRUNING_CHOICES),
    default="proxy",
    show_default=True,
    help="proxy: proxy-pruned search; random: same search, random pruning; "
    "baseline: one fixed network, no search.",
)
@click.option(
    "--proxy",
    default=None,
    help="Proxy name or 'a+b+...' (rank aggregation); default: autodl/proxy_choice.json.",
)
@click.option(
    "--portfolio/--no-portfolio",
    default=False,
    show_default=True,
    help="Take the first network from the portfolio (autodl/portfolio.json) of the domain.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of pool, split, init, order.")
@click.option(
    "--device",
    default=None,
    help="Training device, e.g. cpu or cuda (default: cuda when available; cuda trains with "
    "float16 mixed precision).",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=DEFAULT_THREADS,
    show_default=True,
    help="torch's intra-op CPU threads (recorded in ingestion.json).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: ./autodl_runs/<name>).",
)
@click.option("--quiet", is_flag=True, help="No status line.")
def run_cmd(
    dataset_dir: Path,
    time_budget: float,
    pruning: str,
    proxy: str | None,
    portfolio: bool,
    seed: int,
    device: str | None,
    threads: int,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Train and test like the challenge's ingestion, then score (scores.json, plot).

    The clock starts at the process start; prediction 0 (the class prior) is written before
    torch is imported, after every test record has been decoded. Exit status 2 with one
    ``error:`` line for a corrupt or unreadable dataset, 1 for bad options.
    """
    from autodl.ingestion import dataset_name, process_age, run_ingestion

    start = time.perf_counter() - process_age()
    name = dataset_name(dataset_dir)
    out_dir = out_dir or Path("autodl_runs") / name
    status = None if quiet else StatusLine(sys.stderr)
    try:
        result = run_ingestion(
            dataset_dir,
            out_dir,
            time_budget,
            pruning=pruning,
            proxy=proxy,
            seed=seed,
            device=device,
            threads=threads,
            start=start,
            on_status=None if status is None else status.update,
            config={"portfolio": portfolio},
        )
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if status is not None:
            status.close()
    from autodl.scoring import score_run

    solution = load_dataset(dataset_dir).test_solution
    threads_text = f"{result.summary['threads']} thread(s) of {os.cpu_count()} cores"
    if solution is None:
        click.echo(
            f"{len(result.timestamps)} predictions in {result.prediction_dir} "
            f"(no {name}.solution: not scored); {threads_text}"
        )
        return
    scores = score_run(result.prediction_dir, solution, time_budget, out_dir, name)
    best = result.summary["best"] or {}
    click.echo(
        f"{name}: {scores['num_predictions']} predictions, first at "
        f"{scores['first_prediction_seconds']:.1f} s from the process start; ALC "
        f"{scores['alc']:.4f}, final NAUC {scores['final_nauc']:.4f}, final BAC "
        f"{scores['final_bac']:.4f}; predicting with: {best.get('name')}; {threads_text}"
    )
    click.echo(f"wrote {out_dir / 'scores.json'}, {out_dir / 'learning_curve.png'}")
