"""A node that lost its disk, or got an older copy of it back, never breaks agreement.

Real `ledger serve` processes: one node is SIGKILLed while writes flow, its data
directory is wiped, rolled back to an older copy, or replaced by a `ledger backup`;
`ledger serve` on it refuses (naming `ledger recover`) while the other two keep
taking writes; `ledger recover` then `ledger serve` bring it back; every
acknowledged write is on every replica, and the replicas agree.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections.abc import Callable

import pytest

from ledger.chaos.disk import commits_in
from ledger.node.cluster import ClusterConfig
from ledger.security.tls import Security, load_member
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.cli import LEDGER, ledger, node_flags
from tests.support.nodes import client, converged
from tests.support.polling import eventually
from tests.support.writers import Writer

pytestmark = pytest.mark.xdist_group("processes")

ACCOUNT = "acct"
WRITES = 3_000  # the writer's bound; the tests stop it long before


def serve_is_refused(cluster: ProcessCluster, index: int) -> str:
    """`ledger serve` on the node exits non-zero, naming `ledger recover`; its stderr."""
    result = ledger("serve", *node_flags(cluster, index), timeout_s=60)
    assert result.returncode != 0, result.stderr
    assert "ledger recover" in result.stderr
    return result.stderr


def more_writes(writer: Writer, count: int, what: str) -> None:
    seen = len(writer.acknowledged)
    eventually(lambda: len(writer.acknowledged) >= seen + count, what=what)


def local_history(cluster: ProcessCluster, index: int) -> dict[int, str]:
    """Position -> request id of every entry of ACCOUNT as node `index` holds it."""
    bank = client(cluster, index)
    entries: dict[int, str] = {}
    while page := bank.history(ACCOUNT, from_position=len(entries), limit=1_000, local=True):
        entries.update((e.position, e.request_id) for e in page)
    return entries


def assert_every_acknowledged_write_everywhere(cluster: ProcessCluster, writer: Writer) -> None:
    eventually(lambda: converged(cluster), what="the replicas agree")
    for index, address in enumerate(cluster.addresses):
        history = local_history(cluster, index)
        for position, request_id in writer.acknowledged:
            assert history.get(position) == request_id, (
                f"acknowledged write {position} ({request_id}) missing on {address}")


def lose_and_recover(cluster: ProcessCluster, harm: Callable[[pathlib.Path], None],
                     refusal: str, *recover_flags: str) -> None:
    """Writes flow through n2; n1 is killed, harmed, refused, recovered and restarted."""
    bank = client(cluster, 1, timeout_s=5)
    bank.open_account(ACCOUNT, 0)
    writer = Writer(bank, ACCOUNT, WRITES)
    try:
        more_writes(writer, 30, "writes flow")
        cluster.kill(0)
        harm(cluster.nodes[0].data_dir)
        assert refusal in serve_is_refused(cluster, 0)
        more_writes(writer, 30, "the other two keep taking writes")
        recovered = ledger("recover", *node_flags(cluster, 0), *recover_flags)
        assert recovered.returncode == 0, recovered.stderr
        assert "now start it: ledger serve" in recovered.stdout
        cluster.start_node(0)
        more_writes(writer, 30, "writes with the recovered node back")
    finally:
        writer.stop()
    assert_every_acknowledged_write_everywhere(cluster, writer)


def test_a_wiped_node_is_refused_until_recovered_and_nothing_is_lost(
    own_cluster: ProcessCluster,
) -> None:
    lose_and_recover(own_cluster, lambda data_dir: shutil.rmtree(data_dir),
                     refusal="wiped or replaced")


def test_a_directory_restored_from_an_older_copy_is_refused_until_recovered(
    own_cluster: ProcessCluster, tmp_path: pathlib.Path,
) -> None:
    cluster = own_cluster
    client(cluster, 0).open_account("before", 5)
    client(cluster, 0).open_account("after", 0)
    cluster.terminate(0)
    copy = tmp_path / "n1-copy"
    shutil.copytree(cluster.nodes[0].data_dir, copy)
    copy_commits = commits_in(copy)
    cluster.start_node(0)
    # n1 votes after the copy was taken, and a peer sees it: only then is the copy
    # behind what the cluster knows (a copy nobody saw past is harmless, and passes).
    n1 = client(cluster, 0)
    eventually(lambda: n1.deposit("after", 1).position > 0
               and seen_by_peer(cluster, 0) > copy_commits,
               what="a peer sees n1 commit past the copy")

    def restore(data_dir: pathlib.Path) -> None:
        shutil.rmtree(data_dir)
        shutil.copytree(copy, data_dir)

    lose_and_recover(cluster, restore, refusal="restored from an older copy")
    assert client(cluster, 0).balance("before").balance == 5


def seen_by_peer(cluster: ProcessCluster, index: int) -> int:
    """The highest commit count of node `index` another member has seen."""
    node = cluster.nodes[index]
    # Asked as the node itself: only members' certificates may call the peer service.
    as_member = Security(load_member(cluster.tls_dir, node.node_id))
    with as_member.channel(cluster.addresses[(index + 1) % 3]) as channel:
        reply = pb_grpc.ReplicaStub(channel).Identify(pb.IdentifyRequest(
            cluster_fingerprint=ClusterConfig.parse(cluster.cluster_flag).fingerprint,
            node_id=node.node_id), timeout=5)
    return reply.durable_seq_seen


def test_a_backup_taken_while_running_is_restored_through_recover(
    own_cluster: ProcessCluster, tmp_path: pathlib.Path,
) -> None:
    cluster = own_cluster
    client(cluster, 0).open_account("before", 7)
    backup = tmp_path / "n1-backup"
    made = ledger("backup", "--server", cluster.addresses[0], "--out", str(backup),
                  env=cluster.client_env)
    assert made.returncode == 0, made.stderr

    def restore(data_dir: pathlib.Path) -> None:
        shutil.rmtree(data_dir)
        shutil.copytree(backup, data_dir)

    # As the Kubernetes init container runs it: it recovers because serve would refuse.
    lose_and_recover(cluster, restore, "restored from a backup", "--if-needed")
    assert client(cluster, 0).balance("before").balance == 7


def test_recover_if_needed_leaves_a_healthy_directory_alone(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    client(cluster, 0).open_account("acct", 1)
    cluster.terminate(0)
    before = (cluster.nodes[0].data_dir / "data.mdb").read_bytes()
    result = ledger("recover", *node_flags(cluster, 0), "--if-needed")
    assert result.returncode == 0, result.stderr
    assert "needs no recovery" in result.stdout
    assert (cluster.nodes[0].data_dir / "data.mdb").read_bytes() == before
    cluster.start_node(0)
    eventually(lambda: converged(cluster), what="n1 serves as before")


def start_when_recovered(cluster: ProcessCluster,
                         recoveries: dict[int, subprocess.Popen[str]]) -> bool:
    """Start each node whose recovery ended (successfully); True once all have."""
    for index, recovery in recoveries.items():
        if recovery.poll() is not None and not cluster.nodes[index].running:
            _, stderr = recovery.communicate()
            assert recovery.returncode == 0, stderr
            cluster.start_node(index, wait=False)
    return all(cluster.nodes[index].running for index in recoveries)


def test_two_of_five_nodes_wiped_at_once_recover_together(tmp_path: pathlib.Path) -> None:
    # Each recovery needs every other member's answer: the two answer each other.
    with ProcessCluster(tmp_path / "five", 5) as cluster:
        bank = client(cluster, 4, timeout_s=5)
        bank.open_account(ACCOUNT, 0)
        writer = Writer(bank, ACCOUNT, WRITES)
        try:
            more_writes(writer, 30, "writes flow")
            for index in (0, 1):
                cluster.kill(index)
                shutil.rmtree(cluster.nodes[index].data_dir)
            more_writes(writer, 30, "three of five keep taking writes")
            recoveries = [subprocess.Popen(
                [*LEDGER, "recover", *node_flags(cluster, index)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True) for index in (0, 1)]
            # Each starts serving as soon as its recovery ends: the other may still need
            # its answers (a serving node gives them, as a recovering one does).
            eventually(lambda: start_when_recovered(cluster, dict(zip((0, 1), recoveries,
                                                                      strict=True))),
                       what="both recoveries end", timeout_s=120)
            more_writes(writer, 30, "writes with both back")
        finally:
            writer.stop()
        assert_every_acknowledged_write_everywhere(cluster, writer)


def test_recovery_is_refused_when_a_majority_lost_its_state(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    client(cluster, 2).open_account(ACCOUNT, 1)
    for index in (0, 1):
        cluster.kill(index)
        shutil.rmtree(cluster.nodes[index].data_dir)
    recoveries = [subprocess.Popen([*LEDGER, "recover", *node_flags(cluster, index)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for index in (0, 1)]
    try:
        # Each counts the other as recovering: with only n3 holding its state, no
        # recovery can know what was chosen. At least one says so and gives up.
        refused = eventually(lambda: next((r for r in recoveries if r.poll() is not None),
                                          None), what="a recovery gives up", timeout_s=60)
        _, stderr = refused.communicate()
        assert refused.returncode != 0
        assert "majority of the cluster lost its state" in stderr
    finally:
        for recovery in recoveries:
            recovery.kill()
            recovery.communicate()
    for index in (0, 1):
        assert not (cluster.nodes[index].data_dir / "data.mdb").exists()  # nothing replaced
