"""Click commands ``batch`` and ``leaderboard`` for organizers (``zcp`` mounts them).

Standalone: ``python -m evaluator.batch_cli batch uploads/ --out results/ --workers 2``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from evaluator.batch import BACKENDS, run_batch
from evaluator.cli import (
    CONTAINMENT_OPTIONS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    WORKER_OPTIONS,
    friendly_errors,
    make_limits,
    shared_options,
)
from evaluator.leaderboard import write_leaderboard
from evaluator.protocol import INTERNAL_ERROR, display_name
from evaluator.runner import DEFAULT_N_ARCHS

BATCH_EXIT = """\b
Exit status:
  0    every planned unit is recorded (whatever the uploads' statuses)
  1    every planned unit is recorded, some as internal_error (the
       evaluator failed on them, not the upload): rerun with --retry-failed
  2    usage or data error (bad option, not a directory, another
       configuration or store schema in --out, another batch running,
       --isolation bwrap or --containment require where unavailable),
       before any unit runs
  130  interrupted (Ctrl-C): the units recorded so far are kept; the
       same command resumes"""


@click.group()
def cli() -> None:
    """Batch evaluation of many uploads and their leaderboard."""


@cli.command("batch", epilog=BATCH_EXIT)
@click.argument("uploads_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Results directory (results.sqlite); a re-run resumes it.",
)
@click.option("--workers", default=1, show_default=True, help="Units (upload x task) at a time.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address (--backend ray) [default: a local Ray instance].",
)
@shared_options("--benchmark")
@click.option("--n", "n_archs", default=DEFAULT_N_ARCHS, show_default=True, help="Archs per task.")
@shared_options("--seed")
@click.option("--retry-failed", is_flag=True, help="Evaluate again the units that are not ok.")
@shared_options(
    *WORKER_OPTIONS,
    *CONTAINMENT_OPTIONS,
    "--model-flavor",
    helps={  # batch's own words for these (None: no help)
        "--task-timeout": None,
        "--total-timeout": "Seconds for one unit, worker start-ups included.",
        "--threads": None,
        "--batch-size": None,
        "--isolation": "Organizers: bwrap (refuse to run without the sandbox).",
    },
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@friendly_errors
def batch_cmd(
    uploads_dir: str,
    out: str,
    workers: int,
    backend: str,
    address: str | None,
    benchmark: str | None,
    n_archs: int,
    seed: int,
    retry_failed: bool,
    batch_size: int,
    isolation: str,
    containment: str,
    model_flavor: str | None,
    progress: bool,
    **limit_options: Any,
) -> None:
    """Evaluate every upload (zip or directory) of UPLOADS_DIR on every task of the benchmark."""
    limits = make_limits(limit_options)
    summary = run_batch(
        uploads_dir,
        out,
        benchmark=benchmark,
        n_archs=n_archs,
        seed=seed,
        batch_size=batch_size,
        limits=limits,
        isolation=isolation,
        containment=containment,
        workers=workers,
        backend=backend,
        address=address,
        retry_failed=retry_failed,
        progress=progress,
        model_flavor=model_flavor,
    )
    click.echo(summary.describe())
    click.echo(f"leaderboard: zcp leaderboard {out}")
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FAILED if summary.statuses[INTERNAL_ERROR] else EXIT_OK)


@cli.command("leaderboard")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@friendly_errors
def leaderboard_cmd(results_dir: str) -> None:
    """Rank the uploads of RESULTS_DIR; write leaderboard.csv/.json/.html and report.md."""
    board, paths = write_leaderboard(results_dir)
    for entry in board["entries"][:10]:
        click.echo(
            f"{entry['rank']:>4}  {entry['mean_kendall_tau']:+.4f}  {display_name(entry['upload'])}"
            f"  [{entry['status']}]"
        )
    click.echo("wrote " + ", ".join(str(p) for p in paths))


COMMANDS = (batch_cmd, leaderboard_cmd)

if __name__ == "__main__":
    cli()
