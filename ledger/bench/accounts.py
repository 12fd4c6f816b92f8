"""Does a node's memory follow its working set, not the accounts it ever saw?

    python3 -m ledger.bench.accounts --accounts 1000000

Starts a 3-node cluster and measures each node's anonymous resident memory (the
Python heap; LMDB's file-backed map aside, which the kernel reclaims at will):

1. with 1,000 accounts opened and touched at random;
2. after opening the rest, up to --accounts, through Submit in batches, and touching
   them at random (deposits to random accounts);
3. after --ghost-reads STRONG reads of ids that were never opened (each NOT_FOUND).

It prints the figures and each node's ratio to the first; the target is at most 1.5
for the second and the third.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import random
import sys
import tempfile
import time
from collections.abc import Callable

import grpc

from ledger.bench.memory import deposit_all, resident_kib
from ledger.client.admin import node_counters
from ledger.security.tls import Security
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

BASELINE_ACCOUNTS = 1_000
OPENS_PER_SUBMIT = 2_000
SUBMITS_IN_FLIGHT = 4
WRITES_IN_FLIGHT = 64
SETTLE_S = 40.0  # idle account state leaves memory after 30 s (PaxosConfig.evict_idle_ms)
TARGET_RATIO = 1.5

Say = Callable[[str], None]


def anonymous_mib(pid: int) -> float:
    return resident_kib(pid).get("RssAnon", 0) / 1024


async def open_accounts(address: str, security: Security, first: int, last: int,
                        say: Say) -> None:
    """Open acct-first .. acct-(last-1) through Submit, a batch at a time."""
    async with security.aio_channel(address) as channel:
        stub = pb_grpc.LedgerStub(channel)
        slots = asyncio.Semaphore(SUBMITS_IN_FLIGHT)
        done = 0
        started = time.monotonic()

        async def submit(start: int) -> None:
            nonlocal done
            operations = [pb.BatchOperation(open_account=pb.OpenAccountRequest(
                account_id=f"acct-{i}", opening_balance=100, request_id=f"open-{i}"))
                for i in range(start, min(last, start + OPENS_PER_SUBMIT))]
            async with slots:
                for _ in range(10):  # an unknown outcome is retried with the same ids
                    try:
                        reply = await stub.Submit(pb.SubmitRequest(operations=operations),
                                                  timeout=120)
                    except grpc.aio.AioRpcError:
                        continue
                    if all(r.code == 0 or r.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
                           for r in reply.results):
                        break
            done += len(operations)
            if done % 50_000 < OPENS_PER_SUBMIT:
                rate = done / (time.monotonic() - started)
                say(f"  opened {first + done:,} accounts ({rate:,.0f}/s)")

        await asyncio.gather(*(submit(start) for start in range(first, last, OPENS_PER_SUBMIT)))


async def touch(address: str, security: Security, accounts: int, writes: int,
                seed: int) -> None:
    """Deposits to accounts drawn at random among the first `accounts`."""
    rng = random.Random(seed)
    await deposit_all(address, security,
                      ((f"acct-{rng.randrange(accounts)}", f"touch-{seed}-{i}")
                       for i in range(writes)), WRITES_IN_FLIGHT)


async def ghost_reads(address: str, security: Security, reads: int) -> int:
    """STRONG reads of ids never opened; how many answered NOT_FOUND."""
    async with security.aio_channel(address) as channel:
        stub = pb_grpc.LedgerStub(channel)
        slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        not_found = 0

        async def read(i: int) -> None:
            nonlocal not_found
            async with slots:
                try:
                    await stub.GetBalance(pb.GetBalanceRequest(account_id=f"ghost-{i}"),
                                          timeout=60)
                except grpc.aio.AioRpcError as error:
                    not_found += error.code() == grpc.StatusCode.NOT_FOUND

        await asyncio.gather(*(read(i) for i in range(reads)))
        return not_found


def settled(cluster: ProcessCluster, say: Say) -> list[float]:
    """Each node's anonymous memory once the writes are applied everywhere and idle
    account state has had time to leave memory."""
    deadline = time.monotonic() + 300
    security = cluster.security
    while time.monotonic() < deadline:
        applied = [node_counters(address, 5, security) for address in cluster.addresses]
        if all(a is not None for a in applied) and len({a["applied"] for a in applied  # type: ignore[index]
                                                      }) == 1:
            break
        time.sleep(1)
    say(f"  waiting {SETTLE_S:.0f}s for idle account state to leave memory...")
    time.sleep(SETTLE_S)
    return [anonymous_mib(node.process.pid) for node in cluster.nodes
            if node.process is not None]


def run(accounts: int, touches: int, ghosts: int, say: Say) -> list[tuple[str, list[float]]]:
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as base, ProcessCluster(pathlib.Path(base), 3) as cluster:
        leader, security = cluster.addresses[0], cluster.security
        say(f"opening {BASELINE_ACCOUNTS:,} accounts and touching them...")
        asyncio.run(open_accounts(leader, security, 0, BASELINE_ACCOUNTS, say))
        asyncio.run(touch(leader, security, BASELINE_ACCOUNTS, touches, seed=1))
        rows.append((f"{BASELINE_ACCOUNTS:,} accounts", settled(cluster, say)))
        say(f"opening accounts up to {accounts:,}...")
        asyncio.run(open_accounts(leader, security, BASELINE_ACCOUNTS, accounts, say))
        asyncio.run(touch(leader, security, accounts, touches, seed=2))
        rows.append((f"{accounts:,} accounts", settled(cluster, say)))
        say(f"{ghosts:,} STRONG reads of ids never opened...")
        missing = asyncio.run(ghost_reads(leader, security, ghosts))
        rows.append((f"+ {missing:,} reads of unknown ids", settled(cluster, say)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--touches", type=int, default=20_000,
                        help="deposits to random accounts after each round of opening")
    parser.add_argument("--ghost-reads", type=int, default=100_000)
    args = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows = run(args.accounts, args.touches, args.ghost_reads, say)
    baseline = rows[0][1]
    print(f"{'':<34}" + "".join(f"{'n' + str(i + 1) + ' MiB':>10}{'ratio':>7}"
                                for i in range(len(baseline))))
    worst = 0.0
    for label, figures in rows:
        cells = ""
        for base_mib, mib in zip(baseline, figures, strict=True):
            ratio = mib / base_mib if base_mib else 0.0
            worst = max(worst, ratio)
            cells += f"{mib:>10.1f}{ratio:>7.2f}"
        print(f"{label:<34}{cells}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
