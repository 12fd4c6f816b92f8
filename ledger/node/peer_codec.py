"""Paxos messages <-> protobuf: the only module that knows both.

Decoding checks every field against `PeerLimits` (see `peer_limits`): a message
from a peer is not trusted field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ledger.node.peer_limits import (
    MAX_REQUESTED,
    MAX_TAILS_PER_REPLY,
    MAX_VALUES_PER_MESSAGE,
    MAX_VOTES_PER_PROMISE,
    MalformedMessage,
    PeerLimits,
)
from ledger.paxos import messages as m
from ledger.paxos.ballot import Ballot
from ledger.storage.base import INCARNATION_ID_BYTES, Incarnation
from ledger.v1 import replica_pb2 as pb

__all__ = ["MalformedMessage", "PeerLimits", "from_pb", "to_pb"]


def _ballot_pb(ballot: Ballot) -> pb.Ballot:
    return pb.Ballot(round=ballot.round, node_index=ballot.node_index)


def _votes_pb(votes: Iterable[m.AcceptedEntry]) -> list[pb.Vote]:
    return [pb.Vote(slot=v.slot, ballot=_ballot_pb(v.ballot), value=v.value)
            for v in votes]


def to_pb(message: m.Message) -> pb.PeerMessage:
    """Encode one Paxos message."""
    if isinstance(message, m.Accept):
        return pb.PeerMessage(accept=pb.Accept(
            account=message.account, slot=message.slot,
            ballot=_ballot_pb(message.ballot), value=message.value))
    if isinstance(message, m.Accepted):
        return pb.PeerMessage(accepted=pb.Accepted(
            account=message.account, slot=message.slot,
            ballot=_ballot_pb(message.ballot), chosen_through=message.chosen_through))
    if isinstance(message, m.Learn):
        return pb.PeerMessage(learn=pb.Learn(
            account=message.account, slot=message.slot, value=message.value))
    if isinstance(message, m.Prepare):
        return pb.PeerMessage(prepare=pb.Prepare(
            account=message.account, from_slot=message.from_slot,
            ballot=_ballot_pb(message.ballot)))
    if isinstance(message, m.Promise):
        return pb.PeerMessage(promise=pb.Promise(
            account=message.account, from_slot=message.from_slot,
            ballot=_ballot_pb(message.ballot), accepted=_votes_pb(message.accepted),
            chosen=list(message.chosen), chosen_through=message.chosen_through))
    if isinstance(message, m.Nack):
        return pb.PeerMessage(nack=pb.Nack(
            account=message.account, slot=message.slot,
            ballot=_ballot_pb(message.ballot), promised=_ballot_pb(message.promised),
            chosen_through=message.chosen_through))
    if isinstance(message, m.CatchUpRequest):
        return pb.PeerMessage(catch_up_request=pb.CatchUpRequest(
            account=message.account, from_slot=message.from_slot,
            limit=message.limit))
    if isinstance(message, m.CatchUpReply):
        return pb.PeerMessage(catch_up_reply=pb.CatchUpReply(
            account=message.account, from_slot=message.from_slot,
            values=list(message.values), chosen_through=message.chosen_through))
    if isinstance(message, m.TailQuery):
        return pb.PeerMessage(tail_query=pb.TailQuery(account=message.account,
                                                      nonce=message.nonce))
    if isinstance(message, m.TailReport):
        return pb.PeerMessage(tail_report=pb.TailReport(
            account=message.account, nonce=message.nonce,
            chosen_through=message.chosen_through, highest_vote=message.highest_vote))
    if isinstance(message, m.TailsRequest):
        return pb.PeerMessage(tails_request=pb.TailsRequest(
            after=message.after, limit=message.limit))
    assert isinstance(message, m.TailsReply)
    return pb.PeerMessage(tails_reply=pb.TailsReply(
        after=message.after, complete=message.complete,
        tails=[pb.AccountTail(account=t.account, chosen_through=t.chosen_through)
               for t in message.tails]))


def value_bytes(message: m.Message) -> int:
    """About how many bytes of values `message` carries (for sizing requests)."""
    if isinstance(message, (m.Accept, m.Learn)):
        return len(message.value)
    if isinstance(message, m.CatchUpReply):
        return sum(len(value) for value in message.values)
    if isinstance(message, m.Promise):
        return (sum(len(value) for value in message.chosen)
                + sum(len(vote.value) for vote in message.accepted))
    return 0


def from_pb(message: pb.PeerMessage, limits: PeerLimits) -> m.Message:
    """Decode one Paxos message, checking every field against `limits`.

    Raises MalformedMessage naming the field for an empty message or one that
    breaks a bound; nothing of it reaches the core.
    """
    kind = message.WhichOneof("body")
    decoder = _DECODERS.get(kind or "")
    if decoder is None:
        raise MalformedMessage("an empty peer message (no body)")
    try:
        return decoder(getattr(message, kind), limits)  # type: ignore[arg-type]
    except MalformedMessage as error:
        raise MalformedMessage(f"a {kind} message: {error}") from None


def _vote(v: pb.Vote, limits: PeerLimits) -> m.AcceptedEntry:
    return m.AcceptedEntry(limits.slot(v.slot, "vote slot"),
                           limits.ballot(v.ballot.round, v.ballot.node_index, "vote ballot"),
                           limits.value(v.value, "vote value"))


def _prepare(x: pb.Prepare, limits: PeerLimits) -> m.Prepare:
    return m.Prepare(limits.account(x.account, "account"), limits.slot(x.from_slot, "from_slot"),
                     limits.ballot(x.ballot.round, x.ballot.node_index, "ballot"))


def _promise(x: pb.Promise, limits: PeerLimits) -> m.Promise:
    limits.count(len(x.accepted), MAX_VOTES_PER_PROMISE, "votes")
    limits.count(len(x.chosen), MAX_VALUES_PER_MESSAGE, "chosen values")
    from_slot = limits.slot(x.from_slot, "from_slot")
    limits.slot(from_slot + len(x.chosen), "the last chosen value's slot")
    return m.Promise(limits.account(x.account, "account"), from_slot,
                     limits.ballot(x.ballot.round, x.ballot.node_index, "ballot"),
                     tuple(_vote(v, limits) for v in x.accepted),
                     tuple(limits.value(value, "chosen value") for value in x.chosen),
                     limits.tail(x.chosen_through, "chosen_through"))


def _accept(x: pb.Accept, limits: PeerLimits) -> m.Accept:
    return m.Accept(limits.account(x.account, "account"), limits.slot(x.slot, "slot"),
                    limits.ballot(x.ballot.round, x.ballot.node_index, "ballot"),
                    limits.value(x.value, "value"))


def _accepted(x: pb.Accepted, limits: PeerLimits) -> m.Accepted:
    return m.Accepted(limits.account(x.account, "account"), limits.slot(x.slot, "slot"),
                      limits.ballot(x.ballot.round, x.ballot.node_index, "ballot"),
                      limits.tail(x.chosen_through, "chosen_through"))


def _nack(x: pb.Nack, limits: PeerLimits) -> m.Nack:
    return m.Nack(limits.account(x.account, "account"), limits.slot(x.slot, "slot"),
                  limits.ballot(x.ballot.round, x.ballot.node_index, "ballot"),
                  limits.ballot(x.promised.round, x.promised.node_index, "promised"),
                  limits.tail(x.chosen_through, "chosen_through"))


def _learn(x: pb.Learn, limits: PeerLimits) -> m.Learn:
    return m.Learn(limits.account(x.account, "account"), limits.slot(x.slot, "slot"),
                   limits.value(x.value, "value"))


def _catch_up_request(x: pb.CatchUpRequest, limits: PeerLimits) -> m.CatchUpRequest:
    return m.CatchUpRequest(limits.account(x.account, "account"),
                            limits.slot(x.from_slot, "from_slot"), min(x.limit, MAX_REQUESTED))


def _catch_up_reply(x: pb.CatchUpReply, limits: PeerLimits) -> m.CatchUpReply:
    limits.count(len(x.values), MAX_VALUES_PER_MESSAGE, "values")
    from_slot = limits.slot(x.from_slot, "from_slot")
    limits.slot(from_slot + len(x.values), "the last value's slot")
    return m.CatchUpReply(limits.account(x.account, "account"), from_slot,
                          tuple(limits.value(value, "value") for value in x.values),
                          limits.tail(x.chosen_through, "chosen_through"))


def _tail_query(x: pb.TailQuery, limits: PeerLimits) -> m.TailQuery:
    return m.TailQuery(limits.account(x.account, "account"), x.nonce)


def _tail_report(x: pb.TailReport, limits: PeerLimits) -> m.TailReport:
    return m.TailReport(limits.account(x.account, "account"), x.nonce,
                        limits.tail(x.chosen_through, "chosen_through"),
                        limits.tail(x.highest_vote, "highest_vote"))


def _tails_request(x: pb.TailsRequest, limits: PeerLimits) -> m.TailsRequest:
    return m.TailsRequest(limits.account(x.after, "after", empty_ok=True),
                          min(x.limit, MAX_REQUESTED))


def _tails_reply(x: pb.TailsReply, limits: PeerLimits) -> m.TailsReply:
    limits.count(len(x.tails), MAX_TAILS_PER_REPLY, "tails")
    tails = tuple(m.AccountTail(limits.account(t.account, "tail account"),
                                limits.tail(t.chosen_through, "tail chosen_through"))
                  for t in x.tails)
    return m.TailsReply(limits.account(x.after, "after", empty_ok=True), tails, x.complete)


_DECODERS: dict[str, Callable[[Any, PeerLimits], m.Message]] = {
    "prepare": _prepare,
    "promise": _promise,
    "accept": _accept,
    "accepted": _accepted,
    "nack": _nack,
    "learn": _learn,
    "catch_up_request": _catch_up_request,
    "catch_up_reply": _catch_up_reply,
    "tail_query": _tail_query,
    "tail_report": _tail_report,
    "tails_request": _tails_request,
    "tails_reply": _tails_reply,
}


# ---------------------------------------------------------------- incarnations

#: Generations a data directory can reach: one per `ledger recover`; more is a forgery.
MAX_GENERATION = 1 << 32


def incarnation_pb(incarnation: Incarnation) -> pb.Incarnation:
    return pb.Incarnation(generation=incarnation.generation, id=incarnation.id)


def incarnation_from_pb(holder: Any, field: str) -> Incarnation | None:
    """The incarnation in `holder.field`; None when absent or malformed (refused by the caller)."""
    if not holder.HasField(field):
        return None
    raw = getattr(holder, field)
    if len(raw.id) != INCARNATION_ID_BYTES or raw.generation > MAX_GENERATION:
        return None
    return Incarnation(raw.generation, raw.id)
