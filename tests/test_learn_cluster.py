"""compare on Dask: a small grid on a LocalCluster gives the same records as a serial run, the
driver writes the cache, and a cluster that cannot be reached is one line."""

import json

import pytest

from adcforge.errors import AdcforgeError
from learn.cluster import ClusterError, connect, parse_cluster
from learn.compare import compare

pytest.importorskip("distributed")

GRID = {
    "name": "grid",
    "base": {"train": {"epochs": 1, "freeze_epochs": 1, "lr_network": 1e-2, "eval_every": 100}},
    "methods": ["learned", "hist"],
    "bits": [1],
    "seeds": [0, 1],
    "datasets": {"digits": {"photons": [20]}},
}
SAME = ("dataset", "photons", "method", "bits", "seed", "test_accuracy", "thresholds",
        "initial_thresholds")


def test_local_cluster_records_equal_a_serial_run(tmp_path):
    serial = compare(GRID, tmp_path / "serial", progress=False)
    dask = compare(GRID, tmp_path / "dask", progress=False, cluster="local:2")
    assert dask["failed"] == []
    key = [tuple(r[k] for k in SAME) for r in serial["rows"]]
    assert [tuple(r[k] for k in SAME) for r in dask["rows"]] == key
    cache = sorted((tmp_path / "dask" / ".cache").glob("*.json"))  # written by the driver
    assert len(cache) == len(serial["rows"]) == 4
    assert sorted(p.name for p in cache) == sorted(
        p.name for p in (tmp_path / "serial" / ".cache").glob("*.json"))
    assert json.loads(cache[0].read_text())["test_accuracy"] >= 0
    # a rerun continues from the cache: nothing is trained, the same records come back
    again = compare(GRID, tmp_path / "dask", progress=False, cluster="local:1")
    assert [tuple(r[k] for k in SAME) for r in again["rows"]] == key


@pytest.mark.parametrize("text", ["local", "local:0", "local:x", "remote:2", ""])
def test_malformed_cluster_is_refused(text):
    with pytest.raises(ClusterError, match="expected local:N"):
        parse_cluster(text)


def test_unreachable_scheduler_is_one_line():
    with pytest.raises(AdcforgeError, match=r"cannot reach the Dask scheduler at "
                                            r"tcp://127\.0\.0\.1:9 within 2 s") as e:
        connect("tcp://127.0.0.1:9", timeout=2)
    assert "\n" not in str(e.value)
    with pytest.raises(ClusterError, match="expected an address"):
        connect("127.0.0.1:8786")


def test_compare_command_refuses_both_and_a_bad_cluster(tmp_path):
    from click.testing import CliRunner

    from adcforge.cli import main_group
    r = CliRunner().invoke(main_group, ["compare", "-o", str(tmp_path), "--cluster", "local:x"])
    assert r.exit_code != 0 and "expected local:N" in str(r.exception or r.output)
    r = CliRunner().invoke(main_group, ["compare", "-o", str(tmp_path), "--cluster", "local:1",
                                        "--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code != 0 and "one of --scheduler and --cluster" in r.output


def _dies_once(marker: str, value: int) -> int:
    """A task whose first try kills its worker process (as a machine that goes away would)."""
    import os
    from pathlib import Path

    if value == 2 and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    return value * 10


def test_a_worker_that_dies_loses_only_its_run_which_runs_again(tmp_path):
    from learn.cluster import run_on_dask

    marker = str(tmp_path / "died")
    got, progress = {}, []
    failed = run_on_dask(_dies_once, [(marker, v) for v in range(4)], cluster="local:2",
                         on_result=got.__setitem__, on_progress=lambda *a: progress.append(a))
    assert failed == [] and (tmp_path / "died").exists()
    assert got == {0: 0, 1: 10, 2: 20, 3: 30}
    assert progress[-1][0] == 4 and progress[-1][2] == 0  # done, running, failed


class FakeClient:
    """Answers ``client.run`` as workers would: the probe's result per worker address."""

    def __init__(self, versions):
        self.versions = versions

    def run(self, fn):
        return dict(self.versions)


def test_a_worker_without_adcforge_is_one_line():
    from adcforge import __version__
    from learn.cluster import check_workers

    check_workers(FakeClient({"tcp://a:1": __version__}))
    with pytest.raises(ClusterError, match=r"worker tcp://b:2 has adcforge missing \(learn\), "
                                           r"not .*1 of 2 workers"):
        check_workers(FakeClient({"tcp://a:1": __version__, "tcp://b:2": "missing (learn)"}))
    with pytest.raises(ClusterError, match="has no workers"):
        check_workers(FakeClient({}))


def test_the_probe_runs_on_real_workers():
    from learn.cluster import check_workers, connect

    client, close = connect(cluster="local:1")
    try:
        check_workers(client)  # the local workers have this very package
    finally:
        close()
