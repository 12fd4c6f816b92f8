"""Getting a raw value into an account's log: propose, and after a lost position, again."""

from __future__ import annotations

import time

from ledger.node.driver import NodeDriver, NoQuorum


async def propose_until_chosen(
    driver: NodeDriver, account: str, value: bytes, timeout_s: float
) -> int:
    """Propose `value` at the next free position until it is chosen; return that position.

    Each lost position was learned (another value was chosen there), so the next
    attempt is at a later position. Raises NoQuorum when `timeout_s` runs out.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise NoQuorum(f"no position for account {account!r} was won in {timeout_s:.1f}s")
        outcome = await driver.propose(account, value, remaining_s)
        if outcome.won:
            return outcome.position
