"""The Paxos core: pure state machines, no I/O, no clock, no global randomness.

`PaxosNode` is the entry point: feed it proposals, messages and ticks; carry out
the `Ready` it returns (persist, then send, then apply).

Where things are:
  node        PaxosNode: the public API, the account table, routing each message
  account     what a node holds in memory per account (AccountState, Leadership)
  phases      Paxos phases 1 and 2 on an account: Prepare/Accept in, Promise/Accepted/Nack back
  acceptor    the acceptor's rules (promise, vote) over its per-account state
  proposer    the proposer of one slot (Proposer): counts promises and votes
  learner     extends the chosen prefix; the agreement checks
  barriers    read barriers (linearizable reads)
  catchup     catch-up of missed values, and anti-entropy over all accounts
  liveness    timers, resends, retries, settling slots nobody decides (with recovery)
  recovery    when a node settles an undecided slot itself
  timers      the heap of per-account deadlines
  rounds      the node's ballots, reserved durably before use
  ballot, messages, records, ready, config, backoff, errors: the vocabulary and plumbing
"""

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.config import PaxosConfig
from ledger.paxos.errors import (
    InvariantViolation,
    ProposalInProgress,
    Quarantined,
    RoundsExhausted,
)
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
from ledger.paxos.node import PaxosNode
from ledger.paxos.ready import Alarm, Committed, Outcome, Ready
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
    "Alarm",
    "Ballot",
    "CatchUpReply",
    "CatchUpRequest",
    "ChosenWrite",
    "Committed",
    "DurableView",
    "Envelope",
    "InvariantViolation",
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
    "Quarantined",
    "Ready",
    "RoundWrite",
    "RoundsExhausted",
    "TailsReply",
    "TailsRequest",
    "Write",
]
