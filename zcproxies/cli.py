"""The ``zcp`` command: one entry point with subcommands for spaces, architectures and data."""

from __future__ import annotations

import sys

import click
import pandas as pd

from zcproxies.errors import ZcpError
from zcproxies.measure import count_flops, count_params
from zcproxies.spaces import get_space, list_spaces


def _table(rows: list[dict]) -> str:
    """Render rows as a plain aligned text table."""
    return pd.DataFrame(rows).to_string(index=False)


class ZcpGroup(click.Group):
    """A click group that turns zcp's own errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ZcpError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=ZcpGroup)
@click.version_option(package_name="zcp")
def main() -> None:
    """zcp: zero-cost proxies for neural architecture search."""


@main.command("spaces")
def spaces_cmd() -> None:
    """List the search spaces with their sizes and tasks (one row per task)."""
    rows = []
    for space in list_spaces():
        for i, t in enumerate(space.tasks.values()):
            rows.append({
                "space": space.name if i == 0 else "",
                "size": (f"{space.size:,}" if space.size < 10**9 else f"{space.size:.2e}")
                if i == 0 else "",
                "task": t.name,
                "classes": t.num_classes,
                "input": "x".join(map(str, t.input_shape)),
                "kind": t.kind,
                "data": t.dataset,
            })
    click.echo(_table(rows))


@main.group("arch")
def arch_group() -> None:
    """Sample and inspect architectures."""


@arch_group.command("sample")
@click.argument("space")
@click.option("--seed", default=0, show_default=True, help="Seed of the sampler.")
@click.option("-n", "--num", default=1, show_default=True, help="How many architectures.")
@click.option("--form", type=click.Choice(["key", "string"]), default="key", show_default=True,
              help="NASLib key or the benchmark's own string.")
def arch_sample(space: str, seed: int, num: int, form: str) -> None:
    """Print seeded random architectures of SPACE, one per line."""
    sp = get_space(space)
    import numpy as np

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
    sp = get_space(space)
    parsed = sp.parse(arch)
    spec = sp.task(task)
    model = sp.build(parsed, spec)
    click.echo(f"space:      {sp.name}")
    click.echo(f"task:       {spec.name} ({spec.num_classes} classes, input "
               f"{'x'.join(map(str, spec.input_shape))})")
    click.echo(f"key:        {sp.encode(parsed)}")
    click.echo(f"string:     {sp.to_string(parsed)}")
    click.echo(f"hash:       {sp.canonical_hash(parsed)}")
    click.echo(f"params:     {count_params(model):,} ({count_params(model) / 1e6:.6f} M)")
    naslib = count_flops(model, spec.input_shape) / 1e6
    nb201 = count_flops(model, spec.input_shape, convention="nb201") / 1e6
    click.echo(f"flops:      {naslib:.6f} M (NAS-Bench-Suite-Zero convention; "
               f"{nb201:.6f} M as NAS-Bench-201 counts; batch 1)")
    click.echo(sp.describe(parsed))


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
