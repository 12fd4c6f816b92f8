"""Three real `ledger serve` processes on loopback: agreement, catch-up, crashes, no quorum."""

from __future__ import annotations

import pathlib
import struct
import subprocess
import sys
import zlib

import lmdb
import pytest

from ledger.client import Unavailable
from ledger.storage.lmdb import FORMAT_VERSION, LmdbStore
from ledger.tools.localcluster import ProcessCluster
from tests.support.nodes import client, converged
from tests.support.polling import eventually
from tests.support.writers import Writer

pytestmark = pytest.mark.xdist_group("processes")


@pytest.fixture
def cluster(own_cluster: ProcessCluster) -> ProcessCluster:
    """These tests kill, stop and restart nodes: each has a cluster of its own."""
    return own_cluster


def test_writes_through_every_node_agree_everywhere(shared_cluster: ProcessCluster) -> None:
    cluster = shared_cluster
    clients = [client(cluster, index) for index in range(len(cluster.addresses))]
    clients[0].open_account("everywhere", 0)
    for index, bank in enumerate(clients):
        bank.open_account(f"everywhere-{index}", 100)
    for round_ in range(4):
        for index, bank in enumerate(clients):
            bank.deposit("everywhere", 10 * index + 1, memo=f"round {round_}")
            bank.withdraw(f"everywhere-{index}", 1)
    view = eventually(lambda: converged(cluster), what="replicas converge")
    assert {"everywhere", "everywhere-0", "everywhere-1", "everywhere-2"} <= set(view)
    assert view["everywhere"].balance == 4 * (1 + 11 + 21)
    assert view["everywhere-2"].balance == 96
    history = clients[2].history("everywhere", local=True)
    assert [e.position for e in history] == list(range(13))


def test_a_node_killed_mid_write_catches_up_without_client_help(cluster: ProcessCluster) -> None:
    writer_bank = client(cluster, 0, timeout_s=5)
    writer_bank.open_account("hot", 0)
    writer = Writer(writer_bank, "hot", 2_000)
    acknowledged = writer.acknowledged
    try:
        eventually(lambda: len(acknowledged) >= 20, what="writes flow")
        cluster.kill(2)  # SIGKILL, mid-write
        seen = len(acknowledged)
        eventually(lambda: len(acknowledged) >= seen + 50, what="writes continue on two nodes")
    finally:
        writer.stop()
    for i in range(5):  # accounts the dead node has never heard of
        client(cluster, i % 2).open_account(f"born-while-down-{i}", i)
    cluster.start_node(2)  # no client traffic from here on
    view = eventually(lambda: converged(cluster), what="the restarted node catches up")
    assert {f"born-while-down-{i}" for i in range(5)} <= set(view)
    history = {e.position: e for e in client(cluster, 2).history(
        "hot", limit=1_000, local=True)}
    for position, request_id in acknowledged:
        assert history[position].request_id == request_id
    assert view["hot"].balance == len(acknowledged)


def test_without_a_majority_writes_fail_clearly_and_resume_after(
    cluster: ProcessCluster,
) -> None:
    bank = client(cluster, 0, timeout_s=2)
    bank.open_account("acct", 100)
    cluster.kill(1)
    cluster.kill(2)
    with pytest.raises(Unavailable, match="may or may not") as failure:
        bank.deposit("acct", 5, request_id="during")
    assert failure.value.request_id == "during"
    cluster.start_node(1)
    cluster.start_node(2)
    retried = client(cluster, 0).deposit("acct", 5, request_id="during")
    after = client(cluster, 0).deposit("acct", 7, request_id="after")
    view = eventually(lambda: converged(cluster), what="convergence after quorum")
    assert view["acct"].balance == 112  # "during" applied exactly once, whichever attempt won
    assert after.position == retried.position + 1


def test_acknowledged_writes_survive_repeated_sigkill(cluster: ProcessCluster) -> None:
    # With n3 down, every acknowledged write needs n2's durable vote. Kill n2 again
    # and again mid-write; then let n2 and a fresh n3 (which never ran, so it
    # promised nothing) form the majority: every acknowledged write must survive.
    cluster.terminate(2)
    bank = client(cluster, 0, timeout_s=2)
    bank.open_account("acct", 0)
    writer = Writer(bank, "acct", 5_000)
    acknowledged = writer.acknowledged
    try:
        for _ in range(5):
            before = len(acknowledged)
            eventually(lambda before=before: len(acknowledged) >= before + 10,
                       what="writes acknowledged")
            cluster.kill(1)
            cluster.start_node(1)
    finally:
        writer.stop()
    cluster.kill(0)
    cluster.start_node(2)
    survivors = client(cluster, 2)
    history = {e.position: e.request_id for e in survivors.history("acct", limit=1_000)}
    for position, request_id in acknowledged:
        assert history.get(position) == request_id, f"acknowledged write {position} lost"
    assert survivors.balance("acct").balance >= len(acknowledged)


def test_sigterm_shuts_down_cleanly(cluster: ProcessCluster) -> None:
    client(cluster, 0).open_account("a", 1)
    assert cluster.terminate(0) == 0
    assert "stopped cleanly" in cluster.log_tail(0)
    cluster.start_node(0)
    eventually(lambda: converged(cluster), what="convergence after restart")


def serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "serve", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_data_directory_refuses_another_identity(cluster: ProcessCluster) -> None:
    node = cluster.nodes[0]
    cluster.terminate(0)
    other_id = serve(["--node-id", "n2", "--data-dir", str(node.data_dir),
                      "--cluster", cluster.cluster_flag, *cluster.security_flags()])
    assert other_id.returncode != 0
    assert "belongs to node 'n1'" in other_id.stderr
    # Another set of members (a moved address alone is the same cluster).
    other_cluster = cluster.cluster_flag.replace("n3=", "n9=")
    mismatch = serve(["--node-id", "n1", "--data-dir", str(node.data_dir),
                      "--cluster", other_cluster, *cluster.security_flags()])
    assert mismatch.returncode != 0
    assert "refusing to start" in mismatch.stderr


def test_bad_flags_are_refused_before_anything_is_written(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "never"
    result = serve(["--node-id", "n4", "--data-dir", str(data_dir),
                    "--cluster", "n1=127.0.0.1:7001,n2=127.0.0.1:7002", "--insecure"])
    assert result.returncode == 2 and "not in the cluster" in result.stderr
    result = serve(["--node-id", "n1", "--data-dir", str(data_dir),
                    "--cluster", "n1=127.0.0.1:70001", "--insecure"])
    assert result.returncode == 2 and "out of range" in result.stderr
    assert not data_dir.exists()


def test_a_data_directory_of_an_older_format_is_refused_and_left_as_it_was(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "old"
    LmdbStore(data_dir).close()
    payload = struct.pack(">Q", FORMAT_VERSION - 1)
    sealed = struct.pack(">I", zlib.crc32(payload, zlib.crc32(b"format"))) + payload
    with lmdb.open(str(data_dir), max_dbs=16) as env, env.begin(write=True) as txn:
        txn.put(b"format", sealed, db=env.open_db(b"meta", txn=txn))
    before = (data_dir / "data.mdb").read_bytes()
    result = serve(["--node-id", "n1", "--data-dir", str(data_dir),
                    "--cluster", "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "--insecure"])
    assert result.returncode == 1
    assert (f"format version {FORMAT_VERSION - 1}, written by an older version of the ledger"
            in result.stderr)
    assert (data_dir / "data.mdb").read_bytes() == before
