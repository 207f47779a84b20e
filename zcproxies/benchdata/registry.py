"""Benchmark names: ``embedded`` and one per public table source, resolved to zcp files.

``zcp data download NAME`` fetches a table source (``zcproxies.data.download``) and converts
its files into ``<data root>/benchmarks/NAME.h5``; ``resolve_benchmark(NAME)`` then finds that
file, so ``zcp evaluate --benchmark NAME`` works with a name as well as with a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from zcproxies.benchdata.embedded import embedded_path
from zcproxies.benchdata.format import Benchmark, load_benchmark
from zcproxies.benchdata.importers import import_files
from zcproxies.data import data_root
from zcproxies.data.download import SOURCES, Source, download, source
from zcproxies.errors import DataError

EMBEDDED = "embedded"
BENCHMARK_DIR = "benchmarks"  # under the data root


def table_sources() -> list[Source]:
    """The sources that convert into a benchmark of their own name."""
    return [spec for spec in SOURCES.values() if spec.benchmark]


def benchmark_names() -> list[str]:
    """Every benchmark name ``resolve_benchmark`` knows."""
    return [EMBEDDED, *(spec.name for spec in table_sources())]


def benchmark_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the converted benchmark ``name`` lives: ``<root>/benchmarks/<name>.h5``."""
    return data_root(root) / BENCHMARK_DIR / f"{source(name).name}.h5"


def convert(name: str, root: str | os.PathLike[str] | None = None) -> Benchmark:
    """Convert the downloaded files of table source ``name`` into its zcp benchmark file.

    Written to a temporary name and renamed, so an interrupted conversion leaves no file.
    """
    spec = source(name)
    if not spec.benchmark:
        raise DataError(f"{spec.name} is a dataset, not a benchmark table")
    folder = data_root(root) / spec.subdir
    out = benchmark_path(spec.name, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        import_files(
            [folder / item.name for item in spec.files],
            tmp,
            generator="zcp data download",
            description=f"{spec.name}: {spec.description}",
        )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return load_benchmark(out)


def fetch(name: str, root: str | os.PathLike[str] | None = None) -> tuple[list[Path], Path | None]:
    """Download (or verify) source ``name``, and convert it when it is a table source.

    Returns the verified files and the benchmark file (None for a dataset).
    """
    spec = source(name)
    files = download(spec.name, data_root(root))
    if not spec.benchmark:
        return files, None
    convert(spec.name, root)
    return files, benchmark_path(spec.name, root)


def resolve_benchmark(
    value: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None
) -> Path:
    """The benchmark file of ``value``: an existing file path, a benchmark name, or None
    (the embedded default). A known name that is not downloaded yet says how to get it."""
    if value is None or str(value) == EMBEDDED:
        return embedded_path()
    path = Path(value)
    if path.is_file():
        return path
    names = benchmark_names()
    name = {n.lower(): n for n in names}.get(str(value).lower())
    if name is not None:
        found = benchmark_path(name, root)
        if not found.is_file():
            raise DataError(
                f"benchmark {name!r} is not downloaded (looked for {found}): run "
                f"`zcp data download {name}` (data root: --root, $ZCP_DATA_ROOT or the shared "
                "data directory)"
            )
        return found
    raise DataError(
        f"no benchmark file {str(value)!r} and no benchmark of that name; names: "
        f"{', '.join(names)} (`zcp data list`)"
    )
