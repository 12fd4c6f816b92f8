"""Run a chaos scenario: `python -m ledger.chaos --nodes 5 --nemesis partition,kill --seconds 60`.

Writes history.jsonl, faults.jsonl, logs.json, report.txt and report.json to --out
and exits 0 only if the checker passed. Partition and loss nemeses need root: the
run then builds its own network namespaces, runs inside them, and removes them.
The disk nemesis wipes a node's data directory or rolls it back to an older copy,
checks that `ledger serve` refuses it, and brings it back with `ledger recover`.
The nodes serve mutual TLS, with certificates made for the run in OUT/nodes/tls (in
namespaces, each for its node's own address); every run starts on fresh directories.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

from ledger.chaos.nemesis import NEMESES
from ledger.chaos.netns import Topology, unavailable_reason
from ledger.chaos.runner import ChaosConfig, run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ledger.chaos", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    parser.add_argument("--nemesis", default="kill",
                        help=f"comma-separated, from {', '.join(NEMESES)}; or 'all'")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("chaos-out"))
    parser.add_argument("--inside", help=argparse.SUPPRESS)  # topology name,size,subnet
    args = parser.parse_args(argv)
    kinds = NEMESES if args.nemesis == "all" else tuple(
        k.strip() for k in args.nemesis.split(",") if k.strip())
    unknown = set(kinds) - set(NEMESES)
    if unknown or not kinds:
        parser.error(f"unknown nemesis {', '.join(sorted(unknown)) or '(none)'}; "
                     f"choose from {', '.join(NEMESES)}")
    args.kinds = kinds
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = ChaosConfig(nodes=args.nodes, nemeses=args.kinds, seconds=args.seconds,
                         seed=args.seed, clients=args.clients, out_dir=args.out.resolve())
    if args.inside:
        name, size, subnet = args.inside.split(",")
        report = run(config, Topology(name, int(size), int(subnet)))
    elif config.needs_network:
        return run_in_namespaces(config, sys.argv[1:] if argv is None else argv)
    else:
        report = run(config)
    print(report.text(), end="")
    return 0 if report.passed else 1


def run_in_namespaces(config: ChaosConfig, argv: list[str]) -> int:
    """Build the run's namespaces, re-run this command inside the hub, then tear down."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"cannot run network nemeses here: {reason}", file=sys.stderr)
        return 2
    topology = Topology(f"lc{os.getpid()}", config.nodes, 100 + os.getpid() % 100)
    try:
        topology.create()
        inner = [*topology.exec_prefix(topology.hub), sys.executable, "-m", "ledger.chaos",
                 *argv, "--out", str(config.out_dir),
                 "--inside", f"{topology.name},{topology.size},{topology.subnet}"]
        return subprocess.run(inner).returncode
    finally:
        topology.destroy()


if __name__ == "__main__":
    sys.exit(main())
