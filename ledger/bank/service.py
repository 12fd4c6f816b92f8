"""The bank's write and read paths (Megastore's optimistic scheme), over the node driver.

Writes: requests for one account queue up and are decided together, several in
one log entry, by a single worker per account:

1. check each request against exactly the applied prefix 0..N: a request id
   already decided answers with its recorded outcome (or ALREADY_EXISTS if the
   fields differ); an open of an open account is ALREADY_EXISTS; a deposit or
   withdrawal on an account unknown here first waits for a read barrier, and is
   NOT_FOUND if a majority confirms position 0 is not chosen;
2. propose the entry at N+1, and only there (the driver checks the prefix has
   not moved; if it has, go to 1 at once);
3. if the entry is chosen, every request in it gets the verdict applying it
   computed; if another entry won N+1, back off (randomised, exponential) and
   go to 1.

Reads: STRONG passes a read barrier first (linearizable); LOCAL answers from
this node's applied state.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ledger import errors
from ledger.accounts import Kind, Operation, same_request
from ledger.accounts.validation import (
    check_account_id,
    check_amount,
    check_memo,
    check_opening_balance,
    check_page,
    check_request_id,
)
from ledger.bank import codec
from ledger.bank.codec import Decision
from ledger.bank.model import Balance, HistoryEntry, TransactionResult, WriteRequest
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.driver import NodeDriver, NoQuorum, StorageUnavailable

MAX_OPERATIONS_PER_ENTRY = 512  # one log entry decides at most this many requests
MAX_BATCH_OPERATIONS = 10_000  # operations in one Submit call
BACKOFF_BASE_S = 0.002
BACKOFF_CAP_S = 0.2


#: Sends writes to another node's bank and returns its results, in order.
Forward = Callable[[int, list[WriteRequest], float],
                   Awaitable[list["TransactionResult | errors.LedgerError"]]]

SUSPECT_S = 2.0  # a leader that failed a forward is bypassed this long


@dataclass(slots=True, eq=False)
class _Request:
    account: str
    operation: Operation
    future: asyncio.Future[TransactionResult]
    deadline: float  # time.monotonic() by which the caller wants an answer
    forwarded: bool = False  # another node sent it here: never forward it again


@dataclass(slots=True)
class _AccountQueue:
    waiting: deque[_Request] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Bank:
    """Opens accounts, moves money, answers balances and histories."""

    def __init__(
        self,
        driver: NodeDriver,
        machine: LedgerStateMachine,
        rng: random.Random | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        forward: Forward | None = None,
    ) -> None:
        self._driver = driver
        self._machine = machine
        self._rng = rng or random.Random()
        self._clock_ms = clock_ms
        self._forward = forward
        self._suspects: dict[int, float] = {}  # node -> monotonic time to trust it again
        self._queues: dict[str, _AccountQueue] = {}
        self.forwarded_batches = 0

    # ----------------------------------------------------------------- writes

    async def open_account(
        self, account_id: str, opening_balance: int, request_id: str, timeout_s: float
    ) -> TransactionResult:
        write = WriteRequest(Kind.OPEN, account_id, opening_balance, request_id)
        return await self._write(account_id, self._operation(write, self._clock_ms()), timeout_s)

    async def deposit(
        self, account_id: str, amount: int, request_id: str, memo: str, timeout_s: float
    ) -> TransactionResult:
        write = WriteRequest(Kind.DEPOSIT, account_id, amount, request_id, memo)
        return await self._write(account_id, self._operation(write, self._clock_ms()), timeout_s)

    async def withdraw(
        self, account_id: str, amount: int, request_id: str, memo: str, timeout_s: float
    ) -> TransactionResult:
        write = WriteRequest(Kind.WITHDRAWAL, account_id, amount, request_id, memo)
        return await self._write(account_id, self._operation(write, self._clock_ms()), timeout_s)

    async def submit(
        self, requests: Sequence[WriteRequest], timeout_s: float, forwarded: bool = False
    ) -> list[TransactionResult | errors.LedgerError]:
        """Decide many writes at once; one result (or error) per request, in order.

        Each is exactly the single call it stands for (same validation, same
        idempotency); requests for one account share log entries.
        """
        if len(requests) > MAX_BATCH_OPERATIONS:
            raise errors.InvalidRequest(
                f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, not {len(requests)}")
        deadline = time.monotonic() + timeout_s
        now_ms = self._clock_ms()
        results: list[TransactionResult | errors.LedgerError | _Request] = []
        for write in requests:
            try:
                operation = self._operation(write, now_ms)
            except errors.InvalidRequest as invalid:
                results.append(invalid)
            else:
                results.append(self._enqueue(write.account_id, operation, deadline, forwarded))
        # One wait for the whole batch (not a timer per operation).
        pending = [r.future for r in results if isinstance(r, _Request)]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        return [_settled(r, timeout_s) if isinstance(r, _Request) else r for r in results]

    @staticmethod
    def _operation(write: WriteRequest, now_ms: int) -> Operation:
        """The operation a batch write asks for, validated as the single call would be."""
        check_account_id(write.account_id)
        check_request_id(write.request_id)
        if write.kind is Kind.OPEN:
            check_opening_balance(write.amount)
            return Operation(Kind.OPEN, write.amount, write.request_id, "", now_ms)
        check_amount(write.amount)
        check_memo(write.memo)
        return Operation(write.kind, write.amount, write.request_id, write.memo, now_ms)

    async def _write(
        self, account: str, operation: Operation, timeout_s: float
    ) -> TransactionResult:
        request = self._enqueue(account, operation, time.monotonic() + timeout_s)
        try:
            # A timeout cancels the request's future: a worker skips or ignores it then.
            async with asyncio.timeout(timeout_s):
                return await request.future
        except TimeoutError:
            raise _undecided(request, timeout_s) from None

    def _enqueue(self, account: str, operation: Operation, deadline: float,
                 forwarded: bool = False) -> _Request:
        """Queue a request on its account's worker (starting it if idle)."""
        request = _Request(account, operation, asyncio.get_running_loop().create_future(),
                           deadline, forwarded)
        queue = self._queues.setdefault(account, _AccountQueue())
        queue.waiting.append(request)
        if queue.worker is None:
            queue.worker = asyncio.create_task(self._work(account, queue))
        return request

    async def _work(self, account: str, queue: _AccountQueue) -> None:
        """Decide the account's queued requests, a log entry at a time, until none are left."""
        attempt = 0
        try:
            while queue.waiting:
                batch = await self._admit(account, queue)
                if not batch:
                    continue
                leader = self._leader_elsewhere(account, batch)
                if leader is not None:
                    await self._forward_batch(leader, batch, queue)
                    continue
                stored = self._machine.account(account)
                expected = stored.applied_slot + 1
                value = codec.encode_entry([r.operation for r in batch],
                                           nonce=self._rng.getrandbits(64))
                budget_s = max(r.deadline for r in batch) - time.monotonic()
                try:
                    outcome = await self._driver.propose(account, value, max(budget_s, 0.001),
                                                         expected_slot=expected)
                except (NoQuorum, StorageUnavailable) as error:
                    self._fail(batch, errors.Unavailable(
                        f"{error}; retrying with the same request id is safe"))
                    continue
                if outcome is not None and outcome.won:
                    attempt = 0
                    for request in batch:
                        self._answer_decided(request, outcome.slot)
                    continue
                # The prefix moved, or another entry won the slot: check again.
                queue.waiting.extendleft(reversed(batch))
                if outcome is not None:
                    attempt += 1
                    ceiling_s = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
                    await asyncio.sleep(self._rng.uniform(0, ceiling_s))
        finally:
            queue.worker = None
            if queue.waiting:  # arrived while the worker was finishing
                queue.worker = asyncio.create_task(self._work(account, queue))
            else:
                self._queues.pop(account, None)

    def _leader_elsewhere(self, account: str, batch: list[_Request]) -> int | None:
        """Another node leading this account, to forward to rather than fight with."""
        if self._forward is None or any(r.forwarded for r in batch):
            return None
        leader = self._driver.core.leader_hint(account)
        if leader is None or leader == self._driver.node_index:
            return None
        if self._suspects.get(leader, 0.0) > time.monotonic():
            return None
        return leader

    async def _forward_batch(self, leader: int, batch: list[_Request],
                             queue: _AccountQueue) -> None:
        """Let the leader decide the batch (its fast path, no dueling ballots).

        If it does not answer, suspect it for a while and decide the batch here: the
        same request ids make that safe whatever the leader did with them.
        """
        assert self._forward is not None
        writes = [WriteRequest(r.operation.kind, r.account, r.operation.amount,
                               r.operation.request_id, r.operation.memo) for r in batch]
        # Keep half of the time for deciding here should the leader not answer.
        budget_s = (min(r.deadline for r in batch) - time.monotonic()) / 2
        try:
            results = await self._forward(leader, writes, max(budget_s, 0.001))
        except errors.Unavailable:
            self._suspects[leader] = time.monotonic() + SUSPECT_S
            for request in batch:
                request.forwarded = True  # decide it here next time round
            queue.waiting.extendleft(reversed(batch))
            return
        self.forwarded_batches += 1
        for request, result in zip(batch, results, strict=True):
            if request.future.done():
                continue
            if isinstance(result, errors.LedgerError):
                request.future.set_exception(result)
            else:
                request.future.set_result(result)

    async def _admit(self, account: str, queue: _AccountQueue) -> list[_Request]:
        """Take the next requests that must be proposed; answer the others now."""
        batch: list[_Request] = []
        seen: set[str] = set()
        deferred: list[_Request] = []
        while queue.waiting and len(batch) < MAX_OPERATIONS_PER_ENTRY:
            request = queue.waiting.popleft()
            if request.future.done():
                continue  # its caller gave up before it was proposed
            operation = request.operation
            if operation.request_id in seen:
                deferred.append(request)  # decided by the first of them; answer it after
                continue
            if operation.kind is Kind.OPEN and batch:
                deferred.append(request)  # an open goes alone, at slot 0
                continue
            if (
                operation.kind is not Kind.OPEN
                and not self._machine.account(account).state.opened
                and not await self._confirm_open(request)
            ):
                continue
            if self._answer_known(request):
                continue
            if operation.kind is Kind.OPEN:
                batch.append(request)
                break
            seen.add(operation.request_id)
            batch.append(request)
        queue.waiting.extendleft(reversed(deferred))
        return batch

    async def _confirm_open(self, request: _Request) -> bool:
        """An account unknown here: ask a majority before calling it NOT_FOUND."""
        try:
            await self._driver.read_barrier(request.account, request.deadline - time.monotonic())
        except NoQuorum as error:
            self._fail([request], errors.Unavailable(str(error)))
            return False
        if self._machine.account(request.account).state.opened:
            return True
        self._fail([request], errors.AccountNotFound(
            f"account {request.account!r} does not exist; open it first"))
        return False

    def _answer_known(self, request: _Request) -> bool:
        """Answer from the applied prefix if it already decides the request."""
        account, operation = request.account, request.operation
        decision = self._machine.decision(account, operation.request_id)
        if decision is not None:
            self._answer(request, decision, duplicate=True)
            return True
        if operation.kind is Kind.OPEN and self._machine.account(account).state.opened:
            self._fail([request], errors.AccountExists(
                f"account {account!r} is already open (under another request id)"))
            return True
        return False

    def _answer_decided(self, request: _Request, slot: int) -> None:
        """Our entry was chosen at `slot`: answer with the verdict applying it computed."""
        decision = self._machine.recent_decision(request.account, slot,
                                                 request.operation.request_id)
        if decision is None:  # applying found nothing to do (cannot happen with one opener)
            self._fail([request], errors.AccountExists(
                f"account {request.account!r} is already open"))
            return
        self._answer(request, decision, duplicate=decision.slot != slot)

    def _answer(self, request: _Request, decision: Decision, duplicate: bool) -> None:
        operation = request.operation
        if not same_request(decision.operation, operation):
            self._fail([request], errors.AccountExists(
                f"request id {operation.request_id!r} was already used on account "
                f"{request.account!r} for a {decision.operation.kind.value} of "
                f"{decision.operation.amount}; use a new request id for a new request"))
            return
        if decision.rejected:
            self._fail([request], refusal(decision, request.account))
            return
        result = TransactionResult(request.account, decision.position, decision.balance_after,
                                   duplicate)
        if not request.future.done():
            request.future.set_result(result)

    @staticmethod
    def _fail(requests: list[_Request], error: Exception) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error)

    # ------------------------------------------------------------------ reads

    async def balance(self, account_id: str, strong: bool, timeout_s: float) -> Balance:
        check_account_id(account_id)
        if strong:
            await self._barrier(account_id, timeout_s)
        state = self._machine.account(account_id).state
        if not state.opened:
            raise errors.AccountNotFound(f"account {account_id!r} does not exist")
        return Balance(account_id, state.balance, state.operations - 1)

    async def history(
        self, account_id: str, from_position: int, limit: int, strong: bool, timeout_s: float
    ) -> list[HistoryEntry]:
        check_account_id(account_id)
        limit = check_page(limit)
        if strong:
            await self._barrier(account_id, timeout_s)
        if not self._machine.account(account_id).state.opened:
            raise errors.AccountNotFound(f"account {account_id!r} does not exist")
        return self._machine.history(account_id, from_position, limit)

    def list_accounts(self, after: str, limit: int) -> list[str]:
        return self._machine.opened_accounts(after, check_page(limit))

    async def _barrier(self, account: str, timeout_s: float) -> None:
        try:
            await self._driver.read_barrier(account, timeout_s)
        except NoQuorum as error:
            raise errors.Unavailable(str(error)) from None

    async def close(self) -> None:
        """Stop the account workers (their callers get UNAVAILABLE)."""
        for queue in list(self._queues.values()):
            if queue.worker is not None:
                queue.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await queue.worker


