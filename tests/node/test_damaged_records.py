"""Bytes flipped inside one stored record, found by its key: never a wrong answer.

The damaged node quarantines the one account whose record fails its checksum and
keeps serving every other; clients are answered by the other replicas meanwhile.
A damaged chosen value is put back from a peer's copy, at once; a damaged promise
or vote makes the node go through `ledger recover` itself, and serve again. Damage to
LMDB's own structure is refused at start, naming `ledger recover`.
"""

from __future__ import annotations

import os
import pathlib

import grpc
import lmdb
import pytest

from ledger.client import LedgerClient
from ledger.client.admin import node_counters
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.cli import ledger, node_flags
from tests.support.nodes import client, converged
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")


def flip_a_byte_of(data_dir: pathlib.Path, table: bytes, key: bytes) -> None:
    """Flip one byte inside the value stored under `key` in `table`, in the file itself
    (as a failing disk would; the running node's map sees it at once)."""
    with lmdb.open(str(data_dir), max_dbs=16, readonly=True, lock=False) as env, \
            env.begin() as txn:
        value = txn.get(key, db=env.open_db(table, txn=txn, create=False))
    assert value is not None, f"no {table!r} record under {key!r}"
    path = data_dir / "data.mdb"
    raw = path.read_bytes()
    assert raw.count(value) == 1, "the record's bytes must be unique in the file"
    offset = raw.index(value) + len(value) - 1  # inside the payload, past the checksum
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, bytes([raw[offset] ^ 0x5A]), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_damaged_promise_makes_the_node_recover_itself(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    bank = client(cluster, 0)
    for account in ("damaged", "healthy"):
        bank.open_account(account, 100)
        bank.deposit(account, 1, memo=f"first of {account}")
    eventually(lambda: converged(cluster), what="replicas agree")
    cluster.terminate(0)
    flip_a_byte_of(cluster.nodes[0].data_dir, b"promise", b"damaged\x00")
    cluster.start_node(0)
    # (A fresh process leads nothing yet: its first write here runs a Prepare, which a
    # loaded machine may take seconds to answer. The client's default deadline is 10 s.)
    assert client(cluster, 0).deposit("healthy", 2).balance == 103
    # A write to the damaged account reaches n1 too: it finds the damage, quarantines the
    # account, and (its promise being lost) stops, recovers itself and serves again.
    # fails over meanwhile
    everywhere = LedgerClient(cluster.addresses, timeout_s=10, security=cluster.security)
    assert everywhere.deposit("damaged", 3).balance == 104
    eventually(lambda: "serving again" in cluster.log_tail(0, 400),
               what="n1 recovered itself")
    log = cluster.log_tail(0, 400)
    assert "ALARM" in log and "failed its checksum" in log
    assert cluster.nodes[0].running  # the same process, no restart by anyone
    everywhere.deposit("damaged", 4)
    view = eventually(lambda: converged(cluster), what="n1 caught up")
    assert view["damaged"].balance == 108 and view["healthy"].balance == 103


def log_of(cluster: ProcessCluster, address: str, account: str) -> pb.LogReply:
    with cluster.security.channel(address) as channel:
        return pb_grpc.AdminStub(channel).Log(pb.LogRequest(account=account), timeout=5)


def test_a_chosen_value_damaged_while_running_is_put_back_from_a_peer(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    bank = LedgerClient(cluster.addresses, timeout_s=10, security=cluster.security)
    bank.open_account("acct", 10)
    bank.deposit("acct", 5, memo="a memo that makes slot one unique")
    eventually(lambda: converged(cluster), what="replicas agree")
    healthy = list(log_of(cluster, cluster.addresses[1], "acct").values)
    flip_a_byte_of(cluster.nodes[0].data_dir, b"chosen", b"acct\x00" + (1).to_bytes(8, "big"))
    # Reading it finds the damage: an error, never a wrong value; the repair begins.
    with pytest.raises(grpc.RpcError) as damaged:
        log_of(cluster, cluster.addresses[0], "acct")
    assert damaged.value.code() == grpc.StatusCode.DATA_LOSS
    assert "failed its checksum" in (damaged.value.details() or "")

    def repaired() -> bool:
        try:
            return list(log_of(cluster, cluster.addresses[0], "acct").values) == healthy
        except grpc.RpcError:
            return False

    eventually(repaired, what="n1 put the value back from a peer's copy")
    counters = node_counters(cluster.addresses[0], 2, cluster.security) or {}
    assert counters["repaired_values"] == 1 and counters["unreadable_accounts"] == 0
    # And n1 acts on the account again.
    assert client(cluster, 0).deposit("acct", 1).balance == 16
    view = eventually(lambda: converged(cluster), what="replicas agree again")
    assert view["acct"].balance == 16


def test_damage_to_lmdb_structure_is_refused_at_start_naming_recover(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    client(cluster, 0).open_account("acct", 1)
    cluster.terminate(0)
    path = cluster.nodes[0].data_dir / "data.mdb"
    with path.open("r+b") as data:  # both meta pages: LMDB cannot find its root
        data.write(b"\xff" * 8192)
    result = ledger("serve", *node_flags(cluster, 0), timeout_s=60)
    assert result.returncode != 0
    assert "ledger recover" in result.stderr
    recovered = ledger("recover", *node_flags(cluster, 0))
    assert recovered.returncode == 0, recovered.stderr
    cluster.start_node(0)
    eventually(lambda: converged(cluster), what="n1 rebuilt from its peers")
