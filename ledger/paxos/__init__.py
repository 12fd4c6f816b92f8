"""The Paxos core: pure state machines, no I/O, no clock, no global randomness.

`PaxosNode` is the entry point: feed it proposals, messages and ticks; carry out
the `Ready` it returns (persist, then send, then apply).
"""

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.config import PaxosConfig
from ledger.paxos.messages import (
    Accept,
    Accepted,
    AcceptedEntry,
    AccountTail,
    CatchUpReply,
    CatchUpRequest,
    Envelope,
    Learn,
    Message,
    Nack,
    Prepare,
    Promise,
    TailsReply,
    TailsRequest,
)
from ledger.paxos.node import PaxosNode, ProposalInProgress
from ledger.paxos.ready import Committed, Outcome, Ready
from ledger.paxos.records import (
    AcceptWrite,
    AccountRecord,
    ChosenWrite,
    DurableView,
    PromiseWrite,
    RoundWrite,
    Write,
)

__all__ = [
    "NULL_BALLOT",
    "Accept",
    "AcceptWrite",
    "Accepted",
    "AcceptedEntry",
    "AccountRecord",
    "AccountTail",
    "Ballot",
    "CatchUpReply",
    "CatchUpRequest",
    "ChosenWrite",
    "Committed",
    "DurableView",
    "Envelope",
    "Learn",
    "Message",
    "Nack",
    "Outcome",
    "PaxosConfig",
    "PaxosNode",
    "Prepare",
    "Promise",
    "PromiseWrite",
    "ProposalInProgress",
    "Ready",
    "RoundWrite",
    "TailsReply",
    "TailsRequest",
    "Write",
]
