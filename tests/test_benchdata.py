"""Benchmark data: the HDF5 format and its validation, importers of the public files, the embedded
default benchmark."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from zcproxies import DataError, get_space
from zcproxies.benchdata import (
    FORMAT_NAME,
    FORMAT_VERSION,
    BenchmarkTask,
    detect_kind,
    import_files,
    load_benchmark,
    write_benchmark,
)
from zcproxies.benchdata import embedded as emb
from zcproxies.benchdata.importers import (
    read_competition,
    read_nats_table,
    read_nb201_table,
    read_nsz,
    read_tnb_table,
)
from zcproxies.data import get_provider
from zcproxies.data.synthetic import ShapesStyle
from zcproxies.errors import UnknownName

NB201 = get_space("nasbench201")
ARCHS = [(0, 1, 2, 3, 4, 0), (2, 2, 2, 2, 2, 2), (1, 1, 1, 1, 1, 1), (4, 3, 3, 3, 2, 3)]
CREATED = "2024-01-01T00:00:00+00:00"


def is_registered(space: str) -> bool:
    try:
        get_space(space)
    except UnknownName:
        return False
    return True


def need_space(space: str) -> None:
    """Skip, saying why, while another engineer's space is not registered yet."""
    if not is_registered(space):
        pytest.skip(f"search space {space!r} is not registered in zcproxies.spaces yet")


def full_table(n: int = len(ARCHS)) -> BenchmarkTask:
    """A valid NB201 cifar10 table using every optional part of the format."""
    rng = np.random.default_rng(0)
    seeds = rng.uniform(50, 95, size=(n, 3))
    frame = pd.DataFrame(
        {
            "arch": [NB201.encode(a) for a in ARCHS[:n]],
            "val_accuracy": seeds.mean(1),
            "test_accuracy": rng.uniform(50, 95, n),
            "params": rng.uniform(0.1, 1.5, n),
            "flops": rng.uniform(10, 200, n),
        }
    )
    proxies = pd.DataFrame(
        {"synflow": rng.normal(size=n), "snip": [np.nan, *rng.normal(size=n - 1)]}
    )
    return BenchmarkTask(
        "nb201",
        "cifar10",
        frame,
        "unit test",
        seeds={"val_accuracy": seeds},
        proxies=proxies,
        protocol={"epochs": 3, "lr": 0.1},
        column_units={"params": "millions"},
        attrs={"seeds": [0, 1, 2], "note": "x"},
    )


# ---- format: round trip --------------------------------------------------------------------------
def test_round_trip(tmp_path: Path) -> None:
    table = full_table()
    path = write_benchmark(tmp_path / "b.h5", [table], generator="pytest", created=CREATED)
    bench = load_benchmark(path)
    assert bench.attrs == {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": CREATED,
        "generator": "pytest",
    }
    assert list(bench.tasks) == [("nasbench201", "cifar10")]  # alias resolved
    got = bench.task("nb201", "cifar10")
    pd.testing.assert_frame_equal(got.frame, table.frame)
    pd.testing.assert_frame_equal(got.proxies, table.proxies)
    np.testing.assert_array_equal(got.seeds["val_accuracy"], table.seeds["val_accuracy"])
    assert got.archs == ARCHS
    assert (got.source, got.units, got.higher_is_better, got.dataset, got.target) == (
        "unit test",
        "top-1 accuracy (%)",
        True,
        "cifar10",
        "val_accuracy",
    )
    assert got.protocol == {"epochs": 3, "lr": 0.1}
    assert got.column_units == {"params": "millions"}
    assert got.attrs == {"seeds": [0, 1, 2], "note": "x"}
    with h5py.File(path) as f:  # the documented layout
        group = f["nasbench201/cifar10"]
        assert group["arch"].dtype.kind == "O" and h5py.check_string_dtype(group["arch"].dtype)
        assert group["val_accuracy"].dtype == np.float64
        assert group["val_accuracy_seeds"].shape == (len(ARCHS), 3)
        assert set(group["proxies"]) == {"synflow", "snip"}


