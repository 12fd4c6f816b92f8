"""A deterministic, seeded simulator of whole Paxos clusters, with a safety checker.

`run_seed(seed)` builds a scenario from the seed (cluster size, faults, dueling
proposers), runs it on virtual time and returns the violations found. The same
seed always replays the same run: `python -m ledger.sim --seed N`.
"""

from ledger.sim.cluster import SimResult, run_scenario, run_seed
from ledger.sim.scenario import Scenario

__all__ = ["Scenario", "SimResult", "run_scenario", "run_seed"]
