"""The workload: concurrent clients making bank operations and recording what they saw.

A few hot accounts see contention from every client; many cold ones are opened
during the run. Clients talk to different nodes, move to another node after an
operation whose outcome they could not learn, retry such writes later with the
same request id, and mix in STRONG and LOCAL reads, overdrafts that must be
refused and requests that must fail validation.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from ledger import errors
from ledger.chaos.history import FAILED, INDETERMINATE, OK, REFUSED, Op
from ledger.client import LedgerClient, new_request_id
from ledger.security.tls import Security


@dataclass(frozen=True)
class WorkloadConfig:
    clients: int = 8
    hot_accounts: int = 3
    cold_accounts: int = 20
    op_timeout_s: float = 2.0
    seed: int = 0


class Recorder:
    """Thread-safe history with one clock for every client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.ops: list[Op] = []

    def now_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000

    def begin(self, **fields: object) -> Op:
        with self._lock:
            op = Op(index=len(self.ops), invoke_ms=self.now_ms(), **fields)  # type: ignore[arg-type]
            self.ops.append(op)
        return op

    def end(self, op: Op, outcome: str, **fields: object) -> None:
        op.complete_ms = self.now_ms()
        op.outcome = outcome
        for key, value in fields.items():
            setattr(op, key, value)


def hot(index: int) -> str:
    return f"hot-{index}"


def cold(index: int) -> str:
    return f"cold-{index}"


class Client:
    """One client thread's behaviour (deterministic given its seed and the replies)."""

    def __init__(self, number: int, addresses: list[str], security: Security,
                 config: WorkloadConfig, recorder: Recorder) -> None:
        self.number = number
        self.addresses = addresses
        self.config = config
        self.recorder = recorder
        self.rng = random.Random(f"{config.seed}/{number}")
        self.node = number % len(addresses)
        self.banks = {a: LedgerClient([a], timeout_s=config.op_timeout_s, security=security)
                      for a in addresses}
        self.unknown: list[tuple[str, str, int, str]] = []  # writes to retry: kind, account, ...

    def close(self) -> None:
        for bank in self.banks.values():
            bank.close()

    def run(self, deadline: float, stop: threading.Event) -> None:
        while time.monotonic() < deadline and not stop.is_set():
            self.step()

    def step(self) -> None:
        rng = self.rng
        if self.unknown and rng.random() < 0.5:
            kind, account, amount, request_id = self.unknown.pop(0)
            self.write(kind, account, amount, request_id)
            return
        roll = rng.random()
        account = hot(rng.randrange(self.config.hot_accounts)) if rng.random() < 0.7 else \
            cold(rng.randrange(self.config.cold_accounts))
        if roll < 0.25:
            self.write("deposit", account, rng.randrange(1, 1_000), new_request_id())
        elif roll < 0.55:
            self.write("withdraw", account, rng.randrange(1, 3_000), new_request_id())
        elif roll < 0.70:
            self.read(account, strong=True)
        elif roll < 0.80:
            self.read(account, strong=False)
        elif roll < 0.93:
            account = cold(rng.randrange(self.config.cold_accounts))
            self.write("open", account, rng.randrange(0, 2_000), new_request_id())
        else:
            self.write("deposit", account, 0, new_request_id())  # must fail validation

    def write(self, kind: str, account: str, amount: int, request_id: str) -> None:
        address = self.addresses[self.node]
        op = self.recorder.begin(client=self.number, node=address, kind=kind, account=account,
                                 amount=amount, request_id=request_id)
        bank = self.banks[address]
        try:
            if kind == "open":
                done = bank.open_account(account, amount, request_id=request_id)
            elif kind == "deposit":
                done = bank.deposit(account, amount, request_id=request_id)
            else:
                done = bank.withdraw(account, amount, request_id=request_id)
        except errors.Refused as refusal:
            self.recorder.end(op, REFUSED, position=refusal.position, error=str(refusal))
        except (errors.InvalidRequest, errors.AccountNotFound, errors.AccountExists) as failure:
            self.recorder.end(op, FAILED, error=f"{failure.status}: {failure}")
        except errors.LedgerError as unknown:
            self.recorder.end(op, INDETERMINATE, error=f"{unknown.status}: {unknown}")
            self.unknown.append((kind, account, amount, request_id))
            self.node = self.rng.randrange(len(self.addresses))  # try another node
        else:
            self.recorder.end(op, OK, position=done.position, balance=done.balance,
                              duplicate=done.duplicate)

    def read(self, account: str, strong: bool) -> None:
        address = self.addresses[self.node]
        op = self.recorder.begin(client=self.number, node=address, kind="read", account=account,
                                 consistency="strong" if strong else "local")
        try:
            balance = self.banks[address].balance(account, local=not strong)
        except errors.AccountNotFound as missing:
            self.recorder.end(op, FAILED, error=f"NOT_FOUND: {missing}")
        except errors.LedgerError as unknown:
            self.recorder.end(op, INDETERMINATE, error=f"{unknown.status}: {unknown}")
            self.node = self.rng.randrange(len(self.addresses))
        else:
            self.recorder.end(op, OK, position=balance.position, balance=balance.balance)


def open_hot_accounts(addresses: list[str], security: Security, config: WorkloadConfig,
                      recorder: Recorder, give_up_s: float = 60.0) -> None:
    """Open the hot accounts before the clients start (retrying until definite)."""
    client = Client(-1, addresses, security, config, recorder)
    try:
        deadline = time.monotonic() + give_up_s
        for index in range(config.hot_accounts):
            request_id = new_request_id()
            while time.monotonic() < deadline:
                client.write("open", hot(index), 5_000, request_id)
                if recorder.ops[-1].outcome != INDETERMINATE:
                    break
    finally:
        client.close()


def run_clients(addresses: list[str], security: Security, config: WorkloadConfig,
                recorder: Recorder, seconds: float, stop: threading.Event) -> None:
    """Run the clients concurrently for `seconds` (or until `stop`)."""
    deadline = time.monotonic() + seconds
    clients = [Client(n, addresses, security, config, recorder) for n in range(config.clients)]
    threads = [threading.Thread(target=c.run, args=(deadline, stop), daemon=True)
               for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
