"""The ``zcp`` command: one entry point with subcommands for spaces, architectures and data."""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

from zcproxies.errors import ZcpError


def _table(rows: list[dict]) -> str:
    """Render rows as a plain aligned text table."""
    import pandas as pd  # imported by the commands that print tables, not by ``zcp --help``

    return pd.DataFrame(rows).to_string(index=False)


# Subcommands of the application layers, imported only when invoked so that the library
# (``zcproxies``) never imports ``evaluator`` or ``autodl``.
LAZY_COMMANDS = {
    "evaluate": "evaluator.cli:evaluate_cmd",
    "check": "evaluator.cli:check_cmd",
    "pack": "evaluator.cli:pack_cmd",
    "autodl": "autodl.cli:autodl_group",
    "batch": "evaluator.batch_cli:batch_cmd",
    "leaderboard": "evaluator.batch_cli:leaderboard_cmd",
}
# Their docstrings' first lines for ``zcp --help``, which must not import them (torch takes
# seconds); tests/test_layering.py checks each against the command's own docstring.
LAZY_HELP = {
    "evaluate": "Score SUBMISSION (directory or .zip) by mean Kendall-Tau over the "
    "benchmark's tasks.",
    "check": "Try SUBMISSION on a few architectures exactly as evaluate would; exit 1 if it fails.",
    "pack": "Zip a submission DIRECTORY for upload (checked like the evaluator will).",
    "autodl": "AutoDL challenge datasets, training and scoring.",
    "batch": "Evaluate every upload (zip or directory) of UPLOADS_DIR on every task of the "
    "benchmark.",
    "leaderboard": "Rank the uploads of RESULTS_DIR; write leaderboard.csv/.json/.html and "
    "report.md.",
}


