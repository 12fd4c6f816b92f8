"""Paxos messages <-> protobuf: the only module that knows both."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.paxos import messages as m
from ledger.paxos.ballot import Ballot
from ledger.v1 import replica_pb2 as pb


def _ballot_pb(ballot: Ballot) -> pb.Ballot:
    return pb.Ballot(round=ballot.round, node_index=ballot.node_index)


def _ballot(message: pb.Ballot) -> Ballot:
    return Ballot(message.round, message.node_index)


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
            ballot=_ballot_pb(message.ballot)))
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


class MalformedMessage(ValueError):
    """A peer sent a message this node cannot decode."""


def from_pb(message: pb.PeerMessage) -> m.Message:
    """Decode one Paxos message; raises MalformedMessage for an empty or bad one."""
    kind = message.WhichOneof("body")
    try:
        return _DECODERS[kind](getattr(message, kind))
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessage(f"cannot decode a {kind!r} peer message: {error}") from error


def _prepare(x: pb.Prepare) -> m.Prepare:
    return m.Prepare(x.account, x.from_slot, _ballot(x.ballot))


def _promise(x: pb.Promise) -> m.Promise:
    votes = tuple(m.AcceptedEntry(v.slot, _ballot(v.ballot), v.value) for v in x.accepted)
    return m.Promise(x.account, x.from_slot, _ballot(x.ballot), votes, tuple(x.chosen),
                     x.chosen_through)


def _accept(x: pb.Accept) -> m.Accept:
    return m.Accept(x.account, x.slot, _ballot(x.ballot), x.value)


def _accepted(x: pb.Accepted) -> m.Accepted:
    return m.Accepted(x.account, x.slot, _ballot(x.ballot))


def _nack(x: pb.Nack) -> m.Nack:
    return m.Nack(x.account, x.slot, _ballot(x.ballot), _ballot(x.promised), x.chosen_through)


def _learn(x: pb.Learn) -> m.Learn:
    return m.Learn(x.account, x.slot, x.value)


def _catch_up_request(x: pb.CatchUpRequest) -> m.CatchUpRequest:
    return m.CatchUpRequest(x.account, x.from_slot, x.limit)


def _catch_up_reply(x: pb.CatchUpReply) -> m.CatchUpReply:
    return m.CatchUpReply(x.account, x.from_slot, tuple(x.values), x.chosen_through)


def _tail_query(x: pb.TailQuery) -> m.TailQuery:
    return m.TailQuery(x.account, x.nonce)


def _tail_report(x: pb.TailReport) -> m.TailReport:
    return m.TailReport(x.account, x.nonce, x.chosen_through, x.highest_vote)


def _tails_request(x: pb.TailsRequest) -> m.TailsRequest:
    return m.TailsRequest(x.after, x.limit)


def _tails_reply(x: pb.TailsReply) -> m.TailsReply:
    tails = tuple(m.AccountTail(t.account, t.chosen_through) for t in x.tails)
    return m.TailsReply(x.after, tails, x.complete)


_DECODERS = {
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
