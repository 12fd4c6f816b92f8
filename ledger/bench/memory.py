"""Does a node's memory stay flat as its logs grow? `python -m ledger.bench.memory`.

Starts a 3-node cluster, opens accounts, then writes deposits in steps and prints
each node's resident memory after every step: anonymous memory (Python heap:
what the node holds itself) and file-backed memory (LMDB's memory map, which the
kernel reclaims at will).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import tempfile
import time
from collections.abc import Iterable

from ledger.security.tls import Security
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc


def resident_kib(pid: int) -> dict[str, int]:
    """A process's resident memory in KiB: anonymous (its heap) and file-backed (maps)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                fields[key] = int(value.split()[0])
    return fields


def memory_mib(pid: int) -> dict[str, int]:
    return {key: kib // 1024 for key, kib in resident_kib(pid).items()}


async def deposit_all(address: str, security: Security, deposits: Iterable[tuple[str, str]],
                      in_flight: int, memo: str = "") -> None:
    """Deposit 1 to each (account, request id), `in_flight` at a time."""
    async with security.aio_channel(address) as channel:
        stub = pb_grpc.LedgerStub(channel)
        slots = asyncio.Semaphore(in_flight)

        async def deposit(account: str, request_id: str) -> None:
            async with slots:
                await stub.Deposit(pb.DepositRequest(
                    account_id=account, amount=1, request_id=request_id, memo=memo),
                    timeout=60)

        await asyncio.gather(*(deposit(account, request_id)
                               for account, request_id in deposits))


async def write(address: str, security: Security, first: int, count: int, accounts: int,
                in_flight: int) -> None:
    await deposit_all(address, security, ((f"acct-{i % accounts}", f"r{i}")
                                          for i in range(first, first + count)),
                      in_flight, memo="memory benchmark")


async def open_accounts(address: str, security: Security, accounts: int) -> None:
    async with security.aio_channel(address) as channel:
        stub = pb_grpc.LedgerStub(channel)
        await asyncio.gather(*(stub.OpenAccount(pb.OpenAccountRequest(
            account_id=f"acct-{i}", request_id="open"), timeout=60) for i in range(accounts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--entries-per-step", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base, ProcessCluster(pathlib.Path(base), 3) as cluster:
        pids = [node.process.pid for node in cluster.nodes if node.process is not None]
        security = cluster.security
        asyncio.run(open_accounts(cluster.addresses[0], security, args.accounts))
        print(f"{'entries':>8}  {'writes/s':>8}  " + "  ".join(
            f"{n.node_id} anon/file MiB" for n in cluster.nodes))
        def report(entries: int, rate: str) -> None:
            row = "  ".join(f"{m['RssAnon']:>7}/{m['RssFile']:<7}"
                            for m in map(memory_mib, pids))
            print(f"{entries:>8}  {rate:>8}  {row}", flush=True)

        report(0, "")
        for step in range(1, args.steps + 1):
            started = time.monotonic()
            asyncio.run(write(cluster.addresses[0], security, (step - 1) * args.entries_per_step,
                              args.entries_per_step, args.accounts, args.in_flight))
            rate = args.entries_per_step / (time.monotonic() - started)
            report(step * args.entries_per_step, f"{rate:.0f}")


if __name__ == "__main__":
    main()
