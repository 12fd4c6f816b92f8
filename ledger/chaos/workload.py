"""The workload: concurrent clients making bank operations and recording what they saw.

A few hot accounts see contention from every client; many cold ones are opened
during the run. Clients talk to different nodes, move to another node after an
operation whose outcome they could not learn, retry such writes later with the
same request id, and mix in STRONG and LOCAL reads, overdrafts that must be
refused and requests that must fail validation.

The bank workload runs beside it: accounts that only ever take transfers ("vaults",
a few hot and more cold, all opened with the same balance before the clients start),
with transfers among them (some larger than the source holds: refused), and audits
of the nodes' consistent cuts. Their total is known at every instant, whatever
became of the deposits elsewhere.
"""

from __future__ import annotations

import faulthandler
import pathlib
import random
import threading
import time
from dataclasses import dataclass

from ledger import errors
from ledger.chaos.history import FAILED, INDETERMINATE, OK, REFUSED, Op
from ledger.client import LedgerClient, new_request_id
from ledger.security.tls import Security

# A client still running this long after the run's end is stuck: every operation has
# a deadline, and a step makes at most a couple of them.
STUCK_AFTER_OPERATIONS = 5
STUCK_GRACE_S = 30.0


@dataclass(frozen=True)
class WorkloadConfig:
    clients: int = 8
    hot_accounts: int = 3
    cold_accounts: int = 20
    op_timeout_s: float = 2.0
    seed: int = 0
    vaults: int = 12  # accounts that take transfers only
    hot_vaults: int = 3  # ... of which this many see most of them
    vault_opening: int = 2_000


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


def vault(index: int) -> str:
    return f"vault-{index}"


def is_vault(account: str) -> bool:
    return account.startswith("vault-")


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
        # Writes to retry: kind, account, amount, request id, a transfer's destination.
        self.unknown: list[tuple[str, str, int, str, str]] = []

    def close(self) -> None:
        for bank in self.banks.values():
            bank.close()

    def run(self, deadline: float, stop: threading.Event) -> None:
        while time.monotonic() < deadline and not stop.is_set():
            self.step()

    def step(self) -> None:
        rng = self.rng
        if self.unknown and rng.random() < 0.5:
            self.write(*self.unknown.pop(0))
            return
        roll = rng.random()
        account = hot(rng.randrange(self.config.hot_accounts)) if rng.random() < 0.7 else \
            cold(rng.randrange(self.config.cold_accounts))
        if roll < 0.20:
            self.write("deposit", account, rng.randrange(1, 1_000), new_request_id())
        elif roll < 0.42:
            self.write("withdraw", account, rng.randrange(1, 3_000), new_request_id())
        elif roll < 0.54:
            self.read(account, strong=True)
        elif roll < 0.62:
            self.read(account, strong=False)
        elif roll < 0.71:
            account = cold(rng.randrange(self.config.cold_accounts))
            self.write("open", account, rng.randrange(0, 2_000), new_request_id())
        elif roll < 0.75:
            self.write("deposit", account, 0, new_request_id())  # must fail validation
        elif roll < 0.95:
            source, target = self.vault_pair()
            self.write("transfer", source, rng.randrange(1, 1_500), new_request_id(), target)
        else:
            self.audit()

    def vault_pair(self) -> tuple[str, str]:
        """Two different vaults, hot ones more often than not."""
        config, rng = self.config, self.rng
        picks: list[str] = []
        while len(picks) < 2:
            index = (rng.randrange(config.hot_vaults) if rng.random() < 0.7
                     else rng.randrange(config.vaults))
            if vault(index) not in picks:
                picks.append(vault(index))
        return picks[0], picks[1]

    def write(self, kind: str, account: str, amount: int, request_id: str,
              counterparty: str = "") -> None:
        address = self.addresses[self.node]
        op = self.recorder.begin(client=self.number, node=address, kind=kind, account=account,
                                 amount=amount, request_id=request_id, counterparty=counterparty)
        bank = self.banks[address]
        try:
            if kind == "transfer":
                sent = bank.transfer(account, counterparty, amount, request_id=request_id)
                self.recorder.end(op, OK, position=sent.from_position, balance=sent.from_balance,
                                  duplicate=sent.duplicate, to_position=sent.to_position,
                                  bounced=sent.bounced)
                return
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
            self.unknown.append((kind, account, amount, request_id, counterparty))
            self.node = self.rng.randrange(len(self.addresses))  # try another node
        else:
            self.recorder.end(op, OK, position=done.position, balance=done.balance,
                              duplicate=done.duplicate)

    def audit(self) -> None:
        """One node's consistent cut (any node's: one that is catching up after a restart
        is the interesting one): what it holds of the vaults."""
        address = self.addresses[self.rng.randrange(len(self.addresses))]
        op = self.recorder.begin(client=self.number, node=address, kind="audit", account="")
        try:
            cut = self.banks[address].audit()
        except errors.LedgerError as unknown:
            self.recorder.end(op, INDETERMINATE, error=f"{unknown.status}: {unknown}")
        else:
            self.recorder.end(op, OK, audited={
                a.account_id: [a.balance, a.in_flight] for a in cut.balances_by_account
                if is_vault(a.account_id)})

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
    """Open the hot accounts and the vaults before the clients start (retrying until
    definite)."""
    client = Client(-1, addresses, security, config, recorder)
    try:
        deadline = time.monotonic() + give_up_s
        opening = [(hot(i), 5_000) for i in range(config.hot_accounts)] + \
            [(vault(i), config.vault_opening) for i in range(config.vaults)]
        for account, balance in opening:
            request_id = new_request_id()
            while time.monotonic() < deadline:
                client.write("open", account, balance, request_id)
                if recorder.ops[-1].outcome != INDETERMINATE:
                    break
    finally:
        client.close()


def run_clients(addresses: list[str], security: Security, config: WorkloadConfig,
                recorder: Recorder, seconds: float, stop: threading.Event,
                stuck_report: pathlib.Path | None = None) -> list[int]:
    """Run the clients concurrently for `seconds` (or until `stop`). Returns the clients
    that did not finish in time after that (every operation has a deadline, so none
    should): the run then goes on without them, their threads' stacks in
    `stuck_report`."""
    deadline = time.monotonic() + seconds
    clients = [Client(n, addresses, security, config, recorder) for n in range(config.clients)]
    threads = [threading.Thread(target=c.run, args=(deadline, stop), daemon=True)
               for c in clients]
    for thread in threads:
        thread.start()
    give_up = deadline + STUCK_AFTER_OPERATIONS * config.op_timeout_s + STUCK_GRACE_S
    for thread in threads:
        thread.join(max(0.0, give_up - time.monotonic()))
    stuck = [client.number for client, thread in zip(clients, threads, strict=True)
             if thread.is_alive()]
    if stuck:
        stop.set()
        if stuck_report is not None:
            with stuck_report.open("w") as out:
                faulthandler.dump_traceback(out, all_threads=True)
    for client, thread in zip(clients, threads, strict=True):
        if not thread.is_alive():
            client.close()
    return stuck
