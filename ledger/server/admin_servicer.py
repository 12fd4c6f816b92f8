"""The Admin API (Status, Log, Trace, Backup): what operators and tools ask a node about
itself."""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator

import grpc

from ledger.accounts.validation import check_account_id
from ledger.errors import InvalidRequest
from ledger.node.cluster import ClusterConfig
from ledger.node.driver import NodeDriver
from ledger.server.status import BalanceOf, node_status
from ledger.storage.base import Corruption, StorageError, StorageFull, Store
from ledger.storage.lmdb.backup import Backup, CopyableStore, copy_live_store
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

MAX_LOG_VALUES = 1_000  # chosen values in one Log reply
DEFAULT_LOG_VALUES = 100
BACKUP_CHUNK_BYTES = 1 << 20  # data per BackupChunk, well under a client's 4 MiB default


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
                                 opened=a.balance is not None, balance=a.balance or 0,
                                 highest_slot=a.highest_slot)
                for a in status.accounts
            ],
            complete=status.complete,
            counters=self._driver.counter_values(),
        )

    async def Log(self, request: pb.LogRequest, context: grpc.aio.ServicerContext) -> pb.LogReply:
        await self._check_account(request.account, "account", context)
        limit = min(request.limit or DEFAULT_LOG_VALUES, MAX_LOG_VALUES)
        try:
            values = self._store.chosen_values(request.account, request.from_slot, limit)
        except Corruption as error:
            self._driver.report_damage(error)  # a chosen value is fetched again from a peer
            await context.abort(grpc.StatusCode.DATA_LOSS, str(error))
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
                          peer_id="" if e.peer is None else members[e.peer].node_id, text=e.text,
                          kind=e.kind, slot=e.slot, ballot=e.ballot)
            for e in events
        ])

    async def Backup(self, request: pb.BackupRequest, context: grpc.aio.ServicerContext
                     ) -> AsyncIterator[pb.BackupChunk]:
        store = self._store
        if not isinstance(store, CopyableStore):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "this node's store cannot be copied (only an LMDB store can)")
        try:
            scratch = tempfile.mkdtemp(prefix=f"ledger-backup-{self._node_id}-")
        except OSError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"cannot make a temporary directory for the copy: {error}")
        # Shielded: a client that goes away cancels this call, but not the copy's thread
        # (nothing can stop it); the scratch directory goes once the thread is done with it.
        copying = asyncio.ensure_future(asyncio.to_thread(copy_live_store, store, scratch))
        try:  # a client that goes away closes this generator: the finally runs then too
            try:
                backup = await asyncio.shield(copying)
            except StorageError as error:
                code = (grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(error, StorageFull)
                        else grpc.StatusCode.UNAVAILABLE)
                await context.abort(code, f"the backup failed: {error}")
            # The copy's data file in chunks; the first names the node and the total size.
            with open(backup.data_path, "rb") as data:
                chunk = await asyncio.to_thread(data.read, BACKUP_CHUNK_BYTES)
                yield pb.BackupChunk(node_id=self._node_id, data=chunk,
                                     total_bytes=backup.size_bytes)
                while chunk := await asyncio.to_thread(data.read, BACKUP_CHUNK_BYTES):
                    yield pb.BackupChunk(data=chunk)
        finally:
            _remove_when_copied(copying, scratch)

    @staticmethod
    async def _check_account(account: str, field: str, context: grpc.aio.ServicerContext
                             ) -> None:
        try:
            check_account_id(account)
        except InvalidRequest as invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {invalid}")


def _remove_when_copied(copying: asyncio.Future[Backup], scratch: str) -> None:
    """Remove a backup's scratch directory, off the loop, once its copy's thread is done."""

    def remove(done: asyncio.Future[Backup]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved: the caller was told of it, or has gone
        asyncio.get_running_loop().run_in_executor(
            None, functools.partial(shutil.rmtree, scratch, ignore_errors=True))

    if copying.done():
        remove(copying)
    else:
        copying.add_done_callback(remove)
