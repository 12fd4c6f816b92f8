"""`teller` against a real 3-node cluster: every verb, --json, options anywhere, exit codes.

One cluster serves the whole module; every test uses its own account names. Most
calls run in-process through click's CliRunner (fast); a few run `teller` as a real
process, and the no-majority test starts (and breaks) a cluster of its own.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import ledger.cli.teller as teller_module
from ledger.accounts.model import MAX_AMOUNT, MAX_BALANCE
from ledger.client import LedgerClient
from ledger.tools.localcluster import ProcessCluster
from tests.support.cli import TELLER, invoke, run
from tests.support.clusters import servers_flag
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")

BAD_AMOUNTS = ["-5", "0", "0.00", "1.234", "1e3", "abc", "1,000", "12.", ".5", " ", "",
               "+5", "1_000", "\uff11\uff12", "10000000000000.01"]


@pytest.fixture(scope="module")
def servers(shared_cluster: ProcessCluster) -> str:
    return servers_flag(shared_cluster)


@pytest.fixture(autouse=True)
def client_certificate(shared_cluster: ProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every teller here, in-process or a child process, presents the shared cluster's
    local certificate (LEDGER_CA, LEDGER_CERT, LEDGER_KEY), as a teller's shell would."""
    for name, value in shared_cluster.client_env.items():
        monkeypatch.setenv(name, value)