def test_rewrite_is_byte_identical(tmp_path: Path) -> None:
    a = write_benchmark(tmp_path / "a.h5", [full_table()], created=CREATED)
    b = write_benchmark(tmp_path / "b.h5", load_benchmark(a), created=CREATED)
    assert a.read_bytes() == b.read_bytes()


def test_seed_kendall_tau() -> None:
    table = full_table()
    seeds = table.seeds["val_accuracy"]
    expect = np.mean(
        [kendalltau(seeds[:, i], seeds[:, j]).statistic for i, j in ((0, 1), (0, 2), (1, 2))]
    )
    assert table.seed_kendall_tau() == pytest.approx(expect)
    with pytest.raises(DataError, match="no per-seed values of 'test_accuracy'"):
        table.seed_kendall_tau("test_accuracy")


def test_task_lookup(tmp_path: Path) -> None:
    bench = load_benchmark(write_benchmark(tmp_path / "b.h5", [full_table()]))
    assert bench.task("nasbench201").task == "cifar10"
    with pytest.raises(
        UnknownName,
        match=r"no table nasbench201/cifar100; tables: "
        r"nasbench201/cifar10",
    ):
        bench.task("nb201", "cifar100")
    other = full_table()
    other.task = "cifar100"
    two = load_benchmark(write_benchmark(tmp_path / "c.h5", [full_table(), other]))
    assert list(two.tasks) == [("nasbench201", "cifar10"), ("nasbench201", "cifar100")]
    with pytest.raises(UnknownName, match="2 tables of nasbench201; name the task"):
        two.task("nb201")


def test_keys_are_canonicalised(tmp_path: Path) -> None:
    table = full_table()
    table.frame["arch"] = [str(list(a)).replace(" ", "") for a in ARCHS]  # "[0,1,2,3,4,0]"
    got = load_benchmark(write_benchmark(tmp_path / "b.h5", [table])).task("nb201")
    assert list(got.frame["arch"]) == [str(a) for a in ARCHS]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: setattr(t, "space", "nope"), "unknown search space 'nope'"),
        (lambda t: setattr(t, "task", "svhn"), "space 'nasbench201' has no task 'svhn'"),
        (lambda t: setattr(t, "target", "params"), "target must be one of"),
        (lambda t: t.frame.insert(1, "extra", 1.0), "unexpected column"),
        (
            lambda t: setattr(t, "frame", t.frame.drop(columns="val_accuracy")),
            "missing dataset 'val_accuracy'",
        ),
        (
            lambda t: setattr(t, "seeds", {"val_accuracy": np.zeros((2, 2))}),
            r"length mismatch: dataset 'val_accuracy_seeds' has shape \(2, 2\), "
            r"expected \(4, seeds\)",
        ),
        (lambda t: setattr(t, "seeds", {"params": np.zeros((4, 2))}), "only val_accuracy"),
        (
            lambda t: setattr(t, "proxies", t.proxies.iloc[:3]),
            "length mismatch: proxies have 3 rows",
        ),
        (
            lambda t: t.frame.loc.__setitem__((2, "test_accuracy"), np.inf),
            "dataset 'test_accuracy' has 1 non-finite value",
        ),
        (
            lambda t: t.frame.loc.__setitem__((3, "arch"), "(9, 9, 9, 9, 9, 9)"),
            r"arch row 3 \('\(9, 9, 9, 9, 9, 9\)'\) is not a nasbench201 key",
        ),
        (
            lambda t: t.frame.loc.__setitem__((3, "arch"), t.frame.loc[0, "arch"]),
            "duplicate arch '.*' at rows 0 and 3",
        ),
        (lambda t: setattr(t, "protocol", {"f": object()}), "protocol is not JSON-serialisable"),
        (lambda t: setattr(t, "attrs", {"units": "x"}), "attrs may not redefine units"),
        (lambda t: setattr(t, "frame", t.frame.iloc[:0]), "the table has no rows"),
    ],
)
def test_write_validates(
    tmp_path: Path, change: Callable[[BenchmarkTask], None], message: str
) -> None:
    table = full_table()
    change(table)
    with pytest.raises(DataError, match=message) as info:
        write_benchmark(tmp_path / "b.h5", [table])
    assert str(tmp_path / "b.h5") in str(info.value)
    assert not (tmp_path / "b.h5").exists()


