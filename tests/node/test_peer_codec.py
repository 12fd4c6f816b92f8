"""Every Paxos message survives the trip through protobuf unchanged."""

from __future__ import annotations

import pytest

from ledger.node import peer_codec
from ledger.paxos import messages as m
from ledger.paxos.ballot import NULL_BALLOT, Ballot

B = Ballot(7, 2)
VOTE = m.AcceptedEntry(3, Ballot(5, 1), b"\x00value")
EXAMPLES = [
    m.Prepare("acct", 3, B),
    m.Promise("acct", 3, B, (VOTE,), (b"c0", b""), 4),
    m.Promise("acct", 0, B, (), (), -1),
    m.Accept("acct", 9, B, b"v"),
    m.Accepted("acct", 9, B),
    m.Nack("acct", 9, B, NULL_BALLOT, -1),
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
    assert peer_codec.from_pb(peer_codec.to_pb(message)) == message


def test_every_message_type_has_an_example() -> None:
    assert {type(e) for e in EXAMPLES} == set(m.Message.__args__)  # type: ignore[attr-defined]


def test_an_empty_message_is_malformed() -> None:
    from ledger.v1 import replica_pb2 as pb

    with pytest.raises(peer_codec.MalformedMessage):
        peer_codec.from_pb(pb.PeerMessage())
