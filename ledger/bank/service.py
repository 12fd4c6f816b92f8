"""The bank: opens accounts, moves money (transfers too), answers balances and histories.

A facade over the write path (`writes`: per-account workers, Megastore's optimistic
scheme), forwarding to an account's leader (`forwarding`) and reads (`reads`), all
over a `Consensus` (the node driver) and the ledger state machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from ledger import errors
from ledger.accounts import Kind, WriteRequest
from ledger.accounts.validation import MAX_BATCH_OPERATIONS
from ledger.bank.audit import Audit
from ledger.bank.courier import Courier
from ledger.bank.forwarding import Forward, Forwarding
from ledger.bank.model import Balance, HistoryEntry, TransactionResult
from ledger.bank.reads import Reads
from ledger.bank.requests import PendingWrite, operation_for, settled, undecided
from ledger.bank.state_machine import LedgerStateMachine
from ledger.bank.transfers import TransferRequest, TransferResult, Transfers, transferred
from ledger.bank.writes import AccountWriters
from ledger.node.consensus import Consensus


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Bank:
    """Every public operation of the ledger, as the servicers call them."""

    def __init__(
        self,
        consensus: Consensus,
        machine: LedgerStateMachine,
        rng: random.Random | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        forward: Forward | None = None,
    ) -> None:
        self._clock_ms = clock_ms
        self._consensus = consensus
        self._machine = machine
        self._forwarding = Forwarding(consensus, forward)
        self._writers = AccountWriters(consensus, machine, self._forwarding,
                                       rng or random.Random())
        self._reads = Reads(consensus, machine)
        self._transfers = Transfers(consensus, machine, self._writers, clock_ms)
        self.courier = Courier(consensus, machine, self._transfers, clock_ms)
        self._courier_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start completing the transfers this node finds pending (once it takes part in
        Paxos)."""
        if self._courier_task is None:
            self._courier_task = asyncio.create_task(self.courier.run())

    @property
    def forwarded_batches(self) -> int:
        return self._forwarding.forwarded_batches

    def memory_bounds(self) -> dict[str, tuple[int, int]]:
        """What the bank's bounded memory holds, and each bound: (used, limit) by name."""
        return {**self._machine.bounds(), "account_workers": self._writers.workers()}

    def held_entries(self) -> int:
        return self._machine.held_entries()

    def writes_answered(self) -> dict[str, int]:
        """Writes answered by this node, as counters named "writes:KIND:OUTCOME" (outcome:
        applied, refused or duplicate); a write forwarded to a leader counts there."""
        return {f"writes:{kind}:{outcome}": count
                for (kind, outcome), count in self._writers.answered().items()}

    def leader_of(self, account: str) -> int | None:
        """Another node that leads `account`, as far as this node knows (None: this node,
        or nobody): a hint for clients, never a promise."""
        return self._consensus.leader_hint(account)

    # ----------------------------------------------------------------- writes

    # `principal`: who asked (the authenticated caller's name; "" for a write made inside
    # the node). It is recorded with the operation in the log and the history.

    async def open_account(
        self, account_id: str, opening_balance: int, request_id: str, timeout_s: float,
        principal: str = "",
    ) -> TransactionResult:
        return await self._write(WriteRequest(Kind.OPEN, account_id, opening_balance,
                                              request_id, principal=principal), timeout_s)

    async def deposit(
        self, account_id: str, amount: int, request_id: str, memo: str, timeout_s: float,
        principal: str = "",
    ) -> TransactionResult:
        return await self._write(WriteRequest(Kind.DEPOSIT, account_id, amount, request_id,
                                              memo, principal), timeout_s)

    async def withdraw(
        self, account_id: str, amount: int, request_id: str, memo: str, timeout_s: float,
        principal: str = "",
    ) -> TransactionResult:
        return await self._write(WriteRequest(Kind.WITHDRAWAL, account_id, amount, request_id,
                                              memo, principal), timeout_s)

    async def submit(
        self, requests: Sequence[WriteRequest], timeout_s: float, forwarded: bool = False
    ) -> list[TransactionResult | TransferResult | errors.LedgerError]:
        """Decide many writes at once; one result (or error) per request, in order.

        Each is exactly the single call it stands for (same validation, same
        idempotency); requests for one account share log entries. A transfer
        (TRANSFER_OUT: its debit's account, `counterparty` the destination) runs as
        the Transfer call does, once the batch's earlier writes to either of its
        accounts are decided (an open, then a transfer to it, works in one batch).
        """
        if len(requests) > MAX_BATCH_OPERATIONS:
            raise errors.InvalidRequest(
                f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, not {len(requests)}")
        deadline = time.monotonic() + timeout_s
        now_ms = self._clock_ms()
        results: list[TransactionResult | errors.LedgerError | PendingWrite
                      | asyncio.Task[TransferResult]] = []
        # Each account's writes so far, which a transfer waits for (kept only when the
        # batch holds a transfer: nothing per write that transfers alone need).
        earlier: dict[str, list[asyncio.Future[Any]]] | None = (
            {} if any(write.kind is Kind.TRANSFER_OUT for write in requests) else None)
        for write in requests:
            if earlier is not None and write.kind is Kind.TRANSFER_OUT:
                before = [*earlier.get(write.account_id, ()),
                          *earlier.get(write.counterparty, ())]
                task = asyncio.create_task(self._transfer_after(before, TransferRequest(
                    write.account_id, write.counterparty, write.amount, write.request_id,
                    write.memo, write.principal), deadline))
                results.append(task)
                for account in (write.account_id, write.counterparty):
                    earlier.setdefault(account, []).append(task)
                continue
            try:
                operation = operation_for(write, now_ms)
            except errors.InvalidRequest as invalid:
                results.append(invalid)
            else:
                pending = self._writers.enqueue(write.account_id, operation, deadline,
                                                forwarded)
                results.append(pending)
                if earlier is not None:
                    earlier.setdefault(write.account_id, []).append(pending.future)
        # One wait for the whole batch (not a timer per operation).
        pending = [r.future if isinstance(r, PendingWrite) else r for r in results
                   if isinstance(r, PendingWrite | asyncio.Task)]
        if pending:
            try:
                await asyncio.wait(pending, timeout=timeout_s)
            except asyncio.CancelledError:
                # The caller is gone (its call or stream ended): nobody will read these,
                # so a worker skips or ignores them, as when a wait times out.
                for future in pending:
                    future.cancel()
                raise
        return [settled(r, timeout_s) if isinstance(r, PendingWrite)
                else transferred(r) if isinstance(r, asyncio.Task) else r for r in results]

    async def transfer(
        self, from_account: str, to_account: str, amount: int, request_id: str, memo: str,
        timeout_s: float, principal: str = "",
    ) -> TransferResult:
        """Move `amount` from one account to another (see `ledger.bank.transfers`)."""
        return await self._transfers.transfer(
            TransferRequest(from_account, to_account, amount, request_id, memo, principal),
            timeout_s)

    async def _transfer_after(self, before: list[asyncio.Future[Any]],
                              request: TransferRequest, deadline: float) -> TransferResult:
        if before:
            await asyncio.wait(before, timeout=max(deadline - time.monotonic(), 0.001))
        return await self._transfers.transfer(request, max(deadline - time.monotonic(), 0.001))

    async def _write(self, write: WriteRequest, timeout_s: float) -> TransactionResult:
        operation = operation_for(write, self._clock_ms())
        request = self._writers.enqueue(write.account_id, operation,
                                        time.monotonic() + timeout_s)
        try:
            # A timeout cancels the request's future: a worker skips or ignores it then.
            async with asyncio.timeout(timeout_s):
                return await request.future
        except TimeoutError:
            raise undecided(request, timeout_s) from None

    # ------------------------------------------------------------------ reads

    async def balance(self, account_id: str, strong: bool, timeout_s: float) -> Balance:
        return await self._reads.balance(account_id, strong, timeout_s)

    async def history(
        self, account_id: str, from_position: int, limit: int, strong: bool, timeout_s: float
    ) -> list[HistoryEntry]:
        return await self._reads.history(account_id, from_position, limit, strong, timeout_s)

    def list_accounts(self, after: str, limit: int) -> list[str]:
        return self._reads.list_accounts(after, limit)

    async def audit(self) -> Audit:
        """Every balance and the money in flight, as one consistent cut of this node's
        applied state (LOCAL: it may trail the cluster, never contradict it). Applying
        pauses while it reads: writes and STRONG reads here wait for it meanwhile."""
        self._consensus.pause_applying()
        try:
            return await self._machine.audit()
        finally:
            self._consensus.resume_applying()

    async def close(self) -> None:
        """Stop the courier and the account workers (their callers get UNAVAILABLE)."""
        if self._courier_task is not None:
            self._courier_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._courier_task
        await self._writers.close()
