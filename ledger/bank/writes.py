"""The write path (Megastore's optimistic scheme): one worker per account decides its
queued requests, several in one log entry.

1. check each request against exactly the applied prefix 0..N: a request id already
   decided answers with its recorded outcome (or ALREADY_EXISTS if the fields
   differ); an open of an open account is ALREADY_EXISTS; a deposit or withdrawal on
   an account unknown here first waits for a read barrier, and is NOT_FOUND if a
   majority confirms slot 0 is not chosen;
2. forward the batch to the account's leader if another node leads it; else propose
   the entry at slot N+1, and only there (the driver checks the prefix has not
   moved; if it has, go to 1 at once);
3. if the entry is chosen, every request in it gets the verdict applying it
   computed; if another entry won N+1, back off (randomised, exponential) and go to 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import dataclass, field

from ledger import errors
from ledger.accounts import Kind, Operation
from ledger.bank import codec
from ledger.bank.answers import Answers, quarantined
from ledger.bank.forwarding import Forwarding
from ledger.bank.requests import PendingWrite, fail_all
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.consensus import (
    AccountQuarantined,
    Consensus,
    NoQuorum,
    StorageUnavailable,
)

MAX_OPERATIONS_PER_ENTRY = 512  # one log entry decides at most this many requests
#: Account workers running at once; accounts with requests beyond that wait their turn
#: (a worker that decided an entry yields to them). A Submit to thousands of new
#: accounts then holds a few hundred workers' state, not thousands.
MAX_ACCOUNT_WORKERS = 512
BACKOFF_BASE_S = 0.002
BACKOFF_CAP_S = 0.2


@dataclass(slots=True)
class _AccountQueue:
    waiting: deque[PendingWrite] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    in_line: bool = False  # waiting for a worker (see MAX_ACCOUNT_WORKERS)


class AccountWriters:
    """Queues writes per account and runs each account's worker while it has any."""

    def __init__(self, consensus: Consensus, machine: LedgerStateMachine,
                 forwarding: Forwarding, rng: random.Random) -> None:
        self._consensus = consensus
        self._machine = machine
        self._answers = Answers(machine)
        self._forwarding = forwarding
        self._rng = rng
        self._queues: dict[str, _AccountQueue] = {}
        self._running = 0  # workers started and not finished
        self._turns: deque[str] = deque()  # accounts waiting for a worker, in order
        self._closing = False

    def answered(self) -> dict[tuple[str, str], int]:
        """Writes answered so far, by kind and outcome (applied, refused, duplicate)."""
        return dict(self._answers.answered)

    def workers(self) -> tuple[int, int]:
        """Account workers running, and the bound on them."""
        return self._running, MAX_ACCOUNT_WORKERS

    def enqueue(self, account: str, operation: Operation, deadline: float,
                forwarded: bool = False) -> PendingWrite:
        """Queue a request on its account's worker (starting it if idle)."""
        request = PendingWrite(account, operation, asyncio.get_running_loop().create_future(),
                               deadline, forwarded)
        queue = self._queues.setdefault(account, _AccountQueue())
        queue.waiting.append(request)
        if queue.worker is None and not queue.in_line:
            self._schedule(account, queue)
        return request

    def _schedule(self, account: str, queue: _AccountQueue) -> None:
        """Start the account's worker, or put the account in line for one."""
        if self._closing:
            return
        if self._running < MAX_ACCOUNT_WORKERS:
            self._running += 1
            queue.worker = asyncio.create_task(self._work(account, queue))
        else:
            queue.in_line = True
            self._turns.append(account)

    def _finished(self, account: str, queue: _AccountQueue) -> None:
        """A worker ended: put its account back in line if it has more, and start the
        workers of the accounts waiting, as far as there are places."""
        self._running -= 1
        queue.worker = None
        if not queue.waiting:
            self._queues.pop(account, None)
        elif not self._closing:
            queue.in_line = True  # behind every account already waiting
            self._turns.append(account)
        while self._turns and self._running < MAX_ACCOUNT_WORKERS and not self._closing:
            waiting_account = self._turns.popleft()
            waiting = self._queues.get(waiting_account)
            if waiting is None:
                continue
            waiting.in_line = False
            if waiting.waiting:
                self._schedule(waiting_account, waiting)
            else:
                self._queues.pop(waiting_account, None)

    async def close(self) -> None:
        """Stop the account workers (their callers get UNAVAILABLE)."""
        self._closing = True
        for queue in list(self._queues.values()):
            if queue.worker is not None:
                queue.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await queue.worker

    async def _work(self, account: str, queue: _AccountQueue) -> None:
        """Decide the account's queued requests, a log entry at a time, until none are left."""
        attempt = 0
        try:
            while queue.waiting:
                batch = await self._admit(account, queue)
                if not batch:
                    continue
                leader = self._forwarding.leader_for(account, batch)
                if leader is not None:
                    undecided = await self._forwarding.forward(leader, batch)
                    queue.waiting.extendleft(reversed(undecided))
                    continue
                reason = self._consensus.quarantine_reason(account)
                if reason is not None:
                    fail_all(batch, quarantined(account, reason))
                    continue
                expected = self._machine.account(account).applied_slot + 1
                value = codec.encode_entry([r.operation for r in batch],
                                           nonce=self._rng.getrandbits(64))
                budget_s = max(r.deadline for r in batch) - time.monotonic()
                try:
                    outcome = await self._consensus.propose(
                        account, value, max(budget_s, 0.001), expected_slot=expected)
                except (NoQuorum, StorageUnavailable) as error:
                    fail_all(batch, errors.Unavailable(
                        f"{error}; retrying with the same request id is safe"))
                    continue
                except AccountQuarantined as error:
                    fail_all(batch, quarantined(account, str(error)))
                    continue
                if outcome is not None and outcome.won:
                    attempt = 0
                    for request in batch:
                        self._answers.decided(request, outcome.slot)
                    if self._turns:
                        break  # others wait for a worker: this account goes to the back
                    continue
                # The prefix moved, or another entry won the slot: check again.
                queue.waiting.extendleft(reversed(batch))
                if outcome is not None:
                    attempt += 1
                    ceiling_s = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
                    await asyncio.sleep(self._rng.uniform(0, ceiling_s))
        finally:
            self._finished(account, queue)

    async def _admit(self, account: str, queue: _AccountQueue) -> list[PendingWrite]:
        """Take the next requests that must be proposed; answer the others now."""
        batch: list[PendingWrite] = []
        seen: set[str] = set()
        deferred: list[PendingWrite] = []
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
            if self._answers.known(request):
                continue
            if operation.kind is Kind.OPEN:
                batch.append(request)
                break
            seen.add(operation.request_id)
            batch.append(request)
        queue.waiting.extendleft(reversed(deferred))
        return batch

    async def _confirm_open(self, request: PendingWrite) -> bool:
        """An account unknown here: ask a majority before calling it NOT_FOUND."""
        try:
            await self._consensus.read_barrier(request.account,
                                               request.deadline - time.monotonic())
        except NoQuorum as error:
            request.fail(errors.Unavailable(str(error)))
            return False
        except AccountQuarantined as error:
            request.fail(quarantined(request.account, str(error)))
            return False
        if self._machine.account(request.account).state.opened:
            return True
        request.fail(errors.AccountNotFound(
            f"account {request.account!r} does not exist; open it first"))
        return False
