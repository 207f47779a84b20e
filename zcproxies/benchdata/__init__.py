"""Benchmark data: the zcp HDF5 format, importers of the public files, the embedded benchmark.

``load_benchmark(path).tasks[(space, task)].frame`` gives a table's archs and accuracies;
``import_files(paths, out)`` converts original public files; ``load_embedded()`` is the default.
"""

from zcproxies.benchdata.embedded import embedded_path, embedded_task, load_embedded
from zcproxies.benchdata.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Benchmark,
    BenchmarkTask,
    load_benchmark,
    seed_agreement,
    validate_task,
    write_benchmark,
)
from zcproxies.benchdata.importers import KINDS, detect_kind, import_file, import_files

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "Benchmark",
    "BenchmarkTask",
    "detect_kind",
    "embedded_path",
    "embedded_task",
    "import_file",
    "import_files",
    "load_benchmark",
    "load_embedded",
    "seed_agreement",
    "validate_task",
    "write_benchmark",
]
