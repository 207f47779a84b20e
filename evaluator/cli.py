"""Click commands ``evaluate``, ``check`` and ``pack`` (grouped in ``cli``; ``zcp`` mounts them).

Standalone: ``python -m evaluator.cli evaluate my_submission/ --n 50``. Exit statuses
(``EXIT_*``, shared by ``batch_cli``): 0 success, 1 the submission failed, 2 usage or data error,
130 interrupted (see each command's ``--help`` and docs/evaluator.md).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pandas as pd

from evaluator.protocol import OK, safe_text
from evaluator.runner import DEFAULT_BATCH_SIZE, DEFAULT_N_ARCHS, check, evaluate
from evaluator.sandbox import CONTAINMENT_REQUESTS, Limits, SandboxUnavailable
from evaluator.submission import BUILTIN_PREFIX, SubmissionRejected, pack
from zcproxies.errors import ZcpError
from zcproxies.spaces.base import FLAVORS

_DEFAULTS = Limits()
EXIT_OK = 0
EXIT_FAILED = 1  # the submission failed (zcp evaluate / check); internal errors (zcp batch)
EXIT_USAGE = 2  # bad option, missing path, not a zip, unknown proxy, unwritable output, ...
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EVALUATE_EXIT = """\b
Exit status:
  0    scored: at least one task is ok
  1    the submission failed: rejected, or no task ok (every task or
       every architecture failed)
  2    usage or data error (bad option, missing path, not a zip, unknown
       --proxy, unwritable --out, --isolation bwrap or --containment
       require where unavailable), found before any work
  130  interrupted (Ctrl-C): the finished tasks are written, the task
       running and the later ones are marked interrupted"""
# The options of ``evaluate``/``check``, all but --proxy also ``batch``'s, each declared once: the
# keywords of its ``click.option`` (``shared_options`` applies them; ``batch`` words a few helps
# its own way).
OPTION_SPECS: dict[str, dict[str, Any]] = {
    "--benchmark": {
        "default": None,
        "help": "zcp benchmark HDF5 file, or a benchmark name (`zcp data list`) "
        "[default: embedded, nasbench201_mini/shapes].",
    },
    "--seed": {"default": 0, "show_default": True, "help": "Sampling, batch and init seed."},
    "--task-timeout": {
        "type": float,
        "default": _DEFAULTS.task_timeout,
        "show_default": True,
        "help": "Seconds of submission time per task.",
    },
    "--total-timeout": {
        "type": float,
        "default": _DEFAULTS.total_timeout,
        "show_default": True,
        "help": "Seconds for the whole run.",
    },
    # The competition's hard limit applied to each architecture as well.
    "--arch-timeout": {
        "type": float,
        "default": None,
        "help": "Seconds for one architecture (model building included); past it the "
        "architecture is timeout and a new worker scores the rest [default: only the task's "
        "limit].",
    },
    "--memory-mb": {
        "type": int,
        "default": _DEFAULTS.memory_mb,
        "show_default": True,
        "help": "Memory of the submission's whole process tree (MiB).",
    },
    "--threads": {
        "type": int,
        "default": _DEFAULTS.threads,
        "show_default": True,
        "help": "CPU threads of the worker.",
    },
    "--batch-size": {
        "type": int,
        "default": DEFAULT_BATCH_SIZE,
        "show_default": True,
        "help": "Images in the one minibatch of each task.",
    },
    "--isolation": {
        "type": click.Choice(["auto", "bwrap", "none"]),
        "default": "auto",
        "show_default": True,
        "help": "bwrap sandbox; auto falls back (loudly) where bwrap is missing.",
    },
    "--proxy": {"default": None, "help": "Evaluate a built-in proxy by name instead."},
    "--max-processes": {
        "type": int,
        "default": _DEFAULTS.max_processes,
        "show_default": True,
        "help": "Processes and threads of the submission's whole process tree.",
    },
    "--disk-mb": {
        "type": int,
        "default": _DEFAULTS.disk_mb,
        "show_default": True,
        "help": "Size of the private /tmp and /dev/shm (MiB; counts as memory too).",
    },
    "--max-files": {
        "type": int,
        "default": _DEFAULTS.max_files,
        "show_default": True,
        "help": "Files and directories in the private /tmp and /dev/shm.",
    },
    "--containment": {
        "type": click.Choice(CONTAINMENT_REQUESTS),
        "default": "auto",
        "show_default": True,
        "help": "A cgroup and a private tmpfs per worker; auto falls back (loudly) to "
        "per-process limits, require refuses to run without them.",
    },
    # The networks scored.
    "--model-flavor": {
        "type": click.Choice(FLAVORS),
        "default": None,
        "help": "Networks to score: naslib (what the 2022 competition's NASLib evaluator built) "
        "or benchmark (the benchmark's own) [default: naslib for the competition form, else "
        "benchmark].",
    },
}
# A worker's time, memory, threads, minibatch and sandbox (``evaluate``/``check`` and ``batch``).
WORKER_OPTIONS = (
    "--task-timeout",
    "--total-timeout",
    "--arch-timeout",
    "--memory-mb",
    "--threads",
    "--batch-size",
    "--isolation",
)
# Limits of the upload's whole process tree and the containment enforcing them (also ``batch``).
CONTAINMENT_OPTIONS = ("--max-processes", "--disk-mb", "--max-files", "--containment")
# What ``evaluate`` and ``check`` take after their own options (``run_options``), in this order.
RUN_OPTIONS = ("--seed", *WORKER_OPTIONS, "--proxy", *CONTAINMENT_OPTIONS, "--model-flavor")


def shared_options(*names: str, helps: dict[str, str | None] | None = None) -> Callable[..., Any]:
    """Apply the ``OPTION_SPECS`` options ``names`` to a command, in the order listed (as stacked
    decorators); ``helps`` gives some of them the command's own help (None: no help)."""
    helps = helps or {}
    options = []
    for name in names:
        spec = dict(OPTION_SPECS[name])
        if name in helps:
            spec["help"] = helps[name]
        options.append(click.option(name, **spec))

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


