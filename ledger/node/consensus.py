"""What the node offers the layer above, and what it asks of it.

The bank depends on `Consensus` (a Protocol the driver implements), not on the driver
class or the Paxos core, so it can be read, tested and changed on its own. In return
the layer above supplies a `StateMachine` that chosen entries are applied to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.paxos import Committed, Outcome
from ledger.storage.base import AppWrite

__all__ = ["AccountQuarantined", "Committed", "Consensus", "NoQuorum", "Outcome",
           "StateMachine", "StorageUnavailable"]


class NoQuorum(Exception):
    """No majority answered before the deadline; the value may or may not be chosen."""


class StorageUnavailable(Exception):
    """The node cannot make writes durable (disk or map full); the message says why."""


class AccountQuarantined(Exception):
    """This node stopped acting on the account (an alarm said why); other nodes may not."""


class Consensus(Protocol):
    """One replicated log per account: propose at its next slot, read linearizably."""

    async def propose(
        self, account: str, value: bytes, timeout_s: float, expected_slot: int | None = None
    ) -> Outcome | None:
        """Propose `value` at the account's next undecided slot; wait for what is chosen there.

        With `expected_slot`, propose only if that is the next undecided slot when the
        proposal's turn comes, else return None at once. Raises NoQuorum when nothing
        was decided in time (the value may still be chosen later) and
        StorageUnavailable when this node cannot persist its votes.
        """
        ...

    async def read_barrier(self, account: str, timeout_s: float) -> int:
        """Wait until every write decided before the call is applied here; the slot
        through which the account is then applied. Raises NoQuorum on timeout."""
        ...

    def leader_hint(self, account: str) -> int | None:
        """Another node (its index) that leads `account` now; None for nobody or us."""
        ...

    def quarantine_reason(self, account: str) -> str | None:
        """Why this node stopped acting on `account` (None: it did not)."""
        ...

    def pause_applying(self) -> None:
        """Apply no chosen entry until `resume_applying`: the state machine stands still
        (for a reader that must see it at one instant across several turns). What is
        chosen meanwhile waits, in order, and so do outcomes and reads that need it."""
        ...

    def resume_applying(self) -> None:
        """Undo one `pause_applying`; the last one applies what waited."""
        ...


class StateMachine(Protocol):
    """What chosen entries are applied to, in log order per account."""

    def applied_slot(self, account: str) -> int:
        """The last slot applied to the account (-1: none)."""
        ...

    def apply(self, entries: Sequence[Committed]) -> list[AppWrite]:
        """Apply chosen entries, each account's in log order; return the writes recording them.

        An entry may be held back (with its account's later ones) until another account
        is applied through a slot (`waiting_on`): `applied_slot` says how far it got."""
        ...

    def flush(self) -> list[AppWrite]:
        """Writes applying has deferred (staged right after a batch of applies)."""
        ...

    def waiting_on(self) -> dict[str, int]:
        """Accounts this machine must see applied through a slot before it can apply the
        entries it holds back; the node catches up on them."""
        ...