class ZcpGroup(click.Group):
    """The ``zcp`` group: lazy application subcommands; zcp errors (exit 2) and click's errors
    (a usage error: exit 2) become one ``error:`` line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click lays it out, without importing the lazy commands: their
        static help stands in a light ``click.Command`` (click's own shortening, no import)."""
        commands = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                commands.append((name, click.Command(name, help=LAZY_HELP[name])))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ZcpError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except click.ClickException as exc:  # a subcommand's bad argument, option or setting
            _click_error(exc, ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as exc:  # zcp's own bad option or missing command
            _click_error(exc, ctx)


def _click_error(exc: click.ClickException, ctx: click.Context) -> NoReturn:
    """One ``error:`` line naming the mistake (for a usage error, also where the help is), with
    click's exit status (its own layout of a usage error is usage, hint, blank, error); a group
    called without a command still shows its help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        raise exc
    message = exc.format_message()
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
        message = f"{message} (see '{where} --help')"
    click.echo(f"error: {message}", err=True)
    sys.exit(exc.exit_code)


@click.group(cls=ZcpGroup)
@click.version_option(package_name="zcp")
def main() -> None:
    """zcp: zero-cost proxies for neural architecture search."""


@main.command("spaces")
def spaces_cmd() -> None:
    """List the search spaces with their sizes and tasks (one row per task)."""
    from zcproxies.spaces import list_spaces

    rows = []
    for space in list_spaces():
        for i, t in enumerate(space.tasks.values()):
            rows.append(
                {
                    "space": space.name if i == 0 else "",
                    "size": (f"{space.size:,}" if space.size < 10**9 else f"{space.size:.2e}")
                    if i == 0
                    else "",
                    "task": t.name,
                    "classes": t.num_classes,
                    "input": "x".join(map(str, t.input_shape)),
                    "kind": t.kind,
                    "data": t.dataset,
                }
            )
    click.echo(_table(rows))


@main.group("arch")
def arch_group() -> None:
    """Sample and inspect architectures."""


@arch_group.command("sample")
@click.argument("space")
@click.option("--seed", default=0, show_default=True, help="Seed of the sampler.")
@click.option("-n", "--num", default=1, show_default=True, help="How many architectures.")
@click.option(
    "--form",
    type=click.Choice(["key", "string"]),
    default="key",
    show_default=True,
    help="NASLib key or the benchmark's own string.",
)
def arch_sample(space: str, seed: int, num: int, form: str) -> None:
    """Print seeded random architectures of SPACE, one per line."""
    import numpy as np

    from zcproxies.spaces import get_space

    sp = get_space(space)

    gen = np.random.default_rng(seed)
    for _ in range(num):
        arch = sp.sample(gen)
        click.echo(sp.encode(arch) if form == "key" else sp.to_string(arch))


@arch_group.command("show")
@click.argument("space")
@click.argument("arch")
@click.option("--task", default=None, help="Task (default: the space's first).")
def arch_show(space: str, arch: str, task: str | None) -> None:
    """Show ARCH of SPACE: encodings, hash, parameters, FLOPs and the cell."""
    from zcproxies.measure import count_flops, count_params
    from zcproxies.spaces import get_space

    sp = get_space(space)
    parsed = sp.parse(arch)
    spec = sp.task(task)
    model = sp.build(parsed, spec)
    click.echo(f"space:      {sp.name}")
    click.echo(
        f"task:       {spec.name} ({spec.num_classes} classes, input "
        f"{'x'.join(map(str, spec.input_shape))})"
    )
    click.echo(f"key:        {sp.encode(parsed)}")
    click.echo(f"string:     {sp.to_string(parsed)}")
    click.echo(f"hash:       {sp.canonical_hash(parsed)}")
    click.echo(f"params:     {count_params(model):,} ({count_params(model) / 1e6:.6f} M)")
    naslib = count_flops(model, spec.input_shape) / 1e6
    nb201 = count_flops(model, spec.input_shape, convention="nb201") / 1e6
    click.echo(
        f"flops:      {naslib:.6f} M (NAS-Bench-Suite-Zero convention; "
        f"{nb201:.6f} M as NAS-Bench-201 counts; batch 1)"
    )
    click.echo(sp.describe(parsed))


@main.group("data")
def data_group() -> None:
    """Public data and benchmark tables: download, import, inspect."""


@data_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The zcp benchmark HDF5 file to write.",
)
def data_import(files: tuple[str, ...], out: str) -> None:
    """Convert original public FILES (NASLib zc_*.json, competition JSON, full tables) to OUT."""
    from zcproxies.benchdata import import_files

    _print_benchmark(import_files(files, out))
    click.echo(f"wrote {out}")


_ROOT_OPTION = click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="Data root [default: $ZCP_DATA_ROOT, else the shared data directory].",
)


@data_group.command("download")
@click.argument("names", nargs=-1, required=True)
@_ROOT_OPTION
def data_download(names: tuple[str, ...], root: str | None) -> None:
    """Fetch, verify and convert public data: NAMES are sources or groups (`zcp data list`).

    Files go to ROOT/<subdir>/ (resumed, checksummed, renamed only once verified); a table
    source becomes the benchmark ROOT/benchmarks/NAME.h5, usable as `--benchmark NAME`.
    """
    from zcproxies.benchdata.registry import fetch
    from zcproxies.data import data_root
    from zcproxies.data.download import expand

    for name in expand(names):
        files, bench = fetch(name, root)
        click.echo(f"{name}: {len(files)} file(s) verified under {data_root(root)}")
        if bench is not None:
            click.echo(f"  benchmark {bench}: zcp evaluate --benchmark {name}")


@data_group.command("list")
@_ROOT_OPTION
def data_list(root: str | None) -> None:
    """The public sources and benchmark names, and what the data root holds of them."""
    from zcproxies.benchdata.registry import EMBEDDED, benchmark_names, benchmark_path
    from zcproxies.data import data_root
    from zcproxies.data.download import SOURCES, groups

    base = data_root(root)
    rows = []
    for spec in SOURCES.values():
        names = [f.name for f in spec.files] or list(spec.verify)
        present = sum((base / spec.subdir / n).is_file() or (base / n).is_file() for n in names)
        rows.append(
            {
                "name": spec.name,
                "kind": "benchmark" if spec.benchmark else "dataset",
                "files": f"{present}/{len(names)}",
                "checksums": spec.checksums,
                "benchmark file": "yes"
                if spec.benchmark and benchmark_path(spec.name, root).is_file()
                else "",
                "description": spec.description[:70],
            }
        )
    click.echo(f"data root: {base}")
    click.echo(_table(rows))
    click.echo("groups: " + "; ".join(f"{g} = {' '.join(n)}" for g, n in groups().items()))
    click.echo(
        "--benchmark NAME: embedded (the default), or a table above once downloaded: "
        + " ".join(name for name in benchmark_names() if name != EMBEDDED)
    )


@data_group.command("pin")
@click.argument("names", nargs=-1, required=True)
@_ROOT_OPTION
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Manifest to update [default: the package's sources.json].",
)
def data_pin(names: tuple[str, ...], root: str | None, manifest: str | None) -> None:
    """Maintainers: write size and sha256 of downloaded NAMES into the sources manifest."""
    from pathlib import Path

    from zcproxies.data import data_root
    from zcproxies.data.download import MANIFEST_PATH, expand, pin

    path = Path(manifest) if manifest else MANIFEST_PATH
    for name, lines in pin(expand(names), data_root(root), path).items():
        for line in lines:
            click.echo(f"{name}: pinned {line}")
    click.echo(f"updated {path}")


@data_group.command("info")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
def data_info(path: str | None) -> None:
    """Show the tables of a zcp benchmark file (default: the embedded benchmark)."""
    from zcproxies.benchdata import load_benchmark, load_embedded

    _print_benchmark(load_benchmark(path) if path else load_embedded())


def _print_benchmark(bench: object) -> None:
    """One row per (space, task) table: size, target, reference proxies, seed agreement."""
    rows = []
    for (space, task), table in bench.tasks.items():  # type: ignore[attr-defined]
        tau = table.seed_kendall_tau() if table.seeds else None
        rows.append(
            {
                "space": space,
                "task": task,
                "archs": len(table),
                "target": table.target,
                "proxies": len(table.proxies.columns) if table.proxies is not None else 0,
                "seed tau": f"{tau:.3f}" if tau is not None else "",
                "source": table.source[:60],
            }
        )
    click.echo(_table(rows))


@main.command("proxies")
def proxies_cmd() -> None:
    """List the registered zero-cost proxies with their metadata."""
    from zcproxies.proxies import list_proxies

    rows = [
        {
            "proxy": info.name,
            "labels": "yes" if info.needs_labels else "no",
            "grads": "yes" if info.needs_grad else "no",
            "better": "higher" if info.higher_is_better else "lower",
            "kind": "population" if info.population else "per-arch",
            "data": "shape only" if info.data_free else "batch",
            "citation": info.citation,
        }
        for info in list_proxies()
    ]
    click.echo(_table(rows))


if __name__ == "__main__":
    main()
