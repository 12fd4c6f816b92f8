"""The demo's tellers: concurrent deposits and withdrawals through different nodes, some
retried with the same request id, and the tally of what they were told."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.client import LedgerClient, Refused, Unavailable, new_request_id
from ledger.security.tls import Security

OPENINGS = {"alice": 1_000_00, "bob": 500_00, "carol": 0, "dave": 250_00}
OPERATIONS_PER_TELLER = 40
UNKNOWN_OUTCOME_RETRY_S = 60.0

Say = Callable[[str], None]  # how the demo talks to the person watching


@dataclass
class Tally:
    """What the tellers were told, kept to compute the balances every replica must reach."""

    expected: dict[str, int] = field(default_factory=lambda: dict(OPENINGS))
    done: int = 0
    refused: int = 0
    duplicates: int = 0
    unknown_then_settled: int = 0
    undecided: int = 0  # outcomes still unknown when the teller gave up
    lock: threading.Lock = field(default_factory=threading.Lock)


def teller_work(index: int, servers: list[str], security: Security, tally: Tally, seed: int,
                stop: threading.Event) -> None:
    """One teller: random deposits and withdrawals, some retried, through its own node first."""
    rng = random.Random(seed)
    preferred = servers[index:] + servers[:index]
    with LedgerClient(preferred, timeout_s=5, security=security) as bank:
        for step in range(OPERATIONS_PER_TELLER):
            if stop.is_set():
                return
            account = rng.choice(sorted(OPENINGS))
            deposit = rng.random() < 0.5
            amount = rng.randrange(1_00, (200_00 if deposit else 400_00))
            request_id = new_request_id()
            retry_as_if_timed_out = step % 7 == 3
            for attempt in range(2 if retry_as_if_timed_out else 1):
                try:
                    outcome = settle(bank, account, deposit, amount, request_id, stop)
                except Unavailable:
                    with tally.lock:
                        tally.undecided += 1
                    return
                with tally.lock:
                    if attempt > 0:  # the deliberate resend of an operation already decided
                        if outcome == "duplicate":
                            tally.duplicates += 1
                        continue
                    # Applied exactly once. A first attempt can also come back "duplicate":
                    # the client failed over to another node with the same request id after
                    # the first node's attempt had in fact been chosen.
                    if outcome in ("applied", "unknown-settled", "duplicate"):
                        tally.expected[account] += amount if deposit else -amount
                        tally.done += 1
                        if outcome != "applied":
                            tally.unknown_then_settled += 1
                    elif outcome == "refused":
                        tally.refused += 1
                        tally.done += 1


def settle(bank: LedgerClient, account: str, deposit: bool, amount: int,
           request_id: str, stop: threading.Event | None = None) -> str:
    """Run one operation; an unknown outcome is retried with the same id until definite.

    Returns "applied"; "duplicate" (the ledger says this request id was applied already:
    by an earlier call, or by an attempt the client made before failing over); "refused";
    or "unknown-settled" (a first attempt's outcome was unknown; retrying showed it
    applied exactly once). Raises Unavailable if it stays unknown, or if `stop` is set
    while it is.
    """
    deadline = time.monotonic() + UNKNOWN_OUTCOME_RETRY_S
    retried = False
    while True:
        try:
            method = bank.deposit if deposit else bank.withdraw
            result = method(account, amount, request_id=request_id)
        except Refused:
            return "refused"
        except Unavailable:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise
            retried = True
            continue
        if result.duplicate and not retried:
            return "duplicate"
        return "unknown-settled" if retried else "applied"
