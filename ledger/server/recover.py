"""`ledger recover`: bring back a node whose data directory was lost, rolled back or is
untrusted, so that it never votes on state it cannot vouch for.

The protocol (why it is safe: `ledger.paxos.rejoin`):

1. Salvage the old directory's chosen values that verify (`salvage`); nothing else.
2. Make a new incarnation, one generation above any the members recorded, and
   build the new directory beside the old one, marked as unfinished.
3. `Rejoin` every other member: each records the new incarnation (refusing the old
   one from then on), forgets what it counted from the old one, and reports the
   highest round it promised. Every member must answer; the tool waits, saying for whom.
4. Page through every member's `RecoveryTails`: a fence per account at the
   highest slot any member holds a vote or a chosen value at.
5. Write the floor and the fences, clear the mark, and swap the directories (the
   old one is kept beside it, renamed, for the operator to delete).

Afterwards `ledger serve` starts the node as usual; it catches up from its peers
and votes in a fenced slot only once it has learned the value chosen there.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig
from ledger.node.transport import CHANNEL_OPTIONS
from ledger.paxos.records import FenceWrite, FloorWrite
from ledger.security.revocation import RevocationList
from ledger.security.tls import Security, TlsMaterial
from ledger.server.admission import ADMISSION_WAIT_S, verdict
from ledger.server.recovering_server import LockedStore, start_answering
from ledger.server.salvage import Salvage, salvage_chosen
from ledger.storage.base import Incarnation, NodeIdentity, StorageError
from ledger.storage.lmdb import LmdbStore
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

ASK_TIMEOUT_S = 2.0
RETRY_EVERY_S = 0.5
TAILS_PAGE = 5_000
UNFINISHED = ("a `ledger recover` of this directory did not finish (its new incarnation "
              "may already be registered with the other members)")

Say = Callable[[str], None]


class RecoverError(Exception):
    """Recovery cannot go on; nothing the old directory held was changed. Says why."""


@dataclass(frozen=True, slots=True)
class Recovered:
    incarnation: Incarnation
    floor: int
    fences: int
    values_kept: int
    accounts_dropped: int
    kept_old_at: str | None  # where the old directory now is (None: there was none)


class Members:
    """Channels to every other member, and the rejoin calls made over them."""

    def __init__(self, cluster: ClusterConfig, node_id: str, security: Security,
                 stopped: Callable[[], bool] = lambda: False) -> None:
        self.cluster = cluster
        self.stopped = stopped
        self.node_id = node_id
        self.others = [m for m in cluster.members if m.node_id != node_id]
        self.channels = {m.node_id: security.channel(m.address, CHANNEL_OPTIONS)
                         for m in self.others}

    def stub(self, node: str) -> pb_grpc.ReplicaStub:
        return pb_grpc.ReplicaStub(self.channels[node])

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def each_answering_within(self, call: Callable[[str], object], wait_s: float) -> None:
        """Call `call` for every member that answers within `wait_s`."""
        waiting = [m.node_id for m in self.others]
        deadline_s = time.monotonic() + wait_s
        while waiting and time.monotonic() < deadline_s:
            for node in list(waiting):
                try:
                    call(node)
                except grpc.RpcError:
                    continue
                waiting.remove(node)
            if waiting:
                time.sleep(RETRY_EVERY_S)

    def each_until_answered(self, call: Callable[[str], object], what: str, say: Say) -> None:
        """Call `call` for every member until each has answered once; report who is waited for."""
        waiting = [m.node_id for m in self.others]
        reported_s = 0.0
        while waiting:
            if self.stopped():
                raise RecoverError("stopped before every member answered; nothing was "
                                   "replaced (run `ledger recover` again)")
            for node in list(waiting):
                try:
                    call(node)
                except grpc.RpcError as error:
                    if error.code() in (grpc.StatusCode.FAILED_PRECONDITION,
                                        grpc.StatusCode.INVALID_ARGUMENT):
                        raise RecoverError(f"member {node} refused {what}: "
                                           f"{error.details()}") from None
                    continue
                waiting.remove(node)
            if waiting and time.monotonic() - reported_s >= 5:
                reported_s = time.monotonic()
                say(f"  {what}: waiting for {', '.join(waiting)} (every member must answer; "
                    f"start it, or Ctrl-C to stop: nothing is lost)")
            if waiting:
                time.sleep(RETRY_EVERY_S)


def needs_recovery(node_id: str, data_dir: str, cluster: ClusterConfig,
                   app_tables: tuple[str, ...], say: Say, *,
                   tls: TlsMaterial | None) -> str | None:
    """Why `ledger serve` would refuse this directory (None: it would not), asking the
    members as serve does: every one for a new or missing directory, those that answer
    within a few seconds for a used one. Runs nothing else (`ledger recover --if-needed`)."""
    identity: NodeIdentity | None = None
    durable_seq = 0
    if os.path.exists(os.path.join(data_dir, "data.mdb")):
        try:
            store = LmdbStore(data_dir, app_tables=app_tables)
        except StorageError as error:
            if "in use" in str(error):
                raise RecoverError(f"{error}: stop node {node_id} first") from None
            return f"the data directory cannot be opened ({error})"
        try:
            identity = store.identity()
            durable_seq = store.durable_seq()
            # The node-wide records: a damaged one stops the node, every time it starts.
            store.reserved_round()
            store.round_floor()
            store.max_promised_round()
            store.peer_records()
        except StorageError as error:
            return f"a node-wide record of the data directory cannot be read ({error})"
        finally:
            store.abandon()
        if identity is not None and identity.recovery_required is not None:
            return identity.recovery_required
    new = identity is None or identity.join_pending
    members = Members(cluster, node_id, Security(tls))
    try:
        reasons: list[str] = []

        def ask(node: str) -> None:
            reply = members.stub(node).Identify(pb.IdentifyRequest(
                cluster_fingerprint=cluster.fingerprint, node_id=node_id), timeout=ASK_TIMEOUT_S)
            if new:
                if reply.known and (identity is None or peer_codec.incarnation_from_pb(
                        reply, "recorded") != identity.incarnation):
                    reasons.append(f"member {node} knows node {node_id}, whose data "
                                   f"directory is new or missing here")
                return
            assert identity is not None
            reason = verdict(identity, durable_seq, reply)
            if reason is not None:
                reasons.append(reason)

        # Only the members that answer soon: on a cluster's first start every node runs
        # this at once and none answers yet. A new directory that a member knows, and
        # that member is not up yet, is refused by serve later (which waits for it), and
        # the next start recovers it.
        members.each_answering_within(ask, ADMISSION_WAIT_S)
        return reasons[0] if reasons else None
    finally:
        members.close()


def recover(config_node_id: str, data_dir: str, cluster: ClusterConfig,
            app_tables: tuple[str, ...], say: Say, *, tls: TlsMaterial | None,
            revocation_list: pathlib.Path | None = None, bind_address: str | None = None,
            stopped: Callable[[], bool] = lambda: False) -> Recovered:
    """Run the whole protocol; see the module docstring. While it runs, the node answers
    other members' recoveries on `bind_address` (default: its own cluster address)."""
    data_dir = os.path.abspath(data_dir)
    fresh = f"{data_dir}.recovering"
    members = Members(cluster, config_node_id, Security(tls), stopped)
    server: grpc.Server | None = None
    try:
        salvage = Salvage()
        shutil.rmtree(fresh, ignore_errors=True)  # a recovery interrupted earlier
        say(f"recovering node {config_node_id} into {data_dir}")
        identity = NodeIdentity(config_node_id, cluster.as_pairs(),
                                recovery_required=UNFINISHED)
        store = LockedStore(LmdbStore(fresh, app_tables=app_tables))
        try:
            store.set_identity(identity)
            member = cluster.members[cluster.index_of(config_node_id)]
            server = start_answering(cluster, config_node_id, store,
                                     bind_address or member.address, tls,
                                     RevocationList(revocation_list) if revocation_list
                                     else None)
            generation = _new_generation(members, config_node_id, data_dir, app_tables, say)
            incarnation = Incarnation.new(generation)
            identity = dataclasses.replace(identity, incarnation=incarnation)
            store.set_identity(identity)
            say("keeping the chosen values of the old directory that verify...")
            for writes in salvage_chosen(data_dir, app_tables, salvage, say):
                store.write(writes)
            _check_owner(salvage.identity, config_node_id, cluster)
            say(f"  kept {salvage.values_kept:,} values of {salvage.accounts_kept:,} accounts"
                + (f"; dropped {len(salvage.accounts_dropped or []):,} that did not verify"
                   if salvage.accounts_dropped else ""))
            floor = _rejoin(members, incarnation, say)
            fences = _fence(members, store, say)
            store.write([FloorWrite(floor)])
            server.stop(grace=1.0).wait()
            server = None
            store.set_identity(dataclasses.replace(identity, recovery_required=None))
        finally:
            if server is not None:
                server.stop(grace=None)
            store.close()
        kept_old_at = _swap(data_dir, fresh)
        return Recovered(incarnation, floor, fences, salvage.values_kept,
                         len(salvage.accounts_dropped or []), kept_old_at)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    finally:
        members.close()


