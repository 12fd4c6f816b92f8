"""Three real `ledger serve` processes on loopback: agreement, catch-up, crashes, no quorum."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
import threading

import grpc
import pytest

from ledger.localcluster import ProcessCluster
from tests.node.helpers import converged, eventually, log, propose

pytestmark = pytest.mark.xdist_group("processes")


@pytest.fixture
def cluster(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    with ProcessCluster(tmp_path / "cluster", 3) as running:
        yield running


def test_writes_through_every_node_agree_everywhere(cluster: ProcessCluster) -> None:
    written = []
    for round_ in range(5):
        for index, address in enumerate(cluster.addresses):
            value = b"shared-%d-%d" % (round_, index)
            written.append(value)
            propose(address, "shared", value)
            propose(address, f"own-{index}", b"x%d" % round_)
    view = eventually(lambda: converged(cluster.addresses), what="logs converge")
    assert set(view) == {"shared", "own-0", "own-1", "own-2"}
    assert log(cluster.addresses[2], "shared") == written
    assert view["own-1"][0] == 4


def test_a_node_killed_mid_write_catches_up_without_client_help(cluster: ProcessCluster) -> None:
    stop = threading.Event()
    acknowledged: list[tuple[int, bytes]] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 2_000:
            value = b"w%d" % i
            with contextlib.suppress(grpc.RpcError):
                acknowledged.append((propose(cluster.addresses[0], "hot", value, 5), value))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        eventually(lambda: len(acknowledged) >= 20, what="writes flow")
        cluster.kill(2)  # SIGKILL, mid-write
        seen = len(acknowledged)
        eventually(lambda: len(acknowledged) >= seen + 50, what="writes continue on two nodes")
    finally:
        stop.set()
        thread.join()
    cluster.start_node(2)  # no client traffic from here on
    view = eventually(lambda: converged(cluster.addresses), what="the restarted node catches up")
    final = log(cluster.addresses[2], "hot")
    assert view["hot"][0] == len(final) - 1
    for position, value in acknowledged:
        assert final[position] == value


def test_without_a_majority_writes_fail_clearly_and_resume_after(
    cluster: ProcessCluster,
) -> None:
    propose(cluster.addresses[0], "acct", b"before")
    cluster.kill(1)
    cluster.kill(2)
    with pytest.raises(grpc.RpcError) as failure:
        propose(cluster.addresses[0], "acct", b"during", timeout_s=2.0)
    # The server gave up on its own (at ~80% of the deadline) and said why.
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no majority" in failure.value.details() or "no position" in failure.value.details()
    cluster.start_node(1)
    cluster.start_node(2)
    position = propose(cluster.addresses[0], "acct", b"after")
    view = eventually(lambda: converged(cluster.addresses), what="convergence after quorum")
    values = log(cluster.addresses[1], "acct")
    assert values[0] == b"before" and values[position] == b"after"
    assert values.count(b"during") <= 1  # decided once, or not at all: never half
    assert view["acct"][0] == len(values) - 1


def test_acknowledged_votes_survive_repeated_sigkill(tmp_path: pathlib.Path) -> None:
    # With n3 down, every acknowledged write needs n2's durable vote. Kill n2 again
    # and again mid-write; then let n2 and a fresh n3 (which never ran, so it
    # promised nothing) form the majority: every acknowledged write must survive.
    with ProcessCluster(tmp_path / "c", 3) as cluster:
        cluster.terminate(2)
        acknowledged: list[tuple[int, bytes]] = []
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set() and i < 5_000:
                try:
                    position = propose(cluster.addresses[0], "acct", b"v%d" % i, 2)
                    acknowledged.append((position, b"v%d" % i))
                except grpc.RpcError:
                    pass
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(5):
                before = len(acknowledged)
                eventually(lambda before=before: len(acknowledged) >= before + 10,
                           what="writes acknowledged")
                cluster.kill(1)
                cluster.start_node(1)
        finally:
            stop.set()
            thread.join()
        cluster.kill(0)
        (cluster.nodes[2].data_dir).mkdir(parents=True, exist_ok=True)
        cluster.start_node(2)
        last = propose(cluster.addresses[1], "acct", b"final")
        final = eventually(lambda: len(log(cluster.addresses[2], "acct")) > last
                           and log(cluster.addresses[2], "acct"), what="n3 learns the log")
        assert final[last] == b"final"
        for position, value in acknowledged:
            assert final[position] == value, f"acknowledged write at {position} was lost"


def test_sigterm_shuts_down_cleanly(cluster: ProcessCluster) -> None:
    propose(cluster.addresses[0], "a", b"v")
    assert cluster.terminate(0) == 0
    assert "stopped cleanly" in cluster.log_tail(0)
    cluster.start_node(0)
    eventually(lambda: converged(cluster.addresses), what="convergence after restart")


def serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "serve", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_data_directory_refuses_another_identity(cluster: ProcessCluster) -> None:
    node = cluster.nodes[0]
    cluster.terminate(0)
    other_id = serve(["--node-id", "n2", "--data-dir", str(node.data_dir),
                      "--cluster", cluster.cluster_flag])
    assert other_id.returncode != 0
    assert "belongs to node 'n1'" in other_id.stderr
    other_cluster = cluster.cluster_flag.replace(cluster.nodes[2].address, "127.0.0.1:1")
    mismatch = serve(["--node-id", "n1", "--data-dir", str(node.data_dir),
                      "--cluster", other_cluster])
    assert mismatch.returncode != 0
    assert "refusing to start" in mismatch.stderr


def test_bad_flags_are_refused_before_anything_is_written(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "never"
    result = serve(["--node-id", "n4", "--data-dir", str(data_dir),
                    "--cluster", "n1=127.0.0.1:7001,n2=127.0.0.1:7002"])
    assert result.returncode == 2 and "not in the cluster" in result.stderr
    result = serve(["--node-id", "n1", "--data-dir", str(data_dir),
                    "--cluster", "n1=127.0.0.1:70001"])
    assert result.returncode == 2 and "out of range" in result.stderr
    assert not data_dir.exists()
