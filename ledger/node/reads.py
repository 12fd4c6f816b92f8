"""Callers waiting for read barriers: reads of one account in one turn share a round."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ledger.node.consensus import AccountQuarantined
from ledger.paxos import PaxosNode, Quarantined, Ready
from ledger.paxos.ready import BarrierDone


@dataclass(slots=True, eq=False)
class Read:
    """A caller waiting until `account` is applied through every write decided before it."""

    account: str
    future: asyncio.Future[int]


class ReadBarriers:
    """The barrier rounds in flight and the readers each one will answer."""

    def __init__(self) -> None:
        self._rounds: dict[tuple[str, int], list[Read]] = {}

    def start(self, reads: list[Read], core: PaxosNode, now_ms: int,
              take: Callable[[Ready], None]) -> None:
        """One barrier round per account for all reads that arrived since the last turn;
        rounds whose readers all gave up are dropped from the core."""
        by_account: dict[str, list[Read]] = defaultdict(list)
        for read in reads:
            by_account[read.account].append(read)
        for account, waiting in by_account.items():
            try:
                nonce, ready = core.read_barrier(account, now_ms)
            except Quarantined as quarantined:
                for read in waiting:
                    if not read.future.done():
                        read.future.set_exception(AccountQuarantined(str(quarantined)))
                continue
            self._rounds[(account, nonce)] = waiting
            take(ready)
        for key, waiting in list(self._rounds.items()):
            if all(read.future.done() for read in waiting):
                del self._rounds[key]
                core.cancel_barrier(*key)

    def fail_account(self, account: str, error: Exception) -> None:
        """Every read waiting on `account` fails with `error`."""
        for key in [key for key in self._rounds if key[0] == account]:
            for read in self._rounds.pop(key):
                if not read.future.done():
                    read.future.set_exception(error)

    def passed(self, done: BarrierDone) -> None:
        """A round passed: its readers may read what is applied through `done.slot`."""
        for read in self._rounds.pop((done.account, done.nonce), []):
            if not read.future.done():
                read.future.set_result(done.slot)