def ok(args: list[str], servers: str) -> str:
    """`teller --servers S ARGS`, which must succeed; its output."""
    result = invoke(["--servers", servers, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(args: list[str], servers: str) -> Any:
    return json.loads(ok([*args, "--json"], servers))


def balance_of(account: str, servers: str) -> int:
    return int(ok_json(["balance", account], servers)["balance"])


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0]


# ------------------------------------------------------------------- help


def test_help_documents_every_exit_code() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for code, meaning in [("0", "done"), ("1", "refused"), ("2", "bad input"),
                          ("3", "outcome unknown"), ("4", "account not found")]:
        assert re.search(rf"^\s+{code}\s+{meaning}", result.stdout, re.MULTILINE), code
    for verb in ["open", "deposit", "withdraw", "balance", "history", "shell"]:
        assert verb in result.stdout
    deposit_help = invoke(["deposit", "--help"]).stdout
    for option in ["--memo", "--request-id", "--servers", "--json", "--timeout"]:
        assert option in deposit_help


# ------------------------------------------------------------------ verbs


def test_every_verb_in_text(servers: str) -> None:
    assert "opened t-alice: balance 12.34 (operation 0)" in ok(
        ["open", "t-alice", "--opening-balance", "12.34"], servers)
    assert "deposited to t-alice: balance 112.34 (operation 1)" in ok(
        ["deposit", "t-alice", "100"], servers)
    assert "balance 112.39 (operation 2)" in ok(
        ["deposit", "t-alice", "0.05", "--memo", "coffee refund"], servers)
    assert "withdrew from t-alice: balance 100.39 (operation 3)" in ok(
        ["withdraw", "t-alice", "12"], servers)
    assert ok(["balance", "t-alice"], servers).strip() == "t-alice: 100.39 (after operation 3)"
    # --local asks one node without a majority round: it may lag, but not for long.
    eventually(lambda: "t-alice: 100.39 (after operation 3)" in ok(
        ["balance", "t-alice", "--local"], servers), what="the local balance catches up")

    table = ok(["history", "t-alice"], servers).splitlines()
    assert "kind" in table[0] and "balance" in table[0]
    rows = [line.split() for line in table[1:]]
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    assert [row[3:6] for row in rows] == [["open", "12.34", "12.34"],
                                          ["deposit", "100.00", "112.34"],
                                          ["deposit", "0.05", "112.39"],
                                          ["withdrawal", "12.00", "100.39"]]
    assert table[3].endswith("coffee refund")
    window = ok(["history", "t-alice", "--from", "1", "--limit", "2"], servers).splitlines()
    assert [line.split()[0] for line in window[1:]] == ["1", "2"]


def test_every_verb_in_json(servers: str) -> None:
    opened = ok_json(["open", "t-bob", "--opening-balance", "0"], servers)
    assert opened == {"account_id": "t-bob", "position": 0, "balance": 0, "duplicate": False,
                      "request_id": opened["request_id"]}
    assert ok_json(["deposit", "t-bob", "12.34"], servers)["balance"] == 1234
    assert ok_json(["deposit", "t-bob", "100"], servers)["balance"] == 11234
    withdrawn = ok_json(["withdraw", "t-bob", "0.05", "--memo", "fee"], servers)
    assert (withdrawn["position"], withdrawn["balance"], withdrawn["duplicate"]) == (3, 11229,
                                                                                     False)
    assert ok_json(["balance", "t-bob"], servers) == {"account_id": "t-bob", "balance": 11229,
                                                      "position": 3}
    local = eventually(lambda: (lambda b: b if b["position"] == 3 else None)(
        ok_json(["balance", "t-bob", "--local"], servers)), what="the local balance")
    assert local["balance"] == 11229
    history = ok_json(["history", "t-bob"], servers)
    assert [(e["position"], e["kind"], e["amount"], e["balance_after"]) for e in history] == [
        (0, "open", 0, 0), (1, "deposit", 1234, 1234), (2, "deposit", 10000, 11234),
        (3, "withdrawal", 5, 11229)]
    assert history[3]["memo"] == "fee" and not history[3]["rejected"]
    assert history[3]["request_id"] == withdrawn["request_id"]
    window = ok_json(["history", "t-bob", "--from", "2", "--limit", "1"], servers)
    assert [e["position"] for e in window] == [2]
    assert ok_json(["history", "t-bob", "--from", "9"], servers) == []


def test_options_go_before_or_after_the_verb(servers: str, nowhere: str) -> None:
    ok(["open", "t-opts", "--opening-balance", "1"], servers)
    before = invoke(["--json", "--servers", servers, "--timeout", "5", "deposit", "t-opts", "1"])
    after = invoke(["deposit", "t-opts", "1", "--json", "--servers", servers, "--timeout", "5"])
    for result, balance in [(before, 200), (after, 300)]:
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["balance"] == balance
    # After the verb wins: nowhere before it is overridden, nowhere after it is used.
    won = invoke(["--servers", nowhere, "--timeout", "0.5", "balance", "t-opts", "--servers",
                  servers, "--timeout", "5"])
    assert won.exit_code == 0 and "3.00" in won.stdout
    lost = invoke(["--servers", servers, "balance", "t-opts", "--servers", nowhere,
                   "--timeout", "0.5"])
    assert lost.exit_code == 3
    # LEDGER_SERVERS stands in for --servers; an explicit --servers, anywhere, beats it.
    from_env = invoke(["balance", "t-opts", "--json"], env={"LEDGER_SERVERS": servers})
    assert from_env.exit_code == 0 and json.loads(from_env.stdout)["balance"] == 300
    for args in [["--servers", servers, "balance", "t-opts"],
                 ["balance", "t-opts", "--servers", servers]]:
        result = invoke(args, env={"LEDGER_SERVERS": nowhere})
        assert result.exit_code == 0, result.output


def test_teller_as_a_real_process(servers: str) -> None:
    opened = run([*TELLER, "open", "t-proc", "--opening-balance", "7.50", "--json"],
                 env={"LEDGER_SERVERS": servers})
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["balance"] == 750
    overdraft = run([*TELLER, "--servers", servers, "withdraw", "t-proc", "8"])
    assert overdraft.returncode == 1 and "7.50" in overdraft.stderr
    missing = run([*TELLER, "balance", "t-proc-nobody"], env={"LEDGER_SERVERS": servers})
    assert missing.returncode == 4
    bad = run([*TELLER, "deposit", "t-proc", "-5"], env={"LEDGER_SERVERS": servers})
    assert bad.returncode == 2 and bad.stdout == ""
    one_line_error(bad.stderr)


# ------------------------------------------------------------- request ids


def test_a_retry_with_the_same_request_id_is_a_duplicate(servers: str) -> None:
    first = ok(["open", "t-dup", "--opening-balance", "10", "--request-id", "open-t-dup"],
               servers)
    assert "already done" not in first
    again = invoke(["--servers", servers, "open", "t-dup", "--opening-balance", "10",
                    "--request-id", "open-t-dup"])
    assert again.exit_code == 0 and "already done" in again.stdout

    for verb, expected in [("deposit", 1500), ("withdraw", 1300)]:
        amount = "5" if verb == "deposit" else "2"
        request_id = f"{verb}-t-dup"
        done = ok_json([verb, "t-dup", amount, "--request-id", request_id], servers)
        assert done["duplicate"] is False and done["balance"] == expected
        text = invoke(["--servers", servers, verb, "t-dup", amount, "--request-id", request_id])
        assert text.exit_code == 0
        assert "already done earlier with this request id" in text.stdout
        retried = ok_json([verb, "t-dup", amount, "--request-id", request_id], servers)
        assert retried == {**done, "duplicate": True}
    assert balance_of("t-dup", servers) == 1300  # each applied once
    assert len(ok_json(["history", "t-dup"], servers)) == 3


def test_a_request_id_reused_for_another_request_is_refused(servers: str) -> None:
    ok(["open", "t-reuse", "--opening-balance", "10"], servers)
    ok(["deposit", "t-reuse", "1", "--request-id", "t-reuse-1"], servers)
    other = invoke(["--servers", servers, "deposit", "t-reuse", "2", "--request-id",
                    "t-reuse-1"])
    assert other.exit_code == 4
    assert "already used" in one_line_error(other.stderr)
    empty = invoke(["--servers", servers, "deposit", "t-reuse", "2", "--request-id", ""])
    assert empty.exit_code == 2
    too_long = invoke(["--servers", servers, "deposit", "t-reuse", "2", "--request-id",
                       "r" * 65])
    assert too_long.exit_code == 2 and "request id" in too_long.stderr
    assert balance_of("t-reuse", servers) == 1100


# ----------------------------------------------------------------- amounts


class NoClient:
    """Stands in for LedgerClient where nothing may be sent."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a bad amount must be refused before anything is sent")


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
@pytest.mark.parametrize("verb", ["deposit", "withdraw"])
def test_a_bad_amount_is_exit_2_in_one_line_and_nothing_is_sent(
    verb: str, amount: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(teller_module, "LedgerClient", NoClient)
    for args in [[verb, "acct", amount], ["--json", verb, "acct", amount, "--memo", "m"]]:
        result = invoke(args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        line = one_line_error(result.stderr)
        assert any(why in line for why in ["write it like 12.34", "more than zero", "at most"])


@pytest.mark.parametrize("amount", ["-5", "1.234", "1e3", "abc", "12.", "10000000000000.01"])
def test_a_bad_opening_balance_is_exit_2(amount: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teller_module, "LedgerClient", NoClient)
    result = invoke(["open", "acct", "--opening-balance", amount])
    assert result.exit_code == 2, result.output
    one_line_error(result.stderr)


def test_bad_amounts_write_nothing_on_a_real_cluster(servers: str) -> None:
    ok(["open", "t-bad", "--opening-balance", "0"], servers)  # zero is a fine opening balance
    for verb in ["deposit", "withdraw"]:
        for amount in BAD_AMOUNTS:
            result = invoke(["--servers", servers, verb, "t-bad", amount])
            assert result.exit_code == 2, (verb, amount, result.output)
    assert [e["kind"] for e in ok_json(["history", "t-bad"], servers)] == ["open"]


def test_amounts_are_exact_up_to_the_largest(servers: str) -> None:
    ok(["open", "t-exact", "--opening-balance", "10000000000000.00"], servers)
    assert balance_of("t-exact", servers) == MAX_AMOUNT
    for amount, minor in [("12.34", 1234), ("100", 10_000), ("0.05", 5),
                          ("10000000000000", MAX_AMOUNT)]:
        before = balance_of("t-exact", servers)
        assert ok_json(["deposit", "t-exact", amount], servers)["balance"] == before + minor
    assert balance_of("t-exact", servers) == 2 * MAX_AMOUNT + 1234 + 10_000 + 5
    assert ok(["balance", "t-exact"], servers).startswith("t-exact: 20000000000112.39 ")


# -------------------------------------------------------------- exit codes


@pytest.mark.parametrize("account", ["bad id!", "a" * 65, "caf\u00e9"])
def test_an_account_id_the_server_refuses_is_exit_2(servers: str, account: str) -> None:
    for args in [["open", account], ["deposit", account, "1"], ["withdraw", account, "1"],
                 ["balance", account], ["history", account]]:
        result = invoke(["--servers", servers, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "account id" in one_line_error(result.stderr)


def test_an_overdraft_is_exit_1_and_says_the_balance(servers: str) -> None:
    ok(["open", "t-poor", "--opening-balance", "5"], servers)
    for as_json in [[], ["--json"]]:
        result = invoke(["--servers", servers, "withdraw", "t-poor", "10", *as_json])
        assert result.exit_code == 1
        line = one_line_error(result.stderr)
        assert "insufficient funds" in line and "5.00" in line and "10.00" in line
    assert balance_of("t-poor", servers) == 500
    history = ok_json(["history", "t-poor"], servers)
    assert [e["rejected"] for e in history] == [False, True, True]  # refusals are recorded
    assert "REFUSED" in ok(["history", "t-poor"], servers)


def test_a_deposit_past_the_balance_limit_is_exit_1(servers: str) -> None:
    deposits = MAX_BALANCE // MAX_AMOUNT - 1  # after these the balance is exactly the limit
    with LedgerClient(servers) as bank:
        bank.open_account("t-rich", MAX_AMOUNT)
        with ThreadPoolExecutor(32) as pool:  # concurrent requests share Paxos rounds
            list(pool.map(lambda _: bank.deposit("t-rich", MAX_AMOUNT), range(deposits)))
    assert balance_of("t-rich", servers) == MAX_BALANCE
    result = invoke(["--servers", servers, "deposit", "t-rich", "0.01"])
    assert result.exit_code == 1
    assert "balance limit" in one_line_error(result.stderr)
    assert balance_of("t-rich", servers) == MAX_BALANCE


def test_not_found_and_already_exists_are_exit_4(servers: str) -> None:
    for args in [["balance", "t-ghost"], ["history", "t-ghost"], ["deposit", "t-ghost", "1"],
                 ["withdraw", "t-ghost", "1"]]:
        result = invoke(["--servers", servers, *args])
        assert result.exit_code == 4, (args, result.output)
        assert "does not exist" in one_line_error(result.stderr)
    ok(["open", "t-twice"], servers)
    again = invoke(["--servers", servers, "open", "t-twice"])
    assert again.exit_code == 4
    assert "already open" in one_line_error(again.stderr)


def retry_from(message: str) -> list[str]:
    """The command the outcome-unknown message tells a person to run, as words."""
    lines = message.strip().splitlines()
    assert "may or may not have happened" in lines[0]
    assert "retry it safely" in lines[1]
    words = shlex.split(lines[2])
    assert words[0] == "teller" and "--request-id" in words
    return words


def test_nobody_answering_is_exit_3_with_a_retry_command(nowhere: str) -> None:
    for verb, args in [("deposit", ["t-x", "5"]), ("withdraw", ["t-x", "5"]),
                       ("open", ["t-x", "--opening-balance", "3"])]:
        result = invoke(["--servers", nowhere, "--timeout", "0.3", verb, *args, "--request-id",
                         f"r-{verb}", "--memo" if verb != "open" else "--json",
                         *(["two words"] if verb != "open" else [])])
        assert result.exit_code == 3, result.output
        words = retry_from(result.stderr)
        assert words[words.index("--request-id") + 1] == f"r-{verb}"
        assert words[words.index("--servers") + 1] == nowhere
        assert verb in words
        if verb != "open":
            assert words[words.index("--memo") + 1] == "two words"
    read = invoke(["--servers", nowhere, "--timeout", "0.3", "balance", "t-x"])
    assert read.exit_code == 3 and "no answer" in one_line_error(read.stderr)


def test_no_majority_is_exit_3_and_the_printed_retry_applies_once(
    own_cluster: ProcessCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    small_cluster = own_cluster
    servers = servers_flag(small_cluster)
    for name, value in small_cluster.client_env.items():
        monkeypatch.setenv(name, value)
    ok(["open", "q-acct", "--opening-balance", "100"], servers)
    small_cluster.kill(1)
    small_cluster.kill(2)  # one node of three is up: no majority
    result = run([*TELLER, "--servers", servers, "--timeout", "2", "deposit", "q-acct", "12.34",
                  "--memo", "rent for May"])
    assert result.returncode == 3, result.stderr
    retry = retry_from(result.stderr)
    assert invoke([*retry[1:], "--timeout", "0.5"]).exit_code == 3  # still no majority
    small_cluster.start_node(1)
    small_cluster.start_node(2)
    again = run([*TELLER, *retry[1:]])
    assert again.returncode == 0, again.stderr
    assert "balance 112.34" in again.stdout
    twice = run([*TELLER, *retry[1:], "--json"])
    assert twice.returncode == 0 and json.loads(twice.stdout)["duplicate"] is True
    history = ok_json(["history", "q-acct"], servers)
    request_id = retry[retry.index("--request-id") + 1]
    assert [(e["kind"], e["amount"], e["memo"]) for e in history
            if e["request_id"] == request_id] == [("deposit", 1234, "rent for May")]
    assert balance_of("q-acct", servers) == 11234


# ------------------------------------------------------------------- import


def run_teller(servers: str, *args: str) -> tuple[int, str]:
    result = invoke(["--servers", servers, *args])
    return result.exit_code, result.output


def test_teller_import_applies_a_file_once_even_when_run_twice(
    servers: str, tmp_path: pathlib.Path
) -> None:
    lines = ["account,kind,amount,memo"]
    lines += [f"imp-{i},open,10.00," for i in range(3)]
    lines += [f"imp-{i % 3},deposit,0.{i % 90 + 10},row {i}" for i in range(2_500)]
    lines += ["imp-0,withdraw,1000000,too much", "imp-1,deposit,abc,", "imp-ghost,deposit,1,"]
    path = tmp_path / "transactions.csv"
    path.write_text("\n".join(lines) + "\n")
    code, output = run_teller(servers, "--json", "import", str(path))
    summary = json.loads(output.strip().splitlines()[-1])
    assert (summary["applied"], summary["refused"], summary["bad-input"],
            summary["not-found"]) == (2_503, 1, 1, 1)
    assert code == 2  # a bad row outranks a refusal
    rows = {p["row"]: p["outcome"] for p in summary["problems"]}
    assert rows == {2_505: "refused", 2_506: "bad-input", 2_507: "not-found"}
    code, output = run_teller(servers, "--json", "import", str(path))
    again = json.loads(output.strip().splitlines()[-1])
    assert (again["applied"], again["duplicates"]) == (0, 2_503)
    with LedgerClient(servers) as bank:
        expected = sum(i % 90 + 10 for i in range(2_500) if i % 3 == 0) + 1_000
        assert bank.balance("imp-0").balance == expected


def test_teller_import_refuses_a_file_without_the_columns(
    servers: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("who,what\nalice,1\n")
    code, output = run_teller(servers, "import", str(path))
    assert code == 2 and "missing: account, kind, amount" in output


# ------------------------------------------------------------------- shell


def test_the_shell_runs_verbs_typed_on_stdin(servers: str) -> None:
    lines = ["open t-shell --opening-balance 1", "deposit t-shell 2.50", "balance t-shell",
             "withdraw t-shell 100", 'deposit t-shell "unclosed', "deposit t-shell -5",
             "frobnicate", "", "history t-shell --limit 5", "help", "balance t-shell --json",
             "quit", "balance t-shell"]
    result = invoke(["--servers", servers, "shell"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "opened t-shell: balance 1.00" in out
    assert "deposited to t-shell: balance 3.50" in out
    assert "t-shell: 3.50 (after operation 1)" in out
    json_lines = [line.removeprefix("teller> ") for line in out.splitlines() if "{" in line]
    assert [json.loads(line) for line in json_lines] == [
        {"account_id": "t-shell", "balance": 350, "position": 2}]
    assert "Exit codes" in out  # help
    assert "insufficient funds" in result.stderr  # errors shown, and the shell went on
    assert "No closing quotation" in result.stderr
    assert "not an amount" in result.stderr
    assert "No such command" in result.stderr
    assert out.count("teller> ") == 12  # nothing read after quit
    assert balance_of("t-shell", servers) == 350


def test_the_shell_ends_at_end_of_input_and_keeps_json(servers: str) -> None:
    ok(["open", "t-shell2"], servers)
    result = invoke(["shell", "--servers", servers, "--json"], input="balance t-shell2\n")
    assert result.exit_code == 0, result.output
    assert '"balance": 0' in result.stdout


def test_teller_import_ids_survive_editing_other_rows_and_resaving(
    servers: str, tmp_path: pathlib.Path
) -> None:
    # Ids came from the whole file's digest: fixing one bad row (or an editor adding a
    # trailing newline) and re-running re-applied every row already imported.
    path = tmp_path / "edits.csv"
    lines = ["account,kind,amount,memo", "edit-a,open,10.00,", "edit-a,deposit,1.00,same",
             "edit-a,deposit,1.00,same", "edit-a,deposit,oops,fix me"]
    path.write_text("\n".join(lines))
    code, output = run_teller(servers, "--json", "import", str(path))
    first = json.loads(output.strip().splitlines()[-1])
    assert (first["applied"], first["bad-input"]) == (3, 1)  # two identical rows both count
    lines[-1] = "edit-a,deposit,2.50,fixed"
    path.write_text("\r\n".join(lines) + "\r\n")  # re-saved with other line endings
    code, output = run_teller(servers, "--json", "import", str(path))
    second = json.loads(output.strip().splitlines()[-1])
    assert code == 0
    assert (second["applied"], second["duplicates"]) == (1, 3)
    assert balance_of("edit-a", servers) == 1_000 + 100 + 100 + 250
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(path.read_text())
    code, output = run_teller(servers, "--json", "import", str(renamed), "--name", "edits.csv")
    assert json.loads(output.strip().splitlines()[-1])["duplicates"] == 4


def test_a_transfer_moves_money_and_each_history_names_the_other_account(servers: str) -> None:
    ok(["open", "t-from", "--opening-balance", "10"], servers)
    ok(["open", "t-to"], servers)
    out = ok(["transfer", "t-from", "t-to", "2.50", "--memo", "lunch", "--request-id", "x1"],
             servers)
    assert "transferred 2.50 from t-from (balance 7.50" in out and "to t-to" in out
    again = ok_json(["transfer", "t-from", "t-to", "2.50", "--memo", "lunch",
                     "--request-id", "x1"], servers)
    assert again["duplicate"] and again["from_balance"] == 750
    assert balance_of("t-to", servers) == 250 and balance_of("t-from", servers) == 750
    assert "to t-to (x1) lunch" in ok(["history", "t-from"], servers)
    assert "from t-from (x1) lunch" in ok(["history", "t-to"], servers)
    [credit] = [e for e in ok_json(["history", "t-to"], servers) if e["kind"] == "transfer_in"]
    assert (credit["counterparty"], credit["request_id"]) == ("t-from", "x1")


def test_transfer_refusals_and_missing_accounts_keep_the_exit_codes(servers: str) -> None:
    ok(["open", "t-short", "--opening-balance", "1"], servers)
    refused = invoke(["--servers", servers, "transfer", "t-short", "t-to-2", "5"])
    assert refused.exit_code == 4, refused.output  # the destination does not exist
    ok(["open", "t-to-2"], servers)
    short = invoke(["--servers", servers, "transfer", "t-short", "t-to-2", "5"])
    assert short.exit_code == 1
    line = one_line_error(short.stderr)
    assert "insufficient funds" in line and "transfer of 5.00" in line
    same = invoke(["--servers", servers, "transfer", "t-short", "t-short", "0.50"])
    assert same.exit_code == 2 and "two accounts" in one_line_error(same.stderr)
    assert balance_of("t-short", servers) == 100 and balance_of("t-to-2", servers) == 0


def test_a_bounced_transfer_is_exit_1_and_the_money_comes_back(servers: str) -> None:
    deposits = MAX_BALANCE // MAX_AMOUNT - 1  # after these the balance is exactly the limit
    with LedgerClient(servers) as bank:
        bank.open_account("t-full", MAX_AMOUNT)
        bank.open_account("t-sender", 500)
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda _: bank.deposit("t-full", MAX_AMOUNT), range(deposits)))
    result = invoke(["--servers", servers, "transfer", "t-sender", "t-full", "1"])
    assert result.exit_code == 1, result.output
    assert "bounced: t-full would have passed the balance limit" in result.stdout
    assert balance_of("t-sender", servers) == 500
    kinds = [e["kind"] for e in ok_json(["history", "t-sender"], servers)]
    assert kinds == ["open", "transfer_out", "transfer_refund"]


def test_teller_import_takes_transfer_rows(servers: str, tmp_path: pathlib.Path) -> None:
    lines = ["account,kind,amount,memo,to_account", "imx-a,open,10.00,,", "imx-b,open,0,,",
             "imx-a,transfer,4.00,rent,imx-b", "imx-a,transfer,1.00,no destination,",
             "imx-a,deposit,1.00,not a transfer,imx-b"]
    path = tmp_path / "transfers.csv"
    path.write_text("\n".join(lines) + "\n")
    code, output = run_teller(servers, "--json", "import", str(path))
    summary = json.loads(output.strip().splitlines()[-1])
    assert (summary["applied"], summary["bad-input"]) == (3, 2), output  # open, then to it
    assert code == 2
    code, output = run_teller(servers, "--json", "import", str(path))
    assert json.loads(output.strip().splitlines()[-1])["duplicates"] == 3
    assert balance_of("imx-b", servers) == 400 and balance_of("imx-a", servers) == 600
