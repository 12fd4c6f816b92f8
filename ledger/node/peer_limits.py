"""What a peer message may hold: every field's bound, checked as the message is decoded.

Nothing that arrives from a peer is trusted field by field: a node index outside the
membership, a round or slot past its bound, an account id the bank would refuse, an
oversized value or list would otherwise reach the core, the store's key builder or
a per-node table, and one bad message could stop every node it was sent to. A
message that fails a check raises MalformedMessage naming the field; the caller
drops that message alone (and counts it).

The bounds are generous for honest members: no cluster reaches 2^48 slots in an
account or 2^62 ballot rounds, and the byte bounds sit above anything this
program sends (a log entry holds at most 512 operations of a few hundred bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.accounts.validation import ACCOUNT_ID
from ledger.paxos.ballot import Ballot

MAX_ROUND = 1 << 62  # ballot rounds; a node's own rounds stay below it
MAX_SLOT = 1 << 48  # slots of one account's log
MAX_VALUE_BYTES = 1 << 20  # one proposed or chosen value
MAX_VALUES_PER_MESSAGE = 1_000  # chosen values in one CatchUpReply or Promise
MAX_VOTES_PER_PROMISE = 4_096  # votes reported in one Promise
MAX_TAILS_PER_REPLY = 1_000  # accounts in one TailsReply
MAX_REQUESTED = 1_000_000  # a CatchUpRequest's or TailsRequest's limit (the core caps it)


class MalformedMessage(ValueError):
    """A peer sent a message that breaks a bound; it is dropped, the rest carry on."""


@dataclass(frozen=True, slots=True)
class PeerLimits:
    """The bounds a decoded peer message must meet, for a cluster of `cluster_size`."""

    cluster_size: int

    def node_index(self, index: int, what: str) -> int:
        if not 0 <= index < self.cluster_size:
            raise MalformedMessage(
                f"{what}: node index {index} is not a member (0..{self.cluster_size - 1})")
        return index

    def ballot(self, round_: int, node_index: int, what: str) -> Ballot:
        """A real ballot (never the null one) of a member, below MAX_ROUND."""
        if not 1 <= round_ <= MAX_ROUND:
            raise MalformedMessage(f"{what}: round {round_} is outside 1..{MAX_ROUND}")
        return Ballot(round_, self.node_index(node_index, what))

    @staticmethod
    def slot(value: int, what: str) -> int:
        if not 0 <= value <= MAX_SLOT:
            raise MalformedMessage(f"{what}: slot {value} is outside 0..{MAX_SLOT}")
        return value

    @staticmethod
    def tail(value: int, what: str) -> int:
        """The end of a prefix or the highest vote: a slot, or -1 for none."""
        if not -1 <= value <= MAX_SLOT:
            raise MalformedMessage(f"{what}: {value} is outside -1..{MAX_SLOT}")
        return value

    @staticmethod
    def account(account: str, what: str, empty_ok: bool = False) -> str:
        """An account id by the bank's rules (the empty string only where a cursor may be)."""
        if (empty_ok and not account) or ACCOUNT_ID.fullmatch(account):
            return account
        shown = repr(account[:80]) + ("..." if len(account) > 80 else "")
        raise MalformedMessage(f"{what}: {shown} is not an account id")

    @staticmethod
    def value(data: bytes, what: str) -> bytes:
        if len(data) > MAX_VALUE_BYTES:
            raise MalformedMessage(
                f"{what}: a value of {len(data)} bytes exceeds {MAX_VALUE_BYTES}")
        return data

    @staticmethod
    def count(count: int, limit: int, what: str) -> None:
        if count > limit:
            raise MalformedMessage(f"{what}: {count} items exceed {limit}")
