"""Click commands ``evaluate``, ``check`` and ``pack`` (grouped in ``cli``; ``zcp`` mounts them).

Standalone: ``python -m evaluator.cli evaluate my_submission/ --n 50``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from evaluator.runner import DEFAULT_BATCH_SIZE, DEFAULT_N_ARCHS, check, evaluate
from evaluator.sandbox import Limits, SandboxUnavailable
from evaluator.submission import BUILTIN_PREFIX, SubmissionRejected, pack
from zcproxies.errors import ZcpError

_DEFAULTS = Limits()
SHARED_OPTIONS = (
    click.option("--seed", default=0, show_default=True, help="Sampling, batch and init seed."),
    click.option(
        "--task-timeout",
        type=float,
        default=_DEFAULTS.task_timeout,
        show_default=True,
        help="Seconds of submission time per task.",
    ),
    click.option(
        "--total-timeout",
        type=float,
        default=_DEFAULTS.total_timeout,
        show_default=True,
        help="Seconds for the whole run.",
    ),
    click.option(
        "--memory-mb",
        type=int,
        default=_DEFAULTS.memory_mb,
        show_default=True,
        help="Address-space cap of the worker (MiB).",
    ),
    click.option(
        "--threads",
        type=int,
        default=_DEFAULTS.threads,
        show_default=True,
        help="CPU threads of the worker.",
    ),
    click.option(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        show_default=True,
        help="Images in the one minibatch of each task.",
    ),
    click.option(
        "--isolation",
        type=click.Choice(["auto", "bwrap", "none"]),
        default="auto",
        show_default=True,
        help="bwrap sandbox; auto falls back (loudly) where bwrap is missing.",
    ),
    click.option("--proxy", default=None, help="Evaluate a built-in proxy by name instead."),
)


@dataclass(frozen=True)
class RunOptions:
    """What ``evaluate`` and ``check`` share: the submission spec, seed, limits, batch, sandbox."""

    submission: str
    seed: int
    limits: Limits
    batch_size: int
    isolation: str


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``SHARED_OPTIONS`` to a command taking ``submission``; ``fn`` gets them (with the
    submission) as one ``RunOptions`` keyword ``run``, so each option is declared once."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        submission: str | None,
        proxy: str | None,
        seed: int,
        task_timeout: float,
        total_timeout: float,
        memory_mb: int,
        threads: int,
        batch_size: int,
        isolation: str,
        **kwargs: Any,
    ) -> Any:
        spec = _submission(submission, proxy)
        limits = _limits(task_timeout, total_timeout, memory_mb, threads)
        run = RunOptions(spec, seed, limits, batch_size, isolation)
        return fn(*args, run=run, **kwargs)

    for option in reversed(SHARED_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def _submission(path: str | None, proxy: str | None) -> str:
    """The submission spec from the PATH argument or ``--proxy``."""
    if (path is None) == (proxy is None):
        raise click.UsageError("give a submission directory/zip or --proxy NAME (not both)")
    return BUILTIN_PREFIX + proxy if proxy is not None else path


def _limits(task_timeout: float, total_timeout: float, memory_mb: int, threads: int) -> Limits:
    """``Limits`` from the options; an invalid value is a usage error of its option."""
    try:
        return Limits(
            task_timeout=task_timeout,
            total_timeout=total_timeout,
            memory_mb=memory_mb,
            threads=threads,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report expected failures (bad input, missing sandbox) as one ``error:`` line with exit
    status 2, in any group a command is mounted in (``zcp``, ``evaluator.batch_cli``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ZcpError, SubmissionRejected, SandboxUnavailable, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
def cli() -> None:
    """Evaluate zero-cost proxy submissions (sandboxed Kendall-Tau scoring)."""


@cli.command("evaluate")
@click.argument("submission", required=False)
@click.option(
    "--benchmark",
    default=None,
    help="zcp benchmark HDF5 file, or a benchmark name (`zcp data list`) "
    "[default: embedded, nasbench201_mini/shapes].",
)
@click.option(
    "--n",
    "n_archs",
    default=DEFAULT_N_ARCHS,
    show_default=True,
    help="Architectures sampled per task.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="Directory for results.json, CSVs, summary.md and plots.",
)
@run_options
@friendly_errors
def evaluate_cmd(benchmark: str | None, n_archs: int, out: str, run: RunOptions) -> None:
    """Score SUBMISSION (directory or .zip) by mean Kendall-Tau over the benchmark's tasks."""
    frame = evaluate(
        run.submission,
        benchmark,
        n_archs,
        run.seed,
        run.limits,
        out,
        batch_size=run.batch_size,
        isolation=run.isolation,
    )
    click.echo((Path(out) / "summary.md").read_text())
    click.echo(
        f"final score (mean Kendall-Tau): {frame.attrs['final_score']:.4f}; reports in {out}/"
    )


@cli.command("check")
@click.argument("submission", required=False)
@click.option(
    "--space", default="nasbench201_mini", show_default=True, help="Search space of the trial."
)
@click.option("--task", default=None, help="Task of the space [default: its first].")
@click.option("--n", "n_archs", default=2, show_default=True, help="Architectures to try.")
@run_options
@friendly_errors
def check_cmd(space: str, task: str | None, n_archs: int, run: RunOptions) -> None:
    """Try SUBMISSION on a few architectures exactly as evaluate would; exit 1 if it fails."""
    report = check(
        run.submission,
        space,
        task,
        n_archs,
        run.seed,
        run.limits,
        batch_size=run.batch_size,
        isolation=run.isolation,
    )
    click.echo(report.describe())
    if not report.ok:
        sys.exit(1)


@cli.command("pack")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Zip to write [default: DIRECTORY.zip].",
)
@friendly_errors
def pack_cmd(directory: str, out: str | None) -> None:
    """Zip a submission DIRECTORY for upload (checked like the evaluator will)."""
    click.echo(str(pack(directory, out)))


if __name__ == "__main__":
    cli()
