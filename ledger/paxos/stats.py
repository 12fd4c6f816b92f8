"""What the core did since the node started, counted where it happens, for operators.

Plain integers bumped on paths the core runs anyway (a round, a refusal, a takeover),
never per message: the node reads them when metrics are copied out, so counting
costs the write path almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PaxosStats:
    phase_one_rounds: int = 0  # Prepares this node broadcast (a new ballot each)
    fast_path_proposals: int = 0  # proposals sent straight to Phase 2 under a range promise
    backoffs: int = 0  # rounds refused by a higher ballot, retried after a random delay
    takeovers: int = 0  # Phase 1 on a slot this node had no value for (another left it)
    resends: int = 0  # Prepares or Accepts sent again to nodes that did not answer in time
    leaderships_won: int = 0  # range promises won (Multi-Paxos' leader, per account)
    leaderships_lost: int = 0  # range promises ended by a higher ballot
    catch_up_requests: int = 0  # asks to a peer for chosen values this node lacks

    def as_dict(self) -> dict[str, int]:
        return {"phase_one_rounds": self.phase_one_rounds,
                "fast_path_proposals": self.fast_path_proposals,
                "backoffs": self.backoffs, "takeovers": self.takeovers,
                "resends": self.resends, "leaderships_won": self.leaderships_won,
                "leaderships_lost": self.leaderships_lost,
                "catch_up_requests": self.catch_up_requests}
