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

from autodl.dataset import FORMATS, load_dataset
from autodl.settings import PRUNING_MODES
from autodl.writer import format_dataset, format_image_folder

EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as for the evaluator's commands


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
    help="npz with x, y (N,) int or (N,C) 0/1 and optional classes, lengths, vocabulary, "
    "is_test (docs/autodl_format.md).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Record layout (npz; default: COMPRESSED for uint8 images, else DENSE).",
)
@click.option(
    "--vocabulary",
    "vocabulary_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Text: one token per line, line i is token id i (npz x holds token ids).",
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
    help="Share of the examples in the test split (unless the npz has is_test).",
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
    fmt: str | None,
    vocabulary_file: Path | None,
    name: str | None,
    out_dir: Path,
    test_fraction: float,
    seed: int,
    verify: bool,
) -> None:
    """Write a dataset in the AutoDL format (TFRecords, metadata, .solution)."""
    if (folder is None) == (npz is None):
        raise click.UsageError("give exactly one of --from-folder and --from-npz")
    if folder is not None and (fmt is not None or vocabulary_file is not None):
        raise click.UsageError("--format and --vocabulary go with --from-npz")
    try:
        if folder is not None:
            root = format_image_folder(
                folder, out_dir, name, test_fraction=test_fraction, seed=seed, verify=verify
            )
        else:
            arrays = read_npz(npz, vocabulary_file)
            root = format_dataset(
                arrays.pop("x"),
                arrays.pop("y"),
                out_dir,
                name or npz.stem,
                test_fraction=test_fraction,
                seed=seed,
                fmt=fmt,
                verify=verify,
                **arrays,
            )
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    train, test, _ = load_dataset(root)
    click.echo(
        f"wrote {root}: {len(train)} train / {len(test)} test examples, "
        f"{train.metadata.get_output_size()} classes" + (" (verified)" if verify else "")
    )


