"""The load generator, the same for the ledger and for etcd; run as its own process.

    python -m ledger.bench.load --system ledger --server H:P --mode spread --seconds 10
    python -m ledger.bench.load --system ledger --server H1:P1,H2:P2,H3:P3 --mode any-node

The ledger is dialled as any client dials it: mutual TLS with --ca/--cert/--key (or
LEDGER_CA, LEDGER_CERT, LEDGER_KEY), plaintext only with --insecure (LEDGER_INSECURE=1).

--server may be repeated or list several addresses separated by commas; a channel is
opened to each. The accounts are opened, and every mode but `any-node` sends all its
calls, through the first.

Modes: `spread` (deposits over --accounts accounts), `transfer` (transfers of 1 from
each account to the next, over --accounts accounts opened with funds), `any-node` (the
same deposits, each sent to one of the --server addresses picked at random, seeded by
--seed: the client does not follow leader hints, the nodes forward), `hot` (one account), `batch`
(ledger Submit calls of --batch deposits), `client` (--in-flight threads calling
`LedgerClient.deposit`, ledger.bench.client_load; `client-unary`: the same with the
client's write stream off, a unary call per deposit). etcd does what a bank app on etcd would:
one Txn per deposit comparing the key's mod_revision with the revision the client
last saw and putting the new balance, re-reading only after a lost compare (the
client caches balances and revisions). Prints one JSON object with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

import grpc

from ledger.security.tls import INSECURE, Security, SecurityConfigError, client_security
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc


@dataclass
class Results:
    operations: int = 0
    errors: int = 0
    retries: int = 0  # etcd: compares lost and retried
    latencies_s: list[float] = field(default_factory=list)

    def summary(self, seconds: float) -> dict[str, float]:
        ordered = sorted(self.latencies_s) or [0.0]

        def percentile(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

        return {"operations": self.operations, "seconds": seconds,
                "throughput": self.operations / seconds, "errors": self.errors,
                "retries": self.retries, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
                "p999_ms": percentile(0.999)}


TRANSFER_FUNDS = 10**9  # each account's opening balance for `transfer`: never runs dry


def account_name(index: int) -> str:
    return f"bench-{index}"


class LedgerTarget:
    def __init__(self, addresses: list[str], security: Security) -> None:
        self.channels = [security.aio_channel(address) for address in addresses]
        self.stubs = [pb_grpc.LedgerStub(channel) for channel in self.channels]
        self.stub = self.stubs[0]
        self.counter = 0

    @property
    def nodes(self) -> int:
        return len(self.stubs)

    async def prepare(self, accounts: int, opening_balance: int = 0) -> None:
        for start in range(0, accounts, 5_000):
            ops = [pb.BatchOperation(open_account=pb.OpenAccountRequest(
                account_id=account_name(i), opening_balance=opening_balance,
                request_id=f"open-{i}"))
                for i in range(start, min(accounts, start + 5_000))]
            await self.stub.Submit(pb.SubmitRequest(operations=ops), timeout=120)

    def _request_id(self) -> str:
        self.counter += 1
        return f"bench-{time.monotonic_ns()}-{self.counter}"

    async def deposit(self, account: int, results: Results, node: int = 0) -> int:
        await self.stubs[node].Deposit(pb.DepositRequest(
            account_id=account_name(account), amount=1, request_id=self._request_id()),
            timeout=30)
        return 1

    async def transfer(self, account: int, accounts: int, results: Results) -> int:
        """1 from `account` to the next one: two logs, a debit and a credit."""
        await self.stub.Transfer(pb.TransferRequest(
            from_account_id=account_name(account),
            to_account_id=account_name((account + 1) % accounts), amount=1,
            request_id=self._request_id()), timeout=30)
        return 1

    async def batch(self, accounts: list[int], results: Results) -> int:
        ops = [pb.BatchOperation(deposit=pb.DepositRequest(
            account_id=account_name(a), amount=1, request_id=self._request_id()))
            for a in accounts]
        reply = await self.stub.Submit(pb.SubmitRequest(operations=ops), timeout=60)
        results.errors += sum(1 for r in reply.results if r.code != 0)
        return len(ops)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


class EtcdTarget:
    def __init__(self, addresses: list[str], generated: pathlib.Path) -> None:
        from ledger.bench.etcd import import_rpc

        self.pb, rpc_grpc = import_rpc(generated)
        self.channels = [grpc.aio.insecure_channel(address) for address in addresses]
        self.kvs = [rpc_grpc.KVStub(channel) for channel in self.channels]
        self.kv = self.kvs[0]
        self.cache: dict[int, tuple[int, int]] = {}  # account -> (balance, mod_revision)

    async def prepare(self, accounts: int) -> None:
        for i in range(accounts):
            reply = await self.kv.Put(self.pb.PutRequest(key=account_name(i).encode(),
                                                         value=b"0"), timeout=30)
            self.cache[i] = (0, reply.header.revision)

    @property
    def nodes(self) -> int:
        return len(self.kvs)

    async def deposit(self, account: int, results: Results, node: int = 0) -> int:
        key = account_name(account).encode()
        while True:
            balance, revision = self.cache[account]
            compare = self.pb.Compare(result=self.pb.Compare.EQUAL,
                                      target=self.pb.Compare.MOD, key=key,
                                      mod_revision=revision)
            put = self.pb.RequestOp(request_put=self.pb.PutRequest(
                key=key, value=str(balance + 1).encode()))
            read = self.pb.RequestOp(request_range=self.pb.RangeRequest(key=key))
            reply = await self.kvs[node].Txn(self.pb.TxnRequest(
                compare=[compare], success=[put], failure=[read]), timeout=30)
            if reply.succeeded:
                self.cache[account] = (balance + 1, reply.header.revision)
                return 1
            results.retries += 1
            (kv,) = reply.responses[0].response_range.kvs
            self.cache[account] = (int(kv.value), kv.mod_revision)

    async def batch(self, accounts: list[int], results: Results) -> int:
        raise NotImplementedError("etcd has no batch API here; compare with its unary figure")

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


async def drive(target: LedgerTarget | EtcdTarget, mode: str, accounts: int, in_flight: int,
                seconds: float, batch: int, seed: int = 0) -> dict[str, float]:
    """Run the load; its summary, with `nodes_used`: how many addresses got calls."""
    results = Results()
    pick = random.Random(seed)
    calls = [0] * target.nodes
    if isinstance(target, LedgerTarget) and mode == "transfer":
        await target.prepare(accounts, opening_balance=TRANSFER_FUNDS)
    else:
        await target.prepare(1 if mode == "hot" else accounts)
    deadline = time.monotonic() + seconds
    cursor = 0

    def next_accounts(count: int) -> list[int]:
        nonlocal cursor
        if mode == "hot":
            return [0] * count
        chosen = [(cursor + i) % accounts for i in range(count)]
        cursor += count
        return chosen

    async def worker() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            call: Awaitable[int]
            if mode == "batch":
                call = target.batch(next_accounts(batch), results)
            elif mode == "transfer":
                assert isinstance(target, LedgerTarget)
                call = target.transfer(next_accounts(1)[0], accounts, results)
            else:
                (one,) = next_accounts(1)
                node = pick.randrange(target.nodes) if mode == "any-node" else 0
                calls[node] += 1
                call = target.deposit(one, results, node)
            try:
                done = await call
            except grpc.RpcError:
                results.errors += 1
                continue
            results.operations += done
            results.latencies_s.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    summary = results.summary(time.monotonic() - started)
    summary["nodes_used"] = sum(1 for count in calls if count) or 1  # batch: the first
    await target.close()
    return summary


def ledger_security(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Security:
    """How to dial the ledger (etcd is dialled in plaintext: this machine's own test
    cluster); exits with the usage error naming what to set when nothing is."""
    if args.system != "ledger":
        return INSECURE
    try:
        return client_security(args.ca, args.cert, args.key, args.insecure)
    except SecurityConfigError as error:
        parser.error(str(error))


def server_addresses(values: list[str]) -> list[str]:
    """--server's values, each one address or several separated by commas, in order."""
    return [address.strip() for value in values for address in value.split(",")
            if address.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", choices=("ledger", "etcd"), required=True)
    parser.add_argument("--server", required=True, action="append",
                        help="HOST:PORT; repeat it or separate several with commas (the "
                             "first gets every call unless --mode any-node)")
    parser.add_argument("--mode", choices=("spread", "any-node", "hot", "batch", "client",
                                           "client-unary", "transfer"),
                        default="spread")
    parser.add_argument("--seed", type=int, default=0, help="any-node's random node choice")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--etcd-protos", type=pathlib.Path)
    parser.add_argument("--ca", help="the ledger cluster CA's certificate (env LEDGER_CA)")
    parser.add_argument("--cert", help="this client's certificate (env LEDGER_CERT)")
    parser.add_argument("--key", help="its private key (env LEDGER_KEY)")
    parser.add_argument("--insecure", action="store_true",
                        help="plaintext, for nodes started with --insecure")
    args = parser.parse_args()
    if args.system == "etcd" and args.etcd_protos is None:
        parser.error("--etcd-protos is required for etcd")
    security = ledger_security(parser, args)
    addresses = server_addresses(args.server)
    if not addresses:
        parser.error("--server names no address")

    if args.mode == "transfer" and args.system != "ledger":
        parser.error("--mode transfer is the ledger's Transfer call: no etcd twin")
    if args.mode in ("client", "client-unary"):
        if args.system != "ledger":
            parser.error("--mode client is the ledger's Python client library: no etcd twin")
        from ledger.bench.client_load import drive_client

        print(json.dumps(drive_client(addresses, security, args.accounts, args.in_flight,
                                      args.seconds, stream=args.mode == "client")))
        return

    async def run() -> dict[str, float]:
        # Channels belong to the loop they are made on: make them inside it.
        target: LedgerTarget | EtcdTarget = (
            LedgerTarget(addresses, security) if args.system == "ledger"
            else EtcdTarget(addresses, args.etcd_protos))
        return await drive(target, args.mode, args.accounts, args.in_flight, args.seconds,
                           args.batch, args.seed)

    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
