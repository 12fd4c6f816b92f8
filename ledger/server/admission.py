"""Before a node takes part in Paxos: ask the other members what they hold about it.

A node whose data directory is new votes only after every other member said it
holds no record of this node id (a wiped member must not pass for a new one; see
README, "Losing a disk"). A node with a directory it has used before asks every
member it can reach within `ADMISSION_WAIT_S` and is refused when one of them
recorded another incarnation of it or saw it at a later commit than the directory
now holds (restored from an older copy).
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig
from ledger.node.peer_book import recover_hint
from ledger.node.transport import open_channel
from ledger.security.tls import Security
from ledger.storage.base import NodeIdentity
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

ADMISSION_WAIT_S = 5.0  # a used directory waits this long for members that do not answer
ASK_TIMEOUT_S = 1.0
ASK_EVERY_S = 0.5
REPORT_EVERY_S = 5.0  # how often a waiting node says whom it waits for


class RecoveryRequired(Exception):
    """This data directory must go through `ledger recover`; the message says why."""


def verdict(identity: NodeIdentity, durable_seq: int, reply: pb.IdentifyReply) -> str | None:
    """Why `reply` shows this directory cannot vouch for its state (None: it can)."""
    if not reply.known:
        return None
    recorded = peer_codec.incarnation_from_pb(reply, "recorded")
    if recorded != identity.incarnation:
        return (f"member {reply.node_id} holds a record of incarnation {recorded} of node "
                f"{identity.node_id}, but this data directory is incarnation "
                f"{identity.incarnation}: it was wiped or replaced after the cluster had heard "
                f"from this node, and its promises and votes are lost")
    if reply.durable_seq_seen > durable_seq:
        return (f"member {reply.node_id} has seen this node's data directory at commit "
                f"{reply.durable_seq_seen}, but it now holds only {durable_seq} commits: it "
                f"was restored from an older copy and has forgotten promises or votes")
    return None


async def admit(cluster: ClusterConfig, identity: NodeIdentity, durable_seq: int,
                security: Security) -> None:
    """Return once this node may take part in Paxos; raise RecoveryRequired if it may not."""
    me = identity.node_id
    others = {m.node_id: m.address for m in cluster.members if m.node_id != me}
    channels = {node: open_channel(address, security) for node, address in others.items()}
    answered: set[str] = set()
    started_s = reported_s = time.monotonic()
    try:
        while True:
            for node in sorted(set(others) - answered):
                reply = await _ask(channels[node], cluster, me)
                if reply is None:
                    continue
                reason = verdict(identity, durable_seq, reply)
                if reason is not None:
                    raise RecoveryRequired(f"{reason}. {recover_hint(me)}")
                answered.add(node)
            missing = sorted(set(others) - answered)
            if not missing:
                return
            waited_s = time.monotonic() - started_s
            if not identity.join_pending and waited_s >= ADMISSION_WAIT_S:
                log.warning("members %s did not answer within %.0fs; serving on (a rollback "
                            "only they could detect goes unnoticed until they answer)",
                            ", ".join(missing), ADMISSION_WAIT_S)
                return
            if time.monotonic() - reported_s >= REPORT_EVERY_S:
                reported_s = time.monotonic()
                log.warning("new data directory: not voting until every member says it holds "
                            "no record of node %s; waiting for %s", me, ", ".join(missing))
            await asyncio.sleep(ASK_EVERY_S)
    finally:
        for channel in channels.values():
            await channel.close()


async def _ask(channel: grpc.aio.Channel, cluster: ClusterConfig,
               node_id: str) -> pb.IdentifyReply | None:
    try:
        return await pb_grpc.ReplicaStub(channel).Identify(
            pb.IdentifyRequest(cluster_fingerprint=cluster.fingerprint, node_id=node_id),
            timeout=ASK_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
            raise RecoveryRequired(f"a member refused this node: {error.details()}") from None
        return None