def _new_generation(members: Members, node_id: str, data_dir: str,
                    app_tables: tuple[str, ...], say: Say) -> int:
    """One above every generation of this node the members recorded or the directory holds."""
    highest = -1
    try:
        if os.path.exists(os.path.join(data_dir, "data.mdb")):
            old = LmdbStore(data_dir, app_tables=app_tables)
            try:
                identity = old.identity()
                if identity is not None and identity.incarnation is not None:
                    highest = identity.incarnation.generation
            finally:
                old.abandon()
    except StorageError as error:
        if "in use" in str(error):
            raise RecoverError(f"{error}: stop node {node_id} before recovering it") from None
        # A damaged directory: its generation is unknown, the members' records decide.

    def ask(node: str) -> None:
        nonlocal highest
        reply = members.stub(node).Identify(pb.IdentifyRequest(
            cluster_fingerprint=members.cluster.fingerprint, node_id=node_id),
            timeout=ASK_TIMEOUT_S)
        recorded = peer_codec.incarnation_from_pb(reply, "recorded")
        if recorded is not None:
            highest = max(highest, recorded.generation)

    say("asking every member which incarnations of this node it has seen...")
    members.each_until_answered(ask, "identify", say)
    return highest + 1


def _check_owner(identity: NodeIdentity | None, node_id: str, cluster: ClusterConfig) -> None:
    if identity is None:
        return
    ids = tuple(m.node_id for m in cluster.members)
    if identity.node_id != node_id or identity.member_ids != ids:
        raise RecoverError(
            f"the data directory belongs to node {identity.node_id!r} of members "
            f"{','.join(identity.member_ids)}, not node {node_id!r} of {','.join(ids)}: "
            f"nothing was changed (give this node's own directory, or an empty one)")


