"""Click commands ``batch`` and ``leaderboard`` for organizers (``zcp`` mounts them).

Standalone: ``python -m evaluator.batch_cli batch uploads/ --out results/ --workers 2``.
"""

from __future__ import annotations

import click

from evaluator.batch import BACKENDS, run_batch
from evaluator.cli import friendly_errors
from evaluator.leaderboard import write_leaderboard
from evaluator.runner import DEFAULT_BATCH_SIZE, DEFAULT_N_ARCHS
from evaluator.sandbox import Limits

_DEFAULTS = Limits()


@click.group()
def cli() -> None:
    """Batch evaluation of many uploads and their leaderboard."""


@cli.command("batch")
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
@click.option(
    "--benchmark",
    default=None,
    help="zcp benchmark HDF5 file, or a benchmark name (`zcp data list`) "
    "[default: embedded, nasbench201_mini/shapes].",
)
@click.option("--n", "n_archs", default=DEFAULT_N_ARCHS, show_default=True, help="Archs per task.")
@click.option("--seed", default=0, show_default=True, help="Sampling, batch and init seed.")
@click.option("--retry-failed", is_flag=True, help="Evaluate again the units that are not ok.")
@click.option("--task-timeout", type=float, default=_DEFAULTS.task_timeout, show_default=True)
@click.option(
    "--total-timeout",
    type=float,
    default=_DEFAULTS.total_timeout,
    show_default=True,
    help="Seconds for one unit, worker start-ups included.",
)
@click.option("--memory-mb", type=int, default=_DEFAULTS.memory_mb, show_default=True)
@click.option("--threads", type=int, default=_DEFAULTS.threads, show_default=True)
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True)
@click.option(
    "--isolation",
    type=click.Choice(["auto", "bwrap", "none"]),
    default="auto",
    show_default=True,
    help="Organizers: bwrap (refuse to run without the sandbox).",
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
    task_timeout: float,
    total_timeout: float,
    memory_mb: int,
    threads: int,
    batch_size: int,
    isolation: str,
    progress: bool,
) -> None:
    """Evaluate every upload (zip or directory) of UPLOADS_DIR on every task of the benchmark."""
    limits = Limits(
        task_timeout=task_timeout,
        total_timeout=total_timeout,
        memory_mb=memory_mb,
        threads=threads,
    )
    summary = run_batch(
        uploads_dir,
        out,
        benchmark=benchmark,
        n_archs=n_archs,
        seed=seed,
        batch_size=batch_size,
        limits=limits,
        isolation=isolation,
        workers=workers,
        backend=backend,
        address=address,
        retry_failed=retry_failed,
        progress=progress,
    )
    click.echo(summary.describe())
    click.echo(f"leaderboard: zcp leaderboard {out}")


@cli.command("leaderboard")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@friendly_errors
def leaderboard_cmd(results_dir: str) -> None:
    """Rank the uploads of RESULTS_DIR; write leaderboard.csv/.json/.html and report.md."""
    board, paths = write_leaderboard(results_dir)
    for entry in board["entries"][:10]:
        click.echo(
            f"{entry['rank']:>4}  {entry['mean_kendall_tau']:+.4f}  {entry['upload']}"
            f"  [{entry['status']}]"
        )
    click.echo("wrote " + ", ".join(str(p) for p in paths))


COMMANDS = (batch_cmd, leaderboard_cmd)

if __name__ == "__main__":
    cli()
