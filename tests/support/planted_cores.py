"""Broken variants of the core, planted to prove the simulator's checker can fail."""

from __future__ import annotations

from ledger.paxos.ballot import NULL_BALLOT
from ledger.paxos.liveness import Liveness
from ledger.paxos.messages import Envelope
from ledger.paxos.node import PaxosNode
from ledger.paxos.proposer import Phase, Proposer
from ledger.paxos.ready import BarrierDone, Ready
from ledger.paxos.records import PromiseWrite, RoundWrite, Write
from ledger.paxos.rejoin import Rejoin
from ledger.sim.cluster import SimNode, Simulation
from ledger.storage.memory import MemoryStore, MemoryTables


class MinorityQuorumNode(PaxosNode):
    """Counts N/2 (rounded down) as a majority."""

    @property
    def quorum(self) -> int:
        return self.config.cluster_size // 2


class IgnoresVotesProposer(Proposer):
    """Always proposes its own value, ignoring votes reported in promises."""

    def choose_value(self) -> bytes | None:
        return self.value if self.value is not None else super().choose_value()


class IgnoresVotesNode(PaxosNode):
    proposer_class = IgnoresVotesProposer


class ReusesRoundsNode(PaxosNode):
    """Forgets, at restart, which rounds it already used."""

    def _restored_round(self) -> int:
        return 0


class LowersRoundsStore(MemoryStore):
    """Lets the reserved round go down (the real stores refuse), so ReusesRoundsNode runs."""

    def stage(self, writes):  # type: ignore[no-untyped-def]
        writes = list(writes)
        for tables in (self._visible, self._synced):
            if any(isinstance(w, RoundWrite) for w in writes):
                tables.round_reserved = 0
        super().stage(writes)


def _forget_promises(tables: MemoryTables) -> None:
    for account in list(tables.promised):
        votes = tables.votes.get(account, {}).values()
        highest_vote = max((vote.ballot for vote in votes), default=NULL_BALLOT)
        tables.promised[account] = highest_vote


class ForgetsPromisesStore(MemoryStore):
    """An acceptor with amnesia: a restart loses its promises (its votes survive)."""

    def crash(self) -> None:
        _forget_promises(self.synced)
        super().crash()


class UnsyncedPromisesNode(PaxosNode):
    """Sends promises without asking for them to be made durable first."""

    def handle(self, envelope, now_ms):  # type: ignore[no-untyped-def]
        ready = super().handle(envelope, now_ms)
        writes = tuple(w for w in ready.writes if not isinstance(w, PromiseWrite))
        return Ready(writes, ready.messages, ready.committed, ready.outcomes)


class NeverCatchesUp(Liveness):
    """Never asks peers for missed values and never settles undecided slots."""

    def request_catch_up(self, account, state, now_ms, out):  # type: ignore[no-untyped-def]
        state.catch_up_at_ms = None

    def settle(self, account, state, now_ms, out):  # type: ignore[no-untyped-def]
        return


class NeverCatchesUpNode(PaxosNode):
    """A node that is left behind for good once it misses anything."""

    liveness_class = NeverCatchesUp


class LocalReadsNode(PaxosNode):
    """Passes a read barrier at once, on its own state: a LOCAL read posing as STRONG."""

    def read_barrier(self, account, now_ms):  # type: ignore[no-untyped-def]
        nonce, _ = super().read_barrier(account, now_ms)
        self.cancel_barrier(account, nonce)
        done = BarrierDone(account, nonce, self.chosen_through(account))
        return nonce, Ready(barriers=(done,))



class FastPathWithoutPromiseNode(PaxosNode):
    """Takes the fast path on every proposal: Phase 2 under a fresh ballot, no Prepare."""

    def propose(self, account, value, now_ms):  # type: ignore[no-untyped-def]
        ready = super().propose(account, value, now_ms)
        state = self._accounts[account]
        proposer = state.proposer
        if proposer is None or proposer.phase is not Phase.PREPARE:
            return ready
        accept = proposer.begin_accept(proposer.ballot, value, now_ms, self.config.resend_ms)
        messages = tuple(Envelope(e.source, e.destination, accept) for e in ready.messages)
        return Ready(ready.writes, messages, ready.committed, ready.outcomes, ready.barriers)


# ------------------------------------------------------------ broken recoveries


class VotesAtOnceSimulation(Simulation):
    """A rejoining node that writes no floor and no fences: it votes at once, as a node
    on a wiped disk would if `ledger recover` were skipped."""

    def recovery_writes(self, rejoin: Rejoin, kept_through: dict[str, int]) -> list[Write]:
        return []


class AdoptsBackupSimulation(Simulation):
    """A node whose disk was rolled back serves its old promises and votes as they are
    (a restored backup started without `ledger recover`)."""

    def _finish_rejoin(self, node: SimNode) -> None:
        assert node.kept is not None
        node.store.restore(node.kept)
        node.rejoin = None
        node.kept = None
        self._start(node)
        if node.client is not None:
            self._at(self.now_ms + 1, "client", node.index)