def _undecided(request: _Request, timeout_s: float) -> errors.Unavailable:
    return errors.Unavailable(
        f"no majority decided request {request.operation.request_id!r} on account "
        f"{request.account!r} within {timeout_s:.1f}s: it may or may not have been applied; "
        "retrying with the same request id is safe")


def _settled(request: _Request, timeout_s: float) -> TransactionResult | errors.LedgerError:
    """A batch request's result once the batch's wait is over."""
    future = request.future
    if not future.done():
        future.cancel()
        return _undecided(request, timeout_s)
    error = future.exception()
    if error is not None:
        assert isinstance(error, errors.LedgerError), error
        return error
    return future.result()


def refusal(decision: Decision, account: str) -> errors.Refused:
    """The error a refused operation is reported as, with the numbers that explain it."""
    op = decision.operation
    if op.kind is Kind.WITHDRAWAL:
        return errors.InsufficientFunds(
            f"insufficient funds: account {account!r} had a balance of {decision.balance_after} "
            f"when the withdrawal of {op.amount} was decided (operation {decision.position})",
            balance=decision.balance_after, amount=op.amount, position=decision.position)
    return errors.BalanceLimit(
        f"balance limit: a deposit of {op.amount} on account {account!r} would take its "
        f"balance of {decision.balance_after} past the limit (operation {decision.position})",
        balance=decision.balance_after, amount=op.amount, position=decision.position)