TASKS_OPTION = click.option(
    "--tasks",
    default=None,
    metavar="SPACE/TASK,...",
    help="Only these tasks of the benchmark, e.g. nasbench201/cifar10,nb301/cifar10.",
)


def _task_keys(tasks: str | None) -> list[str] | None:
    """The ``--tasks`` list (None: every task)."""
    return None if tasks is None else [key for key in tasks.split(",") if key.strip()]


@dataclass(frozen=True)
class RunOptions:
    """What ``evaluate`` and ``check`` share: the submission spec, seed, limits, batch, sandbox."""

    submission: str
    seed: int
    limits: Limits
    batch_size: int
    isolation: str
    containment: str
    model_flavor: str | None


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``RUN_OPTIONS`` to a command taking ``submission``; ``fn`` gets them (with the
    submission) as one ``RunOptions`` keyword ``run``, so each option is declared once."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        submission: str | None,
        proxy: str | None,
        seed: int,
        batch_size: int,
        isolation: str,
        containment: str,
        model_flavor: str | None,
        **kwargs: Any,
    ) -> Any:
        spec = _submission(submission, proxy)
        limits = make_limits(kwargs)
        run = RunOptions(spec, seed, limits, batch_size, isolation, containment, model_flavor)
        return fn(*args, run=run, **kwargs)

    return shared_options(*RUN_OPTIONS)(wrapper)


def _submission(path: str | None, proxy: str | None) -> str:
    """The submission spec from the PATH argument or ``--proxy``."""
    if (path is None) == (proxy is None):
        raise click.UsageError("give a submission directory/zip or --proxy NAME (not both)")
    return BUILTIN_PREFIX + proxy if proxy is not None else path


LIMIT_OPTIONS = (  # the Limits fields the commands take as options
    "task_timeout",
    "total_timeout",
    "arch_timeout",
    "memory_mb",
    "threads",
    "max_processes",
    "disk_mb",
    "max_files",
)


def make_limits(options: dict[str, Any]) -> Limits:
    """``Limits`` from a command's options (taken out of ``options``); an invalid value is a
    usage error of its option."""
    try:
        return Limits(**{name: options.pop(name) for name in LIMIT_OPTIONS})
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report expected failures (bad input, missing sandbox) as one ``error:`` line with exit
    status 2, and Ctrl-C as exit status 130, in any group a command is mounted in (``zcp``,
    ``evaluator.batch_cli``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ZcpError, SubmissionRejected, SandboxUnavailable, ValueError) as exc:
            click.echo(f"error: {safe_text(str(exc), 2000, multiline=False)}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("interrupted (Ctrl-C)", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def evaluate_exit(frame: pd.DataFrame) -> int:
    """The exit status of ``zcp evaluate`` for its result table (see ``EVALUATE_EXIT``)."""
    if frame.attrs.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_OK if (frame["status"] == OK).any() else EXIT_FAILED


@click.group()
def cli() -> None:
    """Evaluate zero-cost proxy submissions (sandboxed Kendall-Tau scoring)."""


@cli.command("evaluate", epilog=EVALUATE_EXIT)
@click.argument("submission", required=False)
@shared_options("--benchmark")
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
@TASKS_OPTION
@run_options
@friendly_errors
def evaluate_cmd(
    benchmark: str | None, n_archs: int, out: str, tasks: str | None, run: RunOptions
) -> None:
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
        containment=run.containment,
        model_flavor=run.model_flavor,
        only_tasks=_task_keys(tasks),
    )
    click.echo((Path(out) / "summary.md").read_text())
    click.echo(
        f"final score (mean Kendall-Tau): {frame.attrs['final_score']:.4f}; reports in {out}/"
    )
    status = evaluate_exit(frame)
    if status == EXIT_INTERRUPTED:
        click.echo("interrupted (Ctrl-C): finished tasks written, the rest interrupted", err=True)
    elif status == EXIT_FAILED:
        click.echo("the submission failed: no task is ok", err=True)
    sys.exit(status)


@cli.command(
    "check",
    epilog="\b\nExit status: 0 it works; 1 it does not (the problems are listed);\n"
    "2 usage or data error; 130 interrupted (Ctrl-C).",
)
@click.argument("submission", required=False)
@click.option(
    "--space", default="nasbench201_mini", show_default=True, help="Search space of the trial."
)
@click.option("--task", default=None, help="Task of the space [default: its first].")
@click.option(
    "--benchmark",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Try every task of this benchmark instead (the time estimate is then for its spaces).",
)
@TASKS_OPTION
@click.option("--n", "n_archs", default=2, show_default=True, help="Architectures to try.")
@run_options
@friendly_errors
def check_cmd(
    space: str,
    task: str | None,
    benchmark: str | None,
    tasks: str | None,
    n_archs: int,
    run: RunOptions,
) -> None:
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
        containment=run.containment,
        model_flavor=run.model_flavor,
        benchmark=benchmark,
        only_tasks=_task_keys(tasks),
    )
    click.echo(report.describe())
    if not report.ok:
        sys.exit(EXIT_FAILED)


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
