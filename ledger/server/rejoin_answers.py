"""What a node answers about itself to another member's checks and recoveries: shared by
the serving node (`replica_servicer`) and a node that is recovering itself
(`recovering_server`), so both speak exactly alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.storage.base import PeerRecord, RecoveryTail
from ledger.v1 import replica_pb2 as pb

MAX_RECOVERY_TAILS = 10_000  # accounts per RecoveryTails page
DEFAULT_RECOVERY_TAILS = 1_000


def member_refusal(cluster: ClusterConfig, own_index: int, fingerprint: str,
                   node_id: str) -> tuple[grpc.StatusCode, str] | None:
    """Why a call claiming to come from member `node_id` is refused (None: it is not)."""
    if fingerprint != cluster.fingerprint:
        return (grpc.StatusCode.FAILED_PRECONDITION,
                f"cluster configuration mismatch: this node runs {cluster.canonical()} "
                f"(fingerprint {cluster.fingerprint}), the caller's fingerprint is "
                f"{fingerprint}")
    try:
        source = cluster.index_of(node_id)
    except ConfigError as error:
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if source == own_index:
        return (grpc.StatusCode.INVALID_ARGUMENT,
                f"a peer call must not claim this node's own id {node_id!r}")
    return None


def identify_reply(own_id: str, record: PeerRecord | None) -> pb.IdentifyReply:
    """What this node holds about the caller."""
    if record is None:
        return pb.IdentifyReply(node_id=own_id, known=False)
    return pb.IdentifyReply(node_id=own_id, known=True,
                            recorded=peer_codec.incarnation_pb(record.incarnation),
                            durable_seq_seen=record.durable_seq)


def recovery_tails_reply(
    tails_after: Callable[[str, int], Sequence[RecoveryTail]], request: pb.RecoveryTailsRequest,
) -> pb.RecoveryTailsReply:
    """One page of how far each account's log reaches here, at most MAX_RECOVERY_TAILS."""
    limit = min(request.limit or DEFAULT_RECOVERY_TAILS, MAX_RECOVERY_TAILS)
    tails = tails_after(request.after, limit)
    return pb.RecoveryTailsReply(
        tails=[pb.RecoveryTail(account=t.account, chosen_through=t.chosen_through,
                               highest_slot=t.highest_slot) for t in tails],
        complete=len(tails) < limit)
