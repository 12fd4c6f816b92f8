"""The client-library load: many threads of one process calling `LedgerClient.deposit`,
as an application server would (the performance issue's "64 threads calling
LedgerClient.deposit in one process"). There is no etcd twin: the figure is compared
with etcd's unary one."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ledger.bench.load import Results, account_name
from ledger.client import BatchWrite, LedgerClient, LedgerError, Security

OPEN_CHUNK = 2_000  # accounts opened per Submit before the load starts


def drive_client(addresses: Sequence[str], security: Security, accounts: int, threads: int,
                 seconds: float, stream: bool = True) -> dict[str, float]:
    """Run `threads` callers sharing one client for `seconds`; the load's summary.
    `stream`: the client coalesces the deposits into its write streams (its default),
    or sends each as its own unary call."""
    results = Results()
    lock = threading.Lock()
    with LedgerClient(list(addresses), timeout_s=30, security=security,
                      stream_writes=stream) as bank:
        for start in range(0, accounts, OPEN_CHUNK):
            bank.submit([BatchWrite("open", account_name(i), 0, request_id=f"open-{i}")
                         for i in range(start, min(accounts, start + OPEN_CHUNK))])
        deadline = time.monotonic() + seconds

        def caller(first: int) -> None:
            account = first
            done: list[float] = []
            errors = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    bank.deposit(account_name(account), 1)
                except LedgerError:
                    errors += 1
                else:
                    done.append(time.perf_counter() - started)
                account = (account + threads) % accounts
            with lock:
                results.operations += len(done)
                results.latencies_s.extend(done)
                results.errors += errors

        began = time.monotonic()
        workers = [threading.Thread(target=caller, args=(i % accounts,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        summary = results.summary(time.monotonic() - began)
    summary["nodes_used"] = 1  # the client's preferred node (it fails over when needed)
    return summary
