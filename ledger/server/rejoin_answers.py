"""What a node answers about itself to another member's checks and recoveries: shared by
the serving node (`replica_servicer`) and a node that is recovering itself
(`recovering_server`), so both speak exactly alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.security.principal import ANONYMOUS, Principal
from ledger.storage.base import PeerRecord, RecoveryTail
from ledger.v1 import replica_pb2 as pb

MAX_RECOVERY_TAILS = 10_000  # accounts per RecoveryTails page
DEFAULT_RECOVERY_TAILS = 1_000


def member_refusal(cluster: ClusterConfig, own_index: int, fingerprint: str,
                   node_id: str, caller: Principal) -> tuple[grpc.StatusCode, str] | None:
    """Why a call claiming to come from member `node_id` is refused (None: it is not).
    Who sent it is the certificate's member (`caller`), never the message's claim: the
    two must agree (under --insecure every caller is ANONYMOUS, and only the claim is
    left to check)."""
    if caller is not ANONYMOUS:
        if not caller.is_member():
            return (grpc.StatusCode.PERMISSION_DENIED,
                    f"{caller.name} is not a member of this cluster: only the members' own "
                    "certificates may call the peer service")
        if caller.name != node_id:
            return (grpc.StatusCode.PERMISSION_DENIED,
                    f"the caller's certificate is member {caller.name}'s, but its message "
                    f"claims to come from {node_id[:80]!r}: refused")
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
