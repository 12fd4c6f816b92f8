"""Tunables of the Paxos core, all in virtual milliseconds or counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PaxosConfig:
    """Cluster size, timers and limits. Every queue and batch has a bound."""

    cluster_size: int
    # Resend an unanswered Prepare/Accept after this long. Peer streams are reliable
    # while they stay up, so resends only repair losses; shorter made a loaded leader
    # (whose answers wait behind big batches) resend work already in flight.
    resend_ms: int = 1_000
    backoff_base_ms: int = 10  # first backoff ceiling after a Nack; doubles per attempt
    backoff_cap_ms: int = 1_000  # the ceiling never exceeds this
    recovery_idle_ms: int = 2_000  # settle an undecided slot once the account idles this long
    recovery_patience_ms: int = 10_000  # ... or this long if its proposer is still heard from
    anti_entropy_ms: int = 1_000  # ask a peer for its account tails this often
    catch_up_batch: int = 1_000  # chosen values per catch-up reply
    catch_up_bytes: int = 4 << 20  # ... and about this many bytes of them (at least one)
    promise_chosen_limit: int = 64  # chosen values reported in one Promise
    promise_chosen_bytes: int = 1 << 20  # ... and about this many bytes of them
    tails_batch: int = 256  # accounts per anti-entropy reply
    learn_ahead_limit: int = 1_024  # chosen values held beyond a gap in the prefix
    accept_ahead_limit: int = 1_024  # votes only this far past the chosen prefix
    round_reservation: int = 1_000  # rounds reserved per RoundWrite
    fast_path: bool = True  # skip Prepare while a range promise from a majority holds
    barrier_settle_ms: int = 100  # a read waits this long for in-flight votes before settling
    evict_idle_ms: int = 30_000  # an account's state leaves memory after idling this long
    max_accounts_in_memory: int = 4_096  # ... or at once past this many (least used first)

    def __post_init__(self) -> None:
        assert self.cluster_size >= 1
        assert 0 < self.backoff_base_ms <= self.backoff_cap_ms
        assert self.resend_ms > 0 and self.recovery_idle_ms > 0 and self.anti_entropy_ms > 0
        assert self.recovery_patience_ms >= self.recovery_idle_ms
        assert self.catch_up_batch >= 1 and self.promise_chosen_limit >= 1
        assert self.tails_batch >= 1 and self.learn_ahead_limit >= 1
        assert self.accept_ahead_limit >= 1
        assert self.catch_up_bytes >= 1 and self.promise_chosen_bytes >= 1
        assert self.evict_idle_ms >= 0 and self.max_accounts_in_memory >= 1
        assert self.round_reservation >= 1

    @property
    def quorum(self) -> int:
        """A strict majority: any two quorums share an acceptor."""
        return self.cluster_size // 2 + 1