def _rejoin(members: Members, incarnation: Incarnation, say: Say) -> int:
    """Register the new incarnation with every member; the highest round they promised.

    Members recovering at the same time report nothing of their former lives, so the
    others' reports must cover every quorum on their own: at least n - q + 1 of them
    (all others of 3; three of the four others of 5). Fewer means a majority lost its
    state, and no recovery can tell what was chosen: refused.
    """
    floor = 0
    recovering: list[str] = []

    def rejoin(node: str) -> None:
        nonlocal floor
        reply = members.stub(node).Rejoin(pb.RejoinRequest(
            cluster_fingerprint=members.cluster.fingerprint, node_id=members.node_id,
            incarnation=peer_codec.incarnation_pb(incarnation)), timeout=ASK_TIMEOUT_S)
        floor = max(floor, reply.max_round)
        if reply.recovering:
            recovering.append(node)
        say(f"  {node} recorded incarnation {incarnation} and forgot the former one "
            f"(highest round it promised: {reply.max_round})")

    say(f"registering incarnation {incarnation} with every member...")
    members.each_until_answered(rejoin, "rejoin", say)
    size = members.cluster.size
    holding = len(members.others) - len(recovering)
    if holding < size - (size // 2 + 1) + 1:
        raise RecoverError(
            f"members {', '.join(recovering)} are recovering too: only {holding} other "
            f"members hold their state, and {size - size // 2} are needed to know what was "
            f"chosen. A majority of the cluster lost its state; no recovery can be safe")
    return floor


def _fence(members: Members, store: LockedStore, say: Say) -> int:
    """A fence per account at the highest slot any member holds something at."""
    fences = 0

    def page_through(node: str) -> None:
        nonlocal fences
        after = ""
        while True:
            reply = members.stub(node).RecoveryTails(pb.RecoveryTailsRequest(
                cluster_fingerprint=members.cluster.fingerprint, node_id=members.node_id,
                after=after, limit=TAILS_PAGE), timeout=ASK_TIMEOUT_S * 5)
            writes = [FenceWrite(tail.account, tail.highest_slot) for tail in reply.tails
                      if tail.highest_slot > store.account_summary(tail.account).chosen_through]
            store.write(writes)
            fences += len(writes)
            if reply.complete or not reply.tails:
                break
            after = reply.tails[-1].account

    say("reading how far every account's log reaches on every member...")
    members.each_until_answered(page_through, "recovery tails", say)
    return fences


def _swap(data_dir: str, fresh: str) -> str | None:
    """Put the new directory in place; keep the old one beside it, renamed."""
    kept_old_at = None
    if os.path.lexists(data_dir):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept_old_at = f"{data_dir}.replaced-{stamp}"
        os.rename(data_dir, kept_old_at)
    os.rename(fresh, data_dir)
    fd = os.open(os.path.dirname(data_dir) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return kept_old_at
