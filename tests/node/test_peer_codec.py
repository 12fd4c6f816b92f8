"""Every Paxos message survives the trip through protobuf unchanged, and a message that
breaks a bound is refused at decoding, naming the field."""

from __future__ import annotations

import re

import pytest

from ledger.node import peer_codec
from ledger.node.peer_limits import MAX_ROUND, MAX_SLOT, MAX_VALUE_BYTES, PeerLimits
from ledger.paxos import messages as m
from ledger.paxos.ballot import Ballot
from ledger.v1 import replica_pb2 as pb

LIMITS = PeerLimits(cluster_size=3)

B = Ballot(7, 2)
VOTE = m.AcceptedEntry(3, Ballot(5, 1), b"\x00value")
EXAMPLES = [
    m.Prepare("acct", 3, B),
    m.Promise("acct", 3, B, (VOTE,), (b"c0", b""), 4),
    m.Promise("acct", 0, B, (), (), -1),
    m.Accept("acct", 9, B, b"v"),
    m.Accepted("acct", 9, B, 7),
    m.Nack("acct", 9, B, Ballot(8, 1), -1),
    m.Learn("acct", 0, b"x"),
    m.CatchUpRequest("acct", 5, 256),
    m.CatchUpReply("acct", 5, (b"a", b"b"), 6),
    m.TailQuery("acct", 12),
    m.TailReport("acct", 12, -1, 4),
    m.TailsRequest("", 256),
    m.TailsReply("a", (m.AccountTail("b", 3), m.AccountTail("c", -1)), True),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip(message: m.Message) -> None:
    assert peer_codec.from_pb(peer_codec.to_pb(message), LIMITS) == message


def test_every_message_type_has_an_example() -> None:
    assert {type(e) for e in EXAMPLES} == set(m.Message.__args__)  # type: ignore[attr-defined]


def test_an_empty_message_is_malformed() -> None:
    with pytest.raises(peer_codec.MalformedMessage, match="empty"):
        peer_codec.from_pb(pb.PeerMessage(), LIMITS)


def ballot(round_: int = 5, node_index: int = 1) -> pb.Ballot:
    return pb.Ballot(round=round_, node_index=node_index)


BAD = {
    "a ballot naming node 99": (
        pb.PeerMessage(accept=pb.Accept(account="a", slot=1, ballot=ballot(5, 99), value=b"v")),
        "node index 99 is not a member"),
    "a round of 2^64-1": (
        pb.PeerMessage(prepare=pb.Prepare(account="a", from_slot=0, ballot=ballot(2**64 - 1))),
        f"round {2**64 - 1} is outside 1..{MAX_ROUND}"),
    "the null ballot": (
        pb.PeerMessage(prepare=pb.Prepare(account="a", ballot=ballot(0, -1))), "round 0"),
    "a NUL in the account": (
        pb.PeerMessage(learn=pb.Learn(account="a\x00b", slot=0, value=b"v")), "not an account id"),
    "an account past 64 characters": (
        pb.PeerMessage(learn=pb.Learn(account="a" * 600, slot=0, value=b"v")), "not an account id"),
    "no account": (pb.PeerMessage(tail_query=pb.TailQuery(account="", nonce=1)), "account"),
    "a slot past the bound": (
        pb.PeerMessage(accepted=pb.Accepted(account="a", slot=MAX_SLOT + 1, ballot=ballot())),
        "slot"),
    "a voter's chosen prefix below none": (
        pb.PeerMessage(accepted=pb.Accepted(account="a", slot=1, ballot=ballot(),
                                            chosen_through=-2)), "chosen_through: -2"),
    "an oversized value": (
        pb.PeerMessage(learn=pb.Learn(account="a", slot=0, value=bytes(MAX_VALUE_BYTES + 1))),
        "exceeds"),
    "too many catch-up values": (
        pb.PeerMessage(catch_up_reply=pb.CatchUpReply(account="a", values=[b"v"] * 1_001)),
        "1001 items exceed 1000"),
    "too many votes": (
        pb.PeerMessage(promise=pb.Promise(account="a", ballot=ballot(), accepted=[
            pb.Vote(slot=1, ballot=ballot(), value=b"v")] * 4_097)), "4097 items exceed"),
    "a bad vote": (
        pb.PeerMessage(promise=pb.Promise(account="a", ballot=ballot(), accepted=[
            pb.Vote(slot=1, ballot=ballot(3, 7), value=b"v")])), "vote ballot"),
    "a prefix end below -1": (
        pb.PeerMessage(nack=pb.Nack(account="a", slot=1, ballot=ballot(), promised=ballot(6),
                                    chosen_through=-2)), "chosen_through"),
    "a bad account in a tails reply": (
        pb.PeerMessage(tails_reply=pb.TailsReply(tails=[pb.AccountTail(account="no/slash")])),
        "tail account"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_message_that_breaks_a_bound_is_refused_naming_the_field(name: str) -> None:
    message, reason = BAD[name]
    with pytest.raises(peer_codec.MalformedMessage, match=re.escape(reason)):
        peer_codec.from_pb(message, LIMITS)


def test_requested_limits_are_capped_not_refused() -> None:
    request = pb.PeerMessage(catch_up_request=pb.CatchUpRequest(account="a", limit=2**32 - 1))
    decoded = peer_codec.from_pb(request, LIMITS)
    assert isinstance(decoded, m.CatchUpRequest) and decoded.limit <= 1_000_000
