"""`ledger demo` end to end as a real process, and the demo's bookkeeping in isolation."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import subprocess
import sys
import threading

import pytest

import ledger.demo.tellers as demo_module
from ledger.client import InsufficientFunds, Transaction, Unavailable
from ledger.security.tls import INSECURE, Security
from tests.support.cli import LEDGER, run

DEMO_TIMEOUT_S = 150


def final_table(output: str) -> list[list[str]]:
    """The words of each account row of the last convergence table printed."""
    lines = output.splitlines()
    header = max(i for i, line in enumerate(lines) if line.split()[:2] == ["account",
                                                                            "expected"])
    rows = []
    for line in lines[header + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def assert_cleaned_up(output: str) -> None:
    match = re.search(r"Stopped the cluster and removed (\S+ledger-demo-\S+)\.$", output,
                      re.MULTILINE)
    assert match is not None, output
    base = match.group(1)
    assert f"data in {base}" in output
    assert not pathlib.Path(base).exists()
    leftovers = subprocess.run(["pgrep", "-f", base], capture_output=True, text=True)
    assert leftovers.stdout == "", f"ledger serve processes left behind: {leftovers.stdout}"


@pytest.mark.xdist_group("processes")
def test_the_demo_converges_narrates_and_cleans_up() -> None:
    result = run([*LEDGER, "demo"], timeout_s=DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"killing node n3 with SIGKILL mid-run", out)
    assert re.search(r"restarting node n3; it must catch up", out)
    assert out.index("SIGKILL") < out.index("restarting node n3") < out.index("All tellers done")
    assert re.search(r"operations decided: 120/120", out)
    assert re.search(r"All tellers done: 120 operations decided, \d+ refused", out)
    rows = final_table(out)
    assert sorted(row[0] for row in rows) == ["alice", "bob", "carol", "dave"]
    for row in rows:
        assert row[-1] == "yes", row
        _account, expected, *cells = row[:-1]
        lengths, balances, digests = cells[0::3], cells[1::3], cells[2::3]
        assert len(balances) == 3 and set(balances) == {expected}, row
        assert len(set(lengths)) == 1 and len(set(digests)) == 1, row
    assert "Every replica holds the same log" in out
    assert re.search(r"Transfer of 25\.00 from alice to carol through n2: done", out)
    assert re.search(r"after \d+s: dave credited 40\.00 from bob", out)
    assert "asking again with the same request id: already done earlier" in out
    assert "each transfer debited once and credited once" in out
    # An audit while the orphan is pending and one after: the same total either way.
    totals = re.findall(r"audit, one consistent cut of the bank: balances [\d.]+ \+ in flight "
                        r"[\d.]+ \(\d+ transfers\) = ([\d.]+)", out)
    assert len(totals) == 2 and totals[0] == totals[1], totals
    assert_cleaned_up(out)


@pytest.mark.xdist_group("processes")
def test_the_demo_explains_paxos_from_the_nodes_traces(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "explained.html"
    result = run([*LEDGER, "demo", "--explain", "--html", str(page)],
                 timeout_s=DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert f"sequence diagrams: {page}" in out
    # The saved page holds the three transactions' diagrams: the first runs Phase 1,
    # the second goes on the fast path (no Prepare, its Accepts dashed), each chosen.
    embedded = re.search(r'<script id="ledger-data" type="application/json">(.*?)</script>',
                         page.read_text(), re.DOTALL)
    assert embedded is not None
    diagrams = json.loads(embedded.group(1))["diagrams"]
    assert [d["title"] for d in diagrams] == ["Open 'explained' through n1",
                                             "Deposit 5.00 through n1 again",
                                             "Deposit 7.00 through n2"]
    kinds = [{a["kind"] for a in d["arrows"]} for d in diagrams]
    assert {"Prepare", "Promise", "Accept", "Accepted", "Learn"} <= kinds[0]
    assert "Prepare" not in kinds[1] and {"Accept", "Accepted", "Learn"} <= kinds[1]
    assert all(a["fast"] for a in diagrams[1]["arrows"] if a["kind"] == "Accept")
    assert "after Phase 1" in diagrams[0]["summary"][0]
    assert "on the fast path" in diagrams[1]["summary"][0]
    explained = out[out.index("How Paxos decided"):]
    for message in ["Prepare", "Promise", "Accept", "Accepted"]:
        assert re.search(rf"^\s+n\d -> n\d.*: {message}\(.*ballot \d+\.\d+", explained,
                         re.MULTILINE), message
    fast = [line for line in explained.splitlines() if "fast path" in line]
    assert fast and "Prepare/Promise are skipped" in fast[0]
    # the fast-path transaction has Accept messages and no Prepare of its own
    section = explained[explained.index(fast[0]):].split("\n\n")[0]
    assert "Accept(" in section and "Prepare(" not in section
    assert_cleaned_up(out)


def test_html_without_explain_is_refused_before_anything_starts(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.html"
    result = run([*LEDGER, "demo", "--html", str(page)], timeout_s=30)
    assert result.returncode == 2 and "give both" in result.stderr
    result = run([*LEDGER, "demo", "--explain", "--html", str(tmp_path / "none" / "p.html")],
                 timeout_s=30)
    assert result.returncode == 2 and "no directory" in result.stderr
    assert not page.exists() and "Starting" not in result.stdout


@pytest.mark.xdist_group("processes")
def test_ctrl_c_mid_run_stops_the_tellers_and_cleans_up() -> None:
    demo = subprocess.Popen([sys.executable, "-m", "ledger", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(DEMO_TIMEOUT_S, demo.kill)
    watchdog.start()
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("Three tellers now work concurrently"):
                break
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)  # the tellers must not be waited out
    finally:
        watchdog.cancel()
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode not in (0, -signal.SIGKILL)
    assert_cleaned_up("".join(seen) + rest)


class FakeLedger:
    """A ledger in memory whose replies get lost: a stand-in for LedgerClient in teller_work.

    Every 3rd write is applied but its reply is lost (Unavailable); every 5th is applied
    and answered as a duplicate, as when the client failed over after a lost reply.
    """

    def __init__(self) -> None:
        self.balances = dict(demo_module.OPENINGS)
        self.applied: dict[str, Transaction] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def client(self, servers: object, timeout_s: float = 0,
               security: Security | None = None) -> FakeLedger:
        return self

    def __enter__(self) -> FakeLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def deposit(self, account: str, amount: int, memo: str = "",
                request_id: str = "") -> Transaction:
        return self._write(account, amount, request_id)

    def withdraw(self, account: str, amount: int, memo: str = "",
                 request_id: str = "") -> Transaction:
        return self._write(account, -amount, request_id)

    def _write(self, account: str, change: int, request_id: str) -> Transaction:
        with self.lock:
            self.calls += 1
            if request_id in self.applied:
                return self._duplicate(request_id)
            if self.balances[account] + change < 0:
                raise InsufficientFunds("insufficient funds", balance=self.balances[account],
                                        amount=-change)
            self.balances[account] += change
            done = Transaction(account, self.calls, self.balances[account], False, request_id)
            self.applied[request_id] = done
            if self.calls % 3 == 0:
                raise Unavailable("the reply was lost")
            if self.calls % 5 == 0:
                return self._duplicate(request_id)
            return done

    def _duplicate(self, request_id: str) -> Transaction:
        done = self.applied[request_id]
        return Transaction(done.account_id, done.position, done.balance, True, request_id)


def test_the_tellers_expect_exactly_what_the_ledger_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = FakeLedger()
    monkeypatch.setattr(demo_module, "LedgerClient", ledger.client)
    tally = demo_module.Tally()
    for index in range(3):
        demo_module.teller_work(index, ["a", "b", "c"], INSECURE, tally, seed=7 + index,
                                stop=threading.Event())
    assert tally.undecided == 0
    assert tally.done == 3 * demo_module.OPERATIONS_PER_TELLER
    assert tally.unknown_then_settled > 0 and tally.refused > 0 and tally.duplicates > 0
    assert tally.expected == ledger.balances
