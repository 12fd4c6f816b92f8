"""While `ledger recover` runs, it answers the questions other members' recoveries ask.

Two members of five may lose their disks at once; each one's `ledger recover`
needs every other member's `Rejoin`, so each answers the other's: it records the
caller's new incarnation in the directory it is building and reports what it
holds there (kept chosen values; no promises, so round 0). With at most a minority
recovering, the healthy members' reports alone cover every quorum (see
`ledger.paxos.rejoin`). Paxos messages are refused until the node serves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent import futures

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig
from ledger.paxos.records import Write
from ledger.security.authn import Authenticator, Unauthenticated
from ledger.security.revocation import RevocationList
from ledger.security.tls import TlsMaterial
from ledger.server.rejoin_answers import identify_reply, member_refusal, recovery_tails_reply
from ledger.storage.base import AccountSummary, NodeIdentity, PeerRecord, RecoveryTail
from ledger.storage.lmdb import LmdbStore
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


class LockedStore:
    """The directory being built, shared by the recovery and the answering threads.

    Every write is staged and committed under one lock, so no write transaction
    stays open across threads.
    """

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._lock = threading.Lock()

    def write(self, writes: Iterable[Write]) -> None:
        with self._lock:
            self._store.stage(writes)
            self._store.sync()

    def set_identity(self, identity: NodeIdentity) -> None:
        with self._lock:
            self._store.set_identity(identity)

    def record_peer(self, node_id: str, record: PeerRecord) -> None:
        with self._lock:
            records = self._store.peer_records()
            records[node_id] = record
            self._store.set_peer_records(records)

    def peer_record(self, node_id: str) -> PeerRecord | None:
        with self._lock:
            return self._store.peer_records().get(node_id)

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        with self._lock:
            return self._store.recovery_tails(after, limit)

    def account_summary(self, account: str) -> AccountSummary:
        with self._lock:
            return self._store.account_summary(account)

    def close(self) -> None:
        with self._lock:
            self._store.close()


class RecoveringServicer(pb_grpc.ReplicaServicer):
    def __init__(self, cluster: ClusterConfig, node_id: str, store: LockedStore,
                 authenticator: Authenticator) -> None:
        self._cluster = cluster
        self._node_id = node_id
        self._store = store
        self._authenticator = authenticator

    def _check(self, fingerprint: str, node_id: str, context: grpc.ServicerContext) -> None:
        try:
            caller = self._authenticator.principal(context.auth_context())
        except Unauthenticated as error:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
        refusal = member_refusal(self._cluster, self._cluster.index_of(self._node_id),
                                 fingerprint, node_id, caller)
        if refusal is not None:
            context.abort(*refusal)

    def Identify(self, request: pb.IdentifyRequest,
                 context: grpc.ServicerContext) -> pb.IdentifyReply:
        self._check(request.cluster_fingerprint, request.node_id, context)
        return identify_reply(self._node_id, self._store.peer_record(request.node_id))

    def Rejoin(self, request: pb.RejoinRequest, context: grpc.ServicerContext) -> pb.RejoinReply:
        self._check(request.cluster_fingerprint, request.node_id, context)
        incarnation = peer_codec.incarnation_from_pb(request, "incarnation")
        if incarnation is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no valid incarnation")
        self._store.record_peer(request.node_id, PeerRecord(incarnation, 0))
        return pb.RejoinReply(node_id=self._node_id, max_round=0, recovering=True)

    def RecoveryTails(self, request: pb.RecoveryTailsRequest,
                      context: grpc.ServicerContext) -> pb.RecoveryTailsReply:
        self._check(request.cluster_fingerprint, request.node_id, context)
        return recovery_tails_reply(self._store.recovery_tails, request)

    def Step(self, request: pb.StepRequest, context: grpc.ServicerContext) -> pb.StepReply:
        context.abort(grpc.StatusCode.UNAVAILABLE,
                      f"node {self._node_id} is recovering: it takes no part in Paxos yet")

    def Stream(self, requests: object, context: grpc.ServicerContext) -> pb.StepReply:
        context.abort(grpc.StatusCode.UNAVAILABLE,
                      f"node {self._node_id} is recovering: it takes no part in Paxos yet")


def start_answering(cluster: ClusterConfig, node_id: str, store: LockedStore,
                    bind_address: str, tls: TlsMaterial | None,
                    revocations: RevocationList | None = None) -> grpc.Server:
    """Serve the recovery questions on `bind_address` until the returned server stops
    (with this node's member certificate; only members' certificates, and none the
    revocation list names, are answered: a Rejoin records an incarnation)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    authenticator = Authenticator(tls is None, revocations if tls is not None else None)
    pb_grpc.add_ReplicaServicer_to_server(
        RecoveringServicer(cluster, node_id, store, authenticator), server)
    try:
        port = (server.add_insecure_port(bind_address) if tls is None
                else server.add_secure_port(bind_address, tls.server_credentials()))
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {bind_address}: is node {node_id} still running? "
                      f"Stop it before recovering it")
    server.start()
    return server