def read_npz(path: Path, vocabulary_file: Path | None) -> dict:
    """``format_dataset`` arguments from an npz (no pickled objects): ``x`` and ``y``; optional
    ``classes``; ``lengths`` (examples of varying length: ``x`` holds them concatenated along
    its first axis, ``lengths`` their sizes); ``vocabulary`` (or ``vocabulary_file``, one token
    per line); ``is_test`` (bool (N,): the test split, instead of a seeded one)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"{path}: not an npz of plain arrays: {exc}") from None
    missing = {"x", "y"} - set(arrays)
    if missing:
        raise click.UsageError(f"{path} lacks array(s) {sorted(missing)}")
    unknown = set(arrays) - {"x", "y", "classes", "lengths", "vocabulary", "is_test"}
    if unknown:
        raise click.UsageError(f"{path} has unknown array(s) {sorted(unknown)}")
    out: dict = {"x": arrays["x"], "y": arrays["y"]}
    if "classes" in arrays:
        out["classes"] = [str(c) for c in arrays["classes"]]
    if "lengths" in arrays:
        lengths = arrays["lengths"]
        if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (lengths < 1).any():
            raise click.UsageError(f"{path}: lengths must be positive integers (N,)")
        if int(lengths.sum()) != len(out["x"]):
            raise click.UsageError(
                f"{path}: lengths sum to {int(lengths.sum())} but x has {len(out['x'])} rows"
            )
        out["x"] = np.split(out["x"], np.cumsum(lengths)[:-1])
    if vocabulary_file is not None and "vocabulary" in arrays:
        raise click.UsageError("the vocabulary comes from --vocabulary or the npz, not both")
    if vocabulary_file is not None:
        text = vocabulary_file.read_text(encoding="utf-8")
        out["vocabulary"] = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    elif "vocabulary" in arrays:
        out["vocabulary"] = [str(t) for t in arrays["vocabulary"]]
    if "is_test" in arrays:
        mask = arrays["is_test"]
        if mask.dtype != bool or mask.shape != (len(out["y"]),):
            raise click.UsageError(f"{path}: is_test must be a bool array with one entry per label")
        out["test_indices"] = np.flatnonzero(mask)
    return out


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
    vocabulary = train.metadata.vocabulary_size()
    if vocabulary:
        click.echo(f"text: token ids, vocabulary of {vocabulary} (channel_to_index_map)")
    names = [n or str(i) for i, n in enumerate(train.metadata.class_names())]
    click.echo(f"classes ({len(names)}): {', '.join(names)}")
    click.echo("solution: " + ("none" if solution is None else f"{solution.shape[0]} rows"))


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
        """One status line from a status dict: the predicting ensemble's validation NAUC, or
        where the split ranks by the cross-entropy first (``val_loss`` given), that loss (the
        NAUC in brackets: it may fall while the loss improves)."""
        nauc = info.get("val_nauc")
        shown = "-" if nauc is None else f"{nauc:.3f}"
        parts = [f"{info.get('elapsed', 0.0):6.1f} s", str(info.get("phase"))]
        if "networks" in info:
            parts.append(f"{info['networks']} networks")
            parts.append(f"{info['scored']}/{info['pool']} scored")
        parts.append(f"{info.get('predictions', 0)} predictions")
        if "val_loss" in info:
            loss = info["val_loss"]
            parts.append(f"best val loss {'-' if loss is None else f'{loss:.3f}'} (NAUC {shown})")
        else:
            parts.append(f"best val NAUC {shown}")
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
    type=click.Choice(PRUNING_MODES),
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
@click.option(
    "--clock",
    type=click.Choice(["process", "command"]),
    default="process",
    show_default=True,
    help="Start the clock at the process start (what a user waits for) or when this command "
    "starts (when zcp runs inside a longer-lived process).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a search setting (autodl.settings.SearchConfig), e.g. --set pool_size=512; "
    "repeatable.",
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
    clock: str,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Train and test like the challenge's ingestion, then score (scores.json, plot).

    The clock starts at the process start (``--clock``); prediction 0 (the quick model) is
    written before torch is imported, after every test record has been decoded. Exit status 2
    with one ``error:`` line for a corrupt or unreadable dataset, 1 for bad options, 130 for
    Ctrl-C (the predictions written so far are kept and scored).
    """
    from autodl.ingestion import dataset_name, list_predictions, process_age, run_ingestion

    start = time.perf_counter() - (process_age() if clock == "process" else 0.0)
    changes: dict[str, object] = {"portfolio": portfolio}
    for pair in overrides:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        changes[key] = value
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
            config=changes,
        )
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        result = None
    finally:
        if status is not None:
            status.close()
    from autodl.scoring import score_run

    solution = load_dataset(dataset_dir).test_solution
    if result is None:  # Ctrl-C: the predictions written so far are kept and scored
        predictions = out_dir / "predictions"
        text = f"interrupted (Ctrl-C): {len(list_predictions(predictions))} prediction(s) kept"
        if solution is not None and list_predictions(predictions):
            scores = score_run(predictions, solution, time_budget, out_dir, name)
            text += f", ALC so far {scores['alc']:.4f}; wrote {out_dir / 'scores.json'}"
        click.echo(text, err=True)
        sys.exit(EXIT_INTERRUPTED)
    threads_text = f"{result.summary['threads']} thread(s) of {os.cpu_count()} cores"
    if solution is None:
        click.echo(
            f"{len(result.timestamps)} predictions in {result.prediction_dir} "
            f"(no {name}.solution: not scored); {threads_text}"
        )
        return
    scores = score_run(result.prediction_dir, solution, time_budget, out_dir, name)
    best = result.summary["best"] or {}
    if not scores["num_predictions"]:
        click.echo(f"{name}: no prediction within {time_budget:g} s; ALC {scores['alc']:.4f}")
        return
    click.echo(
        f"{name}: {scores['num_predictions']} predictions, first at "
        f"{scores['first_prediction_seconds']:.1f} s from the process start; ALC "
        f"{scores['alc']:.4f}, final NAUC {scores['final_nauc']:.4f}, final BAC "
        f"{scores['final_bac']:.4f}; predicting with: {best.get('name')}; {threads_text}"
    )
    click.echo(f"wrote {out_dir / 'scores.json'}, {out_dir / 'learning_curve.png'}")
