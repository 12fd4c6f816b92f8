"""Catch-up and anti-entropy: how a node that is behind finds and fetches what it missed.

Catch-up fetches chosen values of one account from a peer known to be ahead
(CatchUpRequest / CatchUpReply), in batches, while the node knows of chosen
slots beyond its prefix. Anti-entropy finds accounts the node does not know it
is behind on: now and then it asks a random peer for its accounts' chosen tails
(TailsRequest / TailsReply), paging through them with a cursor.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.paxos import acceptor, learner
from ledger.paxos.account import AccountState
from ledger.paxos.backoff import RandomSource, jitter_ms, random_peer
from ledger.paxos.config import PaxosConfig
from ledger.paxos.messages import (
    AccountTail,
    CatchUpReply,
    CatchUpRequest,
    Envelope,
    TailsReply,
    TailsRequest,
)
from ledger.paxos.ready import ReadyBuilder
from ledger.paxos.records import DurableView

#: Slots an account must trail a peer's by for anti-entropy to page on at once.
CATCH_UP_PAGING_GAP = 16


# ---------------------------------------------------------------- catch-up

def ask(
    account: str, state: AccountState, peer: int, now_ms: int, config: PaxosConfig,
    node_index: int, out: ReadyBuilder,
) -> None:
    """Ask `peer` for the chosen values after the account's prefix; retry if none come."""
    state.catch_up_source = None  # if this peer fails us, the retry asks another
    message = CatchUpRequest(account, state.chosen_through + 1, config.catch_up_batch)
    out.messages.append(Envelope(node_index, peer, message))
    state.catch_up_at_ms = now_ms + config.resend_ms


def answer(
    request: CatchUpRequest, chosen_through: int, store: DurableView, batch: int,
    max_bytes: int,
) -> CatchUpReply:
    """The chosen values a peer asked for (at most `batch` of them and about `max_bytes`),
    and our prefix's end."""
    values: tuple[bytes, ...] = ()
    if request.from_slot <= chosen_through:
        limit = min(request.limit, batch, chosen_through - request.from_slot + 1)
        values = acceptor.read_chosen(store, request.account, request.from_slot, limit,
                                      max_bytes)
    return CatchUpReply(request.account, request.from_slot, values, chosen_through)


def on_reply(
    state: AccountState, source: int, reply: CatchUpReply, node_index: int,
    learn_ahead_limit: int, store: DurableView, out: ReadyBuilder,
) -> bool:
    """Learn the values a peer sent. True when they made progress and more remain:
    then the node asks the same peer again straight away."""
    before = state.chosen_through
    for offset, value in enumerate(reply.values):
        learner.learn(reply.account, state, reply.from_slot + offset, value, source,
                      learn_ahead_limit, store, out)
    state.note_tail(reply.chosen_through, source, node_index)
    if state.chosen_through > before and state.known_tail > state.chosen_through:
        state.catch_up_source = source
        return True
    return False


# ------------------------------------------------------------ anti-entropy

def answer_tails(request: TailsRequest, store: DurableView, batch: int) -> TailsReply:
    """A page of our accounts' chosen tails, after the peer's cursor."""
    limit = min(request.limit, batch)
    tails = tuple(store.account_tails(request.after, limit))
    return TailsReply(request.after, tails, complete=len(tails) < limit)


class AntiEntropy:
    """When to ask a peer for its account tails next, and where the scan has got to."""

    __slots__ = ("cursor", "next_ms")

    def __init__(self, now_ms: int) -> None:
        self.cursor = ""  # the last account of the previous page ("": start over)
        # Ask a peer what we missed right away: a node that was down is probably behind.
        self.next_ms = now_ms

    def tick(
        self, now_ms: int, rng: RandomSource, config: PaxosConfig, node_index: int,
        out: ReadyBuilder,
    ) -> None:
        """When due, ask a random peer for the next page; the next ask is about a period on."""
        if now_ms < self.next_ms:
            return
        self.next_ms = now_ms + config.anti_entropy_ms // 2 + (
            jitter_ms(rng, config.anti_entropy_ms)
        )
        if config.cluster_size > 1:
            request = TailsRequest(self.cursor, config.tails_batch)
            peer = random_peer(rng, node_index, config.cluster_size)
            out.messages.append(Envelope(node_index, peer, request))

    def on_reply(
        self, reply: TailsReply, chosen_through: Callable[[str], int]
    ) -> tuple[list[AccountTail], bool]:
        """Move the cursor past a peer's page; say on which accounts the peer is ahead
        of `chosen_through` (ours), and whether far enough on any to page on at once."""
        self.cursor = "" if reply.complete or not reply.tails else reply.tails[-1].account
        ahead = []
        far_behind = False
        for tail in reply.tails:
            ours = chosen_through(tail.account)
            if tail.chosen_through > ours:
                ahead.append(tail)
                # A busy follower trails by the Learns in flight; a node that missed
                # writes (down, partitioned, new) trails by far more.
                far_behind |= tail.chosen_through - ours > CATCH_UP_PAGING_GAP
        return ahead, far_behind

    def page_on(
        self, source: int, now_ms: int, config: PaxosConfig, node_index: int, out: ReadyBuilder
    ) -> None:
        """Catching up: ask `source` for its next page now, not a tick later.

        A node that missed many accounts then finds them all in a few round trips.
        The tick waits meanwhile, so only one scan runs.
        """
        if self.cursor:
            request = TailsRequest(self.cursor, config.tails_batch)
            out.messages.append(Envelope(node_index, source, request))
            self.next_ms = now_ms + config.anti_entropy_ms
