"""The Admin API (Status, Log, Trace): what operators and tools ask a node about itself."""

from __future__ import annotations

import grpc

from ledger.accounts.validation import check_account_id
from ledger.errors import InvalidRequest
from ledger.node.cluster import ClusterConfig
from ledger.node.driver import NodeDriver
from ledger.server.status import BalanceOf, node_status
from ledger.storage.base import Store
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

MAX_LOG_VALUES = 1_000  # chosen values in one Log reply
DEFAULT_LOG_VALUES = 100


class AdminServicer(pb_grpc.AdminServicer):
    def __init__(
        self, node_id: str, cluster: ClusterConfig, store: Store, driver: NodeDriver,
        balance_of: BalanceOf,
    ) -> None:
        self._node_id = node_id
        self._cluster = cluster
        self._store = store
        self._driver = driver
        self._balance_of = balance_of

    async def Status(
        self, request: pb.StatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.StatusReply:
        if request.after:
            await self._check_account(request.after, "after", context)
        status = node_status(self._node_id, self._cluster, self._store, self._driver,
                             self._balance_of, request.after, request.limit)
        return pb.StatusReply(
            node_id=status.node_id,
            peers=list(status.peers),
            cluster_fingerprint=status.cluster_fingerprint,
            accounts=[
                pb.AccountStatus(account=a.account, applied_slot=a.applied_slot,
                                 chosen_through=a.chosen_through, digest=a.digest,
                                 opened=a.balance is not None, balance=a.balance or 0)
                for a in status.accounts
            ],
            complete=status.complete,
            counters=self._driver.counter_values(),
        )

    async def Log(self, request: pb.LogRequest, context: grpc.aio.ServicerContext) -> pb.LogReply:
        await self._check_account(request.account, "account", context)
        limit = min(request.limit or DEFAULT_LOG_VALUES, MAX_LOG_VALUES)
        values = self._store.chosen_values(request.account, request.from_slot, limit)
        summary = self._store.account_summary(request.account)
        return pb.LogReply(account=request.account, from_slot=request.from_slot,
                           values=list(values), chosen_through=summary.chosen_through)

    async def Trace(
        self, request: pb.TraceRequest, context: grpc.aio.ServicerContext
    ) -> pb.TraceReply:
        await self._check_account(request.account, "account", context)
        tracer = self._driver.tracer
        if request.stop:
            events = tracer.stop(request.account)
        else:
            if request.start:
                tracer.start(request.account)
            events = tracer.events(request.account)
        members = self._cluster.members
        return pb.TraceReply(events=[
            pb.TraceEvent(at_ms=e.at_ms, node_id=self._node_id, direction=e.direction,
                          peer_id="" if e.peer is None else members[e.peer].node_id, text=e.text)
            for e in events
        ])

    @staticmethod
    async def _check_account(account: str, field: str, context: grpc.aio.ServicerContext
                             ) -> None:
        try:
            check_account_id(account)
        except InvalidRequest as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {invalid}")