def test_write_refuses_two_tables_of_one_task(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="two tables for nasbench201/cifar10"):
        write_benchmark(tmp_path / "b.h5", [full_table(), full_table()])
    with pytest.raises(DataError, match="no tables to write"):
        write_benchmark(tmp_path / "b.h5", [])


# ---- format: every load-time error, on files damaged after a valid write -------------------------
def _delete(name: str) -> Callable[[h5py.File], None]:
    return lambda f: f["nasbench201/cifar10"].__delitem__(name)


def _replace(name: str, data: object) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        if name in f["nasbench201/cifar10"]:
            del f["nasbench201/cifar10"][name]
        f["nasbench201/cifar10"][name] = data

    return change


def _set_arch(row: int, key: str) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        f["nasbench201/cifar10/arch"][row] = key

    return change


def _rename_space(f: h5py.File) -> None:
    f.move("nasbench201", "nope")
    f["nope/cifar10"].attrs["space"] = "nope"


GROUP = "group /nasbench201/cifar10: "


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_delete("val_accuracy"), GROUP + "missing dataset 'val_accuracy'"),
        (_delete("arch"), GROUP + "missing dataset 'arch'"),
        (
            _replace("test_accuracy", np.ones(3)),
            GROUP + "length mismatch between datasets: .*test_accuracy 3",
        ),
        (
            _replace("val_accuracy_seeds", np.ones((5, 2))),
            GROUP + "length mismatch between datasets: .*val_accuracy_seeds 5",
        ),
        (
            _replace("val_accuracy", [1.0, np.nan, 3.0, 4.0]),
            GROUP + "dataset 'val_accuracy' has 1 non-finite value.*row 1",
        ),
        (
            _replace("val_accuracy", np.array([b"a", b"b", b"c", b"d"])),
            GROUP + "dataset 'val_accuracy' is not numeric",
        ),
        (_replace("params", np.ones((4, 2))), GROUP + "'params' must be a 1-D dataset"),
        (_replace("bogus", np.ones(4)), GROUP + "unexpected dataset 'bogus'"),
        (_replace("arch", np.arange(4)), GROUP + "arch row 0 is int64, not a key string"),
        (_rename_space, "group /nope/cifar10: unknown search space 'nope'"),
        (
            _set_arch(1, "(0, 1, 2)"),
            GROUP + r"arch row 1 \('\(0, 1, 2\)'\) is not a nasbench201 key",
        ),
        (_set_arch(1, "not a key"), GROUP + "arch row 1 .* is not a nasbench201 key"),
        (_set_arch(2, "(0, 1, 2, 3, 4, 0)"), GROUP + "duplicate arch '.*' at rows 0 and 2"),
        (
            lambda f: f.attrs.__setitem__("format_version", 2),
            "unsupported format_version 2 "
            r"\(this zcp reads version 1\)",
        ),
        (lambda f: f.attrs.__delitem__("format"), "not a zcp benchmark file"),
        (
            lambda f: f["nasbench201/cifar10"].attrs.__delitem__("source"),
            GROUP + "missing attribute.*source",
        ),
        (
            lambda f: f["nasbench201/cifar10"].attrs.__setitem__("task", "cifar100"),
            GROUP + "attributes say nasbench201/cifar100, the group path says nasbench201/cifar10",
        ),
        (
            lambda f: f["nasbench201/cifar10"].attrs.__setitem__("protocol", "{oops"),
            GROUP + "attribute 'protocol' is not JSON",
        ),
        (lambda f: f["nasbench201"].create_dataset("x", data=[1]), "/nasbench201/x is a dataset"),
        (lambda f: f.__delitem__("nasbench201"), "holds no benchmark tables"),
    ],
)
def test_load_validates(tmp_path: Path, damage: Callable[[h5py.File], None], message: str) -> None:
    path = write_benchmark(tmp_path / "b.h5", [full_table()])
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(DataError, match=message) as info:
        load_benchmark(path)
    assert str(info.value).startswith(f"{path}: ")


