"""Run the simulator over many seeds: `python -m ledger.sim --seeds 100000 --jobs 2`.

Prints every failing seed with its violations and exits 1 if there was one;
`--seed N` replays a single seed and prints its scenario.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from ledger.sim.cluster import SimResult, run_seed
from ledger.sim.scenario import PROFILES, Scenario

CHUNK = 50  # seeds per worker task


def _run_chunk(start: int, stop: int, nodes: int | None, profile: str | None) -> list[SimResult]:
    return [run_seed(seed, nodes=nodes, profile=profile) for seed in range(start, stop)]


def _results(args: argparse.Namespace) -> Iterator[SimResult]:
    bounds = [(start, min(start + CHUNK, args.start + args.seeds))
              for start in range(args.start, args.start + args.seeds, CHUNK)]
    if args.jobs == 1:
        for start, stop in bounds:
            yield from _run_chunk(start, stop, args.nodes, args.profile)
        return
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_run_chunk, start, stop, args.nodes, args.profile)
                   for start, stop in bounds]
        for future in futures:
            yield from future.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=2_000, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, help="replay this one seed, verbosely")
    parser.add_argument("--nodes", type=int, choices=(3, 5), help="force the cluster size")
    parser.add_argument("--profile", choices=PROFILES, help="force one fault profile")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    args = parser.parse_args(argv)
    if args.seed is not None:
        print(Scenario.from_seed(args.seed, nodes=args.nodes, profile=args.profile))
        result = run_seed(args.seed, nodes=args.nodes, profile=args.profile)
        print(f"events={result.events} end={result.end_ms}ms chosen={result.chosen}")
        for violation in result.violations:
            print("VIOLATION", violation)
        return 1 if result.violations else 0
    started = time.monotonic()
    failures = 0
    for done, result in enumerate(_results(args), start=1):
        if not result.ok:
            failures += 1
            print(f"seed {result.seed} FAILED: {'; '.join(result.violations)}", flush=True)
        if done % 1_000 == 0 or done == args.seeds:
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"{done}/{args.seeds} seeds, {failures} failed, {rate:.0f} seeds/s",
                  file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