def test_load_not_a_benchmark(tmp_path: Path) -> None:
    text = tmp_path / "bench.h5"
    text.write_text("arch,val_accuracy\n")
    with pytest.raises(DataError, match=r"bench.h5: not an HDF5 file"):
        load_benchmark(text)
    with pytest.raises(DataError, match="no such benchmark file"):
        load_benchmark(tmp_path / "missing.h5")


# ---- importers on small files written here -------------------------------------------------------
def write_json(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_import_small_nsz(tmp_path: Path) -> None:
    rows = {
        NB201.encode(a): {
            "val_accuracy": 50.0 + i,
            "params": 0.1 * i,
            "flops": 2.0,
            "synflow": float(i),
            "snip": -float(i),
        }
        for i, a in enumerate(ARCHS)
    }
    path = write_json(tmp_path / "zc_mine.json", {"nasbench201": {"cifar100": rows}})
    assert detect_kind(path).name == "nas-bench-suite-zero"
    bench = import_files([path], tmp_path / "out.h5")
    table = bench.task("nasbench201", "cifar100")
    assert table.archs == ARCHS
    assert list(table.frame.columns) == ["arch", "val_accuracy", "params", "flops"]
    assert list(table.proxies.columns) == ["snip", "synflow"]
    np.testing.assert_array_equal(table.proxies["synflow"], np.arange(4.0))
    assert table.column_units == {"params": "millions", "flops": "MFLOPs (batch size 1)"}
    rows[NB201.encode(ARCHS[3])].pop("val_accuracy")
    with pytest.raises(DataError, match="nasbench201/cifar100: row 3 has no val_accuracy"):
        read_nsz(write_json(tmp_path / "zc_bad.json", {"nasbench201": {"cifar100": rows}}))


def test_import_small_nsz_unknown_space(tmp_path: Path) -> None:
    path = write_json(tmp_path / "zc_x.json", {"nasbench999": {"c": {"(1,)": {"val_accuracy": 1}}}})
    with pytest.raises(DataError, match="holds search space 'nasbench999', not registered"):
        import_files([path], tmp_path / "out.h5")


def test_import_small_competition_merges_and_refuses_overlap(tmp_path: Path) -> None:
    train = write_json(
        tmp_path / "train.json",
        [{"arch": list(a), "accuracy": 80.0 + i} for i, a in enumerate(ARCHS[:3])],
    )
    test = write_json(tmp_path / "test.json", [{"arch": list(ARCHS[3]), "accuracy": 70.0}])
    bench = import_files([train, test], tmp_path / "out.h5")
    table = bench.task("nasbench201", "cifar10")
    assert table.archs == ARCHS
    np.testing.assert_array_equal(table.accuracy, [80.0, 81.0, 82.0, 70.0])
    assert "train.json" in table.source and "test.json" in table.source
    with pytest.raises(DataError, match="duplicate arch"):
        import_files([train, train], tmp_path / "out2.h5")
    bad = write_json(tmp_path / "bad.json", [{"arch": [0, 9, 0, 0, 0, 0], "accuracy": 1.0}])
    with pytest.raises(DataError, match=r"bad.json: arch row 0: NAS-Bench-201 arch must be"):
        read_competition(bad)


def test_import_refuses_merging_different_layouts(tmp_path: Path) -> None:
    nsz = write_json(
        tmp_path / "zc.json",
        {
            "nasbench201": {
                "cifar10": {NB201.encode(ARCHS[0]): {"val_accuracy": 1.0, "synflow": 1.0}}
            }
        },
    )
    comp = write_json(tmp_path / "train.json", [{"arch": list(ARCHS[1]), "accuracy": 2.0}])
    with pytest.raises(DataError, match=r"different layout.*separate files"):
        import_files([nsz, comp], tmp_path / "out.h5")


def test_import_small_tables(tmp_path: Path) -> None:
    nb201 = tmp_path / "nb201.csv"
    pd.DataFrame(
        {
            "arch": [str(a) for a in ARCHS],
            "ImageNet16-120": 1.0,
            "cifar10": 2.0,
            "cifar100": [3.0, 4.0, 5.0, 6.0],
        }
    ).to_csv(nb201, index=False)
    nats = tmp_path / "nats.csv"
    pd.DataFrame(
        {
            "CIFAR10TestAccuracy200Epochs": [9.0, 8.0],
            "CIFAR100TestAccuracy200Epochs": 1.0,
            "ImageNetTestAccuracy200Epochs": 2.0,
            "ArchitectureString": [NB201.to_string(a) for a in ARCHS[:2]],
            "UniqueString": "u",
        }
    ).to_csv(nats, index=False)
    assert detect_kind(nb201).name == "nb201-table" and detect_kind(nats).name == "nats-table"
    tables = {t.key: t for t in read_nb201_table(nb201)}
    assert set(tables) == {("nasbench201", t) for t in ("cifar10", "cifar100", "ImageNet16-120")}
    np.testing.assert_array_equal(tables["nasbench201", "cifar100"].accuracy, [3, 4, 5, 6])
    nats_tables = import_files([nats], tmp_path / "nats.h5").tasks
    cifar10 = nats_tables["nasbench201", "cifar10"]
    assert cifar10.target == "test_accuracy" and "val_accuracy" not in cifar10.frame
    assert cifar10.archs == ARCHS[:2]
    np.testing.assert_array_equal(cifar10.accuracy, [9.0, 8.0])


def test_import_unknown_files(tmp_path: Path) -> None:
    for name, text in (
        ("x.csv", "a,b\n1,2\n"),
        ("x.json", '{"a": 1}'),
        ("x.bin", "\x00\x01"),
        ("empty.txt", ""),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(
            DataError,
            match=f"{name}: unknown benchmark file kind. Known kinds: zcp: .*nas-bench-suite-zero",
        ):
            import_files([tmp_path / name], tmp_path / "out.h5")
    with pytest.raises(DataError, match="no such file"):
        detect_kind(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text('[{"arch": [1')
    with pytest.raises(DataError, match="unknown benchmark file kind"):
        detect_kind(tmp_path / "broken.json")
    tnb = tmp_path / "tnb.csv"
    pd.DataFrame({"arch": ["(1, 1, 1, 1)"], "jigsaw": [1.0]}).to_csv(tnb, index=False)
    assert detect_kind(tnb).name == "transnas-table"
    with pytest.raises(DataError, match="put 'micro' or 'macro' in the file name"):
        read_tnb_table(tnb)


def test_import_zcp_file_round_trips(tmp_path: Path) -> None:
    first = write_benchmark(tmp_path / "a.h5", [full_table()])
    assert detect_kind(first).name == "zcp"
    again = import_files([first], tmp_path / "b.h5").task("nasbench201", "cifar10")
    pd.testing.assert_frame_equal(again.frame, full_table().frame)


# ---- importers on the original public files ------------------------------------------------------
@pytest.mark.shared
def test_nsz_nb201(shared_dir: Path, tmp_path: Path) -> None:
    bench = import_files(
        [shared_dir / "nas_bench_suite_zero/zc_nasbench201.json"], tmp_path / "nsz.h5"
    )
    assert {k: len(t) for k, t in bench.tasks.items()} == {
        ("nasbench201", t): 491 for t in ("cifar10", "cifar100", "ImageNet16-120")
    }
    table = bench.task("nasbench201", "cifar10")
    assert sorted(table.proxies.columns) == [
        "epe_nas",
        "fisher",
        "grad_norm",
        "grasp",
        "jacov",
        "l2_norm",
        "plain",
        "snip",
        "synflow",
    ]
    original = json.loads((shared_dir / "nas_bench_suite_zero/zc_nasbench201.json").read_text())
    assert list(table.frame["arch"]) == list(original["nasbench201"]["cifar10"])  # verbatim
    row = table.frame.set_index("arch").loc["(4, 3, 3, 3, 2, 3)"]  # first row of the file
    assert (row["val_accuracy"], row["params"], row["flops"]) == (88.24, 0.428346, 62.502592)
    # The same archs carry the same values in the full NB201 table.
    full = {
        t.task: t.frame.set_index("arch")["val_accuracy"]
        for t in read_nb201_table(shared_dir / "full_tables/nasbench201_val_accuracy.csv")
    }
    for (_, task), t in bench.tasks.items():
        np.testing.assert_array_equal(t.accuracy, full[task].loc[t.frame["arch"]].to_numpy())


@pytest.mark.shared
@pytest.mark.parametrize(
    ("file", "space"),
    [("zc_nasbench101.json", "nasbench101"), ("zc_nasbench301.json", "nasbench301")],
)
def test_nsz_other_spaces(shared_dir: Path, file: str, space: str) -> None:
    need_space(space)
    path = shared_dir / "nas_bench_suite_zero" / file
    (table,) = read_nsz(path)
    assert (table.key, len(table), table.proxies.shape[1]) == ((space, "cifar10"), 500, 9)
    # NASLib's keys are kept verbatim (``encode`` of the decoded arch gives the same string).
    assert list(table.frame["arch"]) == list(json.loads(path.read_text())[space]["cifar10"])


@pytest.mark.shared
def test_competition(shared_dir: Path, tmp_path: Path) -> None:
    folder = shared_dir / "competition/nasbench201/cifar10"
    assert [len(read_competition(folder / f)[0]) for f in ("train.json", "test.json")] == [80, 20]
    table = import_files([folder / "train.json", folder / "test.json"], tmp_path / "c.h5").task(
        "nasbench201", "cifar10"
    )
    assert len(table) == 100
    # 'accuracy' is NAS-Bench-201's cifar10-valid accuracy (as the source attribute says).
    (full,) = [
        t
        for t in read_nb201_table(shared_dir / "full_tables/nasbench201_val_accuracy.csv")
        if t.task == "cifar10"
    ]
    expect = full.frame.set_index("arch")["val_accuracy"].loc[table.frame["arch"]].to_numpy()
    np.testing.assert_array_equal(table.accuracy, expect)


@pytest.mark.shared
def test_full_nb201_and_nats_tables(shared_dir: Path) -> None:
    val = {
        t.task: t for t in read_nb201_table(shared_dir / "full_tables/nasbench201_val_accuracy.csv")
    }
    nats = {
        t.task: t
        for t in read_nats_table(shared_dir / "full_tables/nats_bench_tss_test_accuracy.csv")
    }
    for tables in (val, nats):
        assert set(tables) == {"cifar10", "cifar100", "ImageNet16-120"}
        for table in tables.values():
            assert len(table) == 15625 and table.frame["arch"].is_unique
    assert val["cifar10"].frame.iloc[1].tolist() == ["(0, 0, 0, 0, 0, 1)", 82.47]
    first = nats["cifar10"].frame.iloc[0]  # |avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+...
    assert first["arch"] == str((4, 3, 3, 0, 0, 0)) and first["test_accuracy"] == 85.86333333333334
    # Test and validation accuracies of the same archs agree closely in rank.
    test_acc = nats["cifar10"].frame.set_index("arch")["test_accuracy"]
    tau = kendalltau(val["cifar10"].accuracy, test_acc.loc[val["cifar10"].frame["arch"]]).statistic
    assert tau > 0.8


@pytest.mark.shared
@pytest.mark.parametrize(
    ("file", "space", "rows", "tasks"),
    [
        ("transbench101_micro_val_accuracy.csv", "transbench101_micro", 4096, 4),
        ("transbench101_macro_val_accuracy.csv", "transbench101_macro", 3256, 7),
    ],
)
def test_transnas_tables(shared_dir: Path, file: str, space: str, rows: int, tasks: int) -> None:
    need_space(space)
    tables = read_tnb_table(shared_dir / "full_tables" / file)
    assert len(tables) == tasks
    assert all(t.space == space and len(t) == rows and t.frame["arch"].is_unique for t in tables)
    units = {t.task: t.units for t in tables}
    assert units["room_layout"] == "negative L2 loss" and units["jigsaw"] == "top-1 accuracy (%)"


# ---- the embedded default benchmark --------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded() -> BenchmarkTask:
    return emb.embedded_task()


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads(emb.embedded_path().with_suffix(".json").read_text())


def test_embedded_file(embedded: BenchmarkTask, summary: dict) -> None:
    space = get_space(emb.SPACE)
    assert emb.embedded_path().stat().st_size < 5_000_000
    assert (embedded.space, embedded.task, embedded.dataset) == (
        "nasbench201_mini",
        "shapes",
        "shapes",
    )
    n = len(embedded)
    assert n >= 1000 and n == summary["num_archs"]
    assert len({space.canonical_key(a) for a in embedded.archs}) == n
    assert embedded.archs == emb.sample_archs(n)  # the documented seeded sample
    for column in ("val_accuracy", "test_accuracy"):
        seeds = embedded.seeds[column]
        assert seeds.shape == (n, 2)
        np.testing.assert_allclose(embedded.frame[column], seeds.mean(1))
    expect = json.loads(json.dumps(emb.protocol_record()))
    assert {k: v for k, v in embedded.protocol.items() if k != "torch_version"} == {
        k: v for k, v in expect.items() if k != "torch_version"
    }
    assert embedded.protocol == summary["protocol"]
    # the measured figures the evaluator's summary shows are stored in the file
    for key in emb.AGREEMENT_KEYS:
        assert embedded.attrs[f"agreement_{key}"] == summary["aims"][key]
    assert embedded.attrs["description"] == emb.DESCRIPTION


def test_embedded_task_matches_the_generator() -> None:
    """The registered task, the provider and the protocol describe the same images."""
    task = get_space(emb.SPACE).task(emb.TASK)
    assert emb.PROTOCOL.task == task and task.dataset == "shapes"
    assert task.input_shape == get_provider("shapes").shape
    assert emb.PROTOCOL.style == ShapesStyle()  # the provider renders the default style
    assert get_space(emb.SPACE).macro == (emb.PROTOCOL.channels, emb.PROTOCOL.cells)


@pytest.mark.shared
def test_embedded_agreement_with_nb201(embedded: BenchmarkTask, shared_dir: Path) -> None:
    """The stored Kendall-Tau with NB201 CIFAR-10 is what the table and the shared data give."""
    nb201 = pd.read_csv(shared_dir / "full_tables" / "nasbench201_val_accuracy.csv")
    cifar10 = nb201.set_index("arch")["cifar10"].loc[embedded.frame["arch"]].to_numpy()
    tau = kendalltau(embedded.frame["val_accuracy"], cifar10).statistic
    assert embedded.attrs["agreement_nb201_kendall_tau"] == pytest.approx(tau, abs=1e-4)


def test_embedded_noise_ceiling_matches_summary(embedded: BenchmarkTask, summary: dict) -> None:
    for column in ("val_accuracy", "test_accuracy"):
        seeds = embedded.seeds[column]
        tau = kendalltau(seeds[:, 0], seeds[:, 1]).statistic
        stored = summary["noise_ceiling"][f"{column}_seed_kendall_tau"]
        assert stored == pytest.approx(tau, abs=1e-4)
        assert summary[column]["median"] == pytest.approx(
            np.median(embedded.frame[column]), abs=1e-3
        )
    assert summary["aims"]["seed_kendall_tau"] == pytest.approx(
        summary["noise_ceiling"]["val_accuracy_seed_kendall_tau"], abs=1e-4
    )
    assert summary["distinct_isomorphism_classes"] == len(embedded)
    digest = hashlib.sha256(emb.embedded_path().read_bytes()).hexdigest()
    assert summary["sha256"] == digest  # the summary describes the committed file


@pytest.mark.slow
def test_embedded_run_reproduces(embedded: BenchmarkTask) -> None:
    """Retrain the arch nearest the median with seed 0: the stored values come back.

    Exact on the build machine; other CPUs may round differently, hence the tolerance.
    """
    import torch

    order = np.argsort(embedded.frame["val_accuracy"].to_numpy())
    row = int(order[len(order) // 2])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the build: single-threaded runs are deterministic
    try:
        result = emb.train_arch(embedded.archs[row], emb.SEEDS[0], emb.make_splits())
    finally:
        torch.set_num_threads(threads)
    assert result.val_accuracy == pytest.approx(embedded.seeds["val_accuracy"][row, 0], abs=2.0)
    assert result.test_accuracy == pytest.approx(embedded.seeds["test_accuracy"][row, 0], abs=2.0)
