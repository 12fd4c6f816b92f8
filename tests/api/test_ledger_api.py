"""The bank API through real gRPC against a real 3-node cluster of `ledger serve` processes.

Most tests share one cluster (started once per test process) and each uses its own
accounts; the test that kills nodes starts its own cluster.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from ledger.accounts import MAX_AMOUNT, MAX_BALANCE, Applied, NoOp, replay
from ledger.bank.codec import decode_entry
from ledger.client import (
    AccountExists,
    AccountNotFound,
    BalanceLimit,
    InsufficientFunds,
    InvalidRequest,
    LedgerClient,
    Transaction,
    Unavailable,
)
from ledger.security.tls import INSECURE
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from ledger.v1 import replica_pb2, replica_pb2_grpc
from tests.support.nodes import client, converged
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")

STRONG, LOCAL = pb.CONSISTENCY_STRONG, pb.CONSISTENCY_LOCAL
CODE = grpc.StatusCode


# ------------------------------------------------------------------ fixtures


@dataclass
class Node:
    address: str
    channel: grpc.Channel
    stub: pb_grpc.LedgerStub  # the raw public API, for status codes and fields the client hides
    admin: replica_pb2_grpc.AdminStub
    bank: LedgerClient  # the Python client, bound to this node only


@dataclass
class Bank:
    cluster: ProcessCluster
    nodes: list[Node]

    @property
    def addresses(self) -> list[str]:
        return self.cluster.addresses


def connect(cluster: ProcessCluster) -> list[Node]:
    nodes = []
    for index, address in enumerate(cluster.addresses):
        channel = cluster.security.channel(address)
        nodes.append(Node(address, channel, pb_grpc.LedgerStub(channel),
                          replica_pb2_grpc.AdminStub(channel), client(cluster, index)))
    return nodes


def disconnect(nodes: list[Node]) -> None:
    for node in nodes:
        node.bank.close()
        node.channel.close()


@pytest.fixture(scope="session")
def bank(shared_cluster: ProcessCluster) -> Iterator[Bank]:
    nodes = connect(shared_cluster)
    try:
        yield Bank(shared_cluster, nodes)
    finally:
        disconnect(nodes)


# ------------------------------------------------------------------- helpers


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def expect_status(code: grpc.StatusCode, call: Callable[[], object], *fragments: str) -> str:
    """Assert `call` fails with `code` and a message holding every fragment; return it."""
    error = rpc_error(call)
    assert error.code() == code, f"{error.code()}: {error.details()}"
    details = error.details() or ""
    for fragment in fragments:
        assert fragment in details, f"{fragment!r} not in {details!r}"
    return details


def chosen_through(node: Node, account: str) -> int:
    reply = node.admin.Log(replica_pb2.LogRequest(account=account, limit=1), timeout=5)
    return reply.chosen_through


def log_values(node: Node, account: str) -> list[bytes]:
    """The account's whole chosen log as this node holds it (Admin.Log, no consensus)."""
    values: list[bytes] = []
    while True:
        reply = node.admin.Log(replica_pb2.LogRequest(
            account=account, from_slot=len(values), limit=1_000), timeout=5)
        values.extend(reply.values)
        if len(values) > reply.chosen_through or not reply.values:
            return values


def status_balances(node: Node) -> dict[str, tuple[int, bool, int, int]]:
    """account -> (balance, opened, applied_slot, chosen_through), from Admin.Status."""
    result: dict[str, tuple[int, bool, int, int]] = {}
    after = ""
    while True:
        page = node.admin.Status(replica_pb2.StatusRequest(after=after), timeout=5)
        for a in page.accounts:
            result[a.account] = (a.balance, a.opened, a.applied_slot, a.chosen_through)
        if page.complete or not page.accounts:
            return result
        after = page.accounts[-1].account


def history(node: Node, account: str, consistency: int = STRONG) -> list[pb.Entry]:
    """The account's whole public history through one node, a page of 1000 at a time."""
    entries: list[pb.Entry] = []
    while True:
        reply = node.stub.GetHistory(pb.GetHistoryRequest(
            account_id=account, from_position=len(entries), limit=1_000,
            consistency=consistency), timeout=10)
        entries.extend(reply.entries)
        if len(reply.entries) < 1_000:
            return entries


def strong_balance(node: Node, account: str) -> pb.BalanceReply:
    return node.stub.GetBalance(pb.GetBalanceRequest(account_id=account, consistency=STRONG),
                                timeout=10)


@dataclass(frozen=True)
class Snapshot:
    """Everything a request could have changed about an account."""

    chosen_through: int  # the same on every node
    balance: int
    position: int
    history: tuple[bytes, ...]


def settled_chosen_through(bank: Bank, account: str) -> int:
    """The end of the account's chosen log, once every node holds the same one."""
    def agreed() -> tuple[int] | None:
        ends = {chosen_through(node, account) for node in bank.nodes}
        return (ends.pop(),) if len(ends) == 1 else None

    return eventually(agreed, what=f"every node holds the same log of {account!r}")[0]


def snapshot(bank: Bank, account: str) -> Snapshot:
    reply = strong_balance(bank.nodes[0], account)
    entries = history(bank.nodes[1], account)
    return Snapshot(settled_chosen_through(bank, account), reply.balance, reply.position,
                    tuple(e.SerializeToString() for e in entries))


def never_written(bank: Bank, account: str) -> None:
    """No node holds any chosen position for `account`, and it is not listed anywhere."""
    for node in bank.nodes:
        assert chosen_through(node, account) == -1
        assert account not in node.bank.list_accounts(limit=1_000)


def open_account(bank: Bank, account: str, opening: int, node: int = 0) -> Transaction:
    return bank.nodes[node].bank.open_account(account, opening, request_id=f"open-{account}")


def replayed_balance(entries: list[pb.Entry]) -> int:
    """Recompute the balance from a public history, checking each balance_after on the way."""
    balance = 0
    for position, entry in enumerate(entries):
        assert entry.position == position, "history positions are 0, 1, 2, ... without gaps"
        if not entry.rejected:
            if entry.kind == pb.ENTRY_KIND_WITHDRAWAL:
                balance -= entry.amount
            else:
                balance += entry.amount
        assert 0 <= balance <= MAX_BALANCE
        assert entry.balance_after == balance
    return balance


# ------------------------------------------------------------ the happy path


def test_open_deposit_withdraw_and_read_back(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    opened = n0.stub.OpenAccount(pb.OpenAccountRequest(
        account_id="alice", opening_balance=10_000, request_id="alice-open"), timeout=10)
    assert (opened.account_id, opened.position, opened.balance, opened.duplicate) == (
        "alice", 0, 10_000, False)
    deposited = n1.stub.Deposit(pb.DepositRequest(
        account_id="alice", amount=2_500, request_id="alice-salary", memo="salary"), timeout=10)
    assert (deposited.position, deposited.balance, deposited.duplicate) == (1, 12_500, False)
    withdrawn = n2.bank.withdraw("alice", 12_500, memo="everything", request_id="alice-all")
    assert (withdrawn.position, withdrawn.balance, withdrawn.duplicate) == (2, 0, False)
    assert withdrawn.request_id == "alice-all"

    balance = n0.stub.GetBalance(pb.GetBalanceRequest(account_id="alice"), timeout=10)
    assert (balance.account_id, balance.balance, balance.position) == ("alice", 0, 2)
    reply = n1.stub.GetHistory(pb.GetHistoryRequest(account_id="alice"), timeout=10)
    assert reply.account_id == "alice"
    assert [(e.position, e.kind, e.amount, e.balance_after, e.request_id, e.memo, e.rejected)
            for e in reply.entries] == [
        (0, pb.ENTRY_KIND_OPEN, 10_000, 10_000, "alice-open", "", False),
        (1, pb.ENTRY_KIND_DEPOSIT, 2_500, 12_500, "alice-salary", "salary", False),
        (2, pb.ENTRY_KIND_WITHDRAWAL, 12_500, 0, "alice-all", "everything", False),
    ]
    assert all(e.recorded_at_ms > 1_600_000_000_000 for e in reply.entries)
    entries = n2.bank.history("alice")
    assert [(e.kind, e.memo) for e in entries] == [("open", ""), ("deposit", "salary"),
                                                   ("withdrawal", "everything")]


def test_the_largest_allowed_values_are_accepted(bank: Bank) -> None:
    n0 = bank.nodes[0]
    big = "b" * 64
    opened = n0.bank.open_account(big, MAX_AMOUNT, request_id="~" * 64)
    assert (opened.position, opened.balance) == (0, MAX_AMOUNT)
    done = n0.bank.deposit(big, MAX_AMOUNT, memo="m" * 200,
                           request_id="a b!\"#$%&'()*+,-./:;<=>?@[")
    assert done.balance == 2 * MAX_AMOUNT
    done = n0.bank.withdraw(big, MAX_AMOUNT, request_id="\\]^_`{|}")
    assert done.balance == MAX_AMOUNT
    zero = n0.bank.open_account("a.B-9_z", 0)
    assert (zero.position, zero.balance) == (0, 0)
    assert [e.memo for e in n0.bank.history(big)][1] == "m" * 200


# ------------------------------------------------------------ INVALID_ARGUMENT

VALID = "valid-acct"


def bad_requests() -> list[Any]:
    """(method, request, fragment of the message) for every malformed request."""
    d, w = pb.DepositRequest, pb.WithdrawRequest
    cases: list[tuple[str, str, Any, str]] = [
        ("deposit-empty-account", "Deposit", d(account_id="", amount=1, request_id="x"),
         "account id"),
        ("deposit-65-char-account", "Deposit", d(account_id="a" * 65, amount=1, request_id="x"),
         "1-64 characters"),
        ("deposit-space-in-account", "Deposit", d(account_id="bad id", amount=1, request_id="x"),
         "account id"),
        ("withdraw-slash-in-account", "Withdraw",
         w(account_id="bad/id", amount=1, request_id="x"), "account id"),
        ("withdraw-unicode-account", "Withdraw",
         w(account_id="caf\u00e9", amount=1, request_id="x"), "account id"),
        ("balance-bad-account", "GetBalance", pb.GetBalanceRequest(account_id="a:b"),
         "account id"),
        ("history-bad-account", "GetHistory", pb.GetHistoryRequest(account_id="a\nb"),
         "account id"),
        ("deposit-zero", "Deposit", d(account_id=VALID, amount=0, request_id="x"), "amount 0"),
        ("deposit-negative", "Deposit", d(account_id=VALID, amount=-5, request_id="x"),
         "amount -5"),
        ("deposit-too-large", "Deposit",
         d(account_id=VALID, amount=MAX_AMOUNT + 1, request_id="x"), str(MAX_AMOUNT)),
        ("withdraw-zero", "Withdraw", w(account_id=VALID, amount=0, request_id="x"), "amount"),
        ("withdraw-negative", "Withdraw", w(account_id=VALID, amount=-1, request_id="x"),
         "amount -1"),
        ("withdraw-too-large", "Withdraw",
         w(account_id=VALID, amount=MAX_AMOUNT + 1, request_id="x"), "amount"),
        ("deposit-memo-201", "Deposit",
         d(account_id=VALID, amount=1, request_id="x", memo="m" * 201), "memo"),
        ("withdraw-memo-201", "Withdraw",
         w(account_id=VALID, amount=1, request_id="x", memo="m" * 201), "at most 200"),
        ("deposit-missing-request-id", "Deposit", d(account_id=VALID, amount=1),
         "request id"),
        ("withdraw-65-char-request-id", "Withdraw",
         w(account_id=VALID, amount=1, request_id="r" * 65), "1-64 printable ASCII"),
        ("deposit-newline-request-id", "Deposit",
         d(account_id=VALID, amount=1, request_id="r\n1"), "request id"),
        ("deposit-unicode-request-id", "Deposit",
         d(account_id=VALID, amount=1, request_id="r\u00e9"), "request id"),
        ("history-limit-1001", "GetHistory", pb.GetHistoryRequest(account_id=VALID, limit=1_001),
         "limit 1001"),
        ("open-existing-bad-request-id", "OpenAccount",
         pb.OpenAccountRequest(account_id=VALID, opening_balance=5), "request id"),
    ]
    return [pytest.param(method, request, fragment, id=name)
            for name, method, request, fragment in cases]


@pytest.fixture(scope="session")
def valid_account(bank: Bank) -> str:
    open_account(bank, VALID, 1_000)
    bank.nodes[1].bank.deposit(VALID, 5, request_id="valid-dep")
    return VALID


@pytest.mark.parametrize(("method", "request_", "fragment"), bad_requests())
def test_malformed_requests_are_invalid_and_write_nothing(
    bank: Bank, valid_account: str, method: str, request_: Any, fragment: str,
) -> None:
    before = snapshot(bank, valid_account)
    for node in bank.nodes:
        call = getattr(node.stub, method)
        expect_status(CODE.INVALID_ARGUMENT, lambda call=call: call(request_, timeout=10),
                      fragment)
    assert snapshot(bank, valid_account) == before


@pytest.mark.parametrize(("opening", "request_id", "fragment"), [
    (-1, "r", "opening balance -1"),
    (MAX_AMOUNT + 1, "r", "opening balance"),
    (5, "", "request id"),
    (5, "x" * 65, "request id"),
    (5, "tab\t", "request id"),
])
def test_malformed_opens_are_invalid_and_write_nothing(
    bank: Bank, opening: int, request_id: str, fragment: str,
) -> None:
    account = f"never-opened-{abs(opening) % 97}-{len(request_id)}"
    for node in bank.nodes:
        expect_status(CODE.INVALID_ARGUMENT, lambda node=node: node.stub.OpenAccount(
            pb.OpenAccountRequest(account_id=account, opening_balance=opening,
                                  request_id=request_id), timeout=10), fragment)
    never_written(bank, account)
    for bad in ("", "a" * 65, "no spaces"):
        expect_status(CODE.INVALID_ARGUMENT, lambda bad=bad: bank.nodes[0].stub.OpenAccount(
            pb.OpenAccountRequest(account_id=bad, opening_balance=1, request_id="r"),
            timeout=10), "account id")
        for node in bank.nodes:
            assert bad not in node.bank.list_accounts(limit=1_000)


def test_list_accounts_limit_is_checked(bank: Bank) -> None:
    expect_status(CODE.INVALID_ARGUMENT, lambda: bank.nodes[0].stub.ListAccounts(
        pb.ListAccountsRequest(limit=1_001), timeout=10), "limit")


def test_the_client_raises_invalid_request(bank: Bank) -> None:
    with pytest.raises(InvalidRequest, match="amount") as failure:
        bank.nodes[0].bank.deposit("whatever", 0, request_id="req-1")
    assert failure.value.request_id == "req-1"
    with pytest.raises(InvalidRequest, match="memo"):
        bank.nodes[1].bank.withdraw("whatever", 1, memo="x" * 201)
    with pytest.raises(InvalidRequest, match="limit"):
        bank.nodes[2].bank.history("whatever", limit=5_000)
    never_written(bank, "whatever")


# ------------------------------------------------------------------ NOT_FOUND


def test_an_account_never_opened_is_not_found_and_nothing_is_written(bank: Bank) -> None:
    ghost = "ghost"
    for node in bank.nodes:
        for call in (
            lambda n=node: n.stub.Deposit(pb.DepositRequest(
                account_id=ghost, amount=5, request_id="g1"), timeout=10),
            lambda n=node: n.stub.Withdraw(pb.WithdrawRequest(
                account_id=ghost, amount=5, request_id="g2"), timeout=10),
            lambda n=node: n.stub.GetBalance(pb.GetBalanceRequest(account_id=ghost), timeout=10),
            lambda n=node: n.stub.GetBalance(pb.GetBalanceRequest(
                account_id=ghost, consistency=LOCAL), timeout=10),
            lambda n=node: n.stub.GetHistory(pb.GetHistoryRequest(account_id=ghost), timeout=10),
            lambda n=node: n.stub.GetHistory(pb.GetHistoryRequest(
                account_id=ghost, consistency=LOCAL), timeout=10),
        ):
            expect_status(CODE.NOT_FOUND, call, "'ghost'", "does not exist")
    with pytest.raises(AccountNotFound, match="ghost") as failure:
        bank.nodes[0].bank.deposit(ghost, 1, request_id="g3")
    assert failure.value.request_id == "g3"
    with pytest.raises(AccountNotFound):
        bank.nodes[1].bank.balance(ghost)
    never_written(bank, ghost)


def test_an_account_opened_through_one_node_is_never_not_found_through_another(
    bank: Bank,
) -> None:
    for i in range(12):
        account = f"fresh-{i}"
        opener, reader, writer = (bank.nodes[(i + k) % 3] for k in range(3))
        opener.bank.open_account(account, 100 + i)
        # Immediately, through the other two nodes: a STRONG read and a write both find it.
        if i % 2:
            assert strong_balance(reader, account).balance == 100 + i
            done = writer.bank.deposit(account, 1)
        else:
            done = writer.bank.deposit(account, 1)
            assert [e.position for e in history(reader, account)] == [0, 1]
        assert (done.position, done.balance) == (1, 101 + i)


# ------------------------------------------------------------- ALREADY_EXISTS


def test_opening_an_open_account_under_another_request_id_already_exists(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    n0.bank.open_account("taken", 100, request_id="taken-1")
    before = snapshot(bank, "taken")
    for node in (n0, n1, n2):
        expect_status(CODE.ALREADY_EXISTS, lambda node=node: node.stub.OpenAccount(
            pb.OpenAccountRequest(account_id="taken", opening_balance=100,
                                  request_id="taken-2"), timeout=10),
            "'taken'", "already open")
    with pytest.raises(AccountExists, match="already open"):
        n2.bank.open_account("taken", 7)
    assert snapshot(bank, "taken") == before


def test_reusing_a_request_id_with_other_fields_already_exists(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    n0.bank.open_account("reuse", 100, request_id="reuse-open")
    n1.bank.deposit("reuse", 10, memo="lunch", request_id="reuse-d")
    with pytest.raises(InsufficientFunds):
        n2.bank.withdraw("reuse", 500, request_id="reuse-refused")
    before = snapshot(bank, "reuse")
    other_fields = [
        ("Deposit", pb.DepositRequest(account_id="reuse", amount=11, memo="lunch",
                                      request_id="reuse-d")),  # amount
        ("Deposit", pb.DepositRequest(account_id="reuse", amount=10, memo="dinner",
                                      request_id="reuse-d")),  # memo
        ("Withdraw", pb.WithdrawRequest(account_id="reuse", amount=10, memo="lunch",
                                        request_id="reuse-d")),  # kind
        ("OpenAccount", pb.OpenAccountRequest(account_id="reuse", opening_balance=10,
                                              request_id="reuse-d")),  # kind
        ("Deposit", pb.DepositRequest(account_id="reuse", amount=100,
                                      request_id="reuse-open")),  # kind, reusing the open's id
        ("OpenAccount", pb.OpenAccountRequest(account_id="reuse", opening_balance=99,
                                              request_id="reuse-open")),  # opening balance
        ("Withdraw", pb.WithdrawRequest(account_id="reuse", amount=499,
                                        request_id="reuse-refused")),  # a refused one's amount
    ]
    for index, (method, request) in enumerate(other_fields):
        node = bank.nodes[index % 3]
        call = getattr(node.stub, method)
        expect_status(CODE.ALREADY_EXISTS, lambda call=call, request=request: call(
            request, timeout=10), "request id", "already used", "new request id")
    with pytest.raises(AccountExists, match="already used"):
        n0.bank.deposit("reuse", 12, memo="lunch", request_id="reuse-d")
    assert snapshot(bank, "reuse") == before


# ------------------------------------------------------------ idempotent retries


def test_opening_twice_with_one_request_id_is_a_duplicate(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    first = n0.bank.open_account("twice", 300, request_id="twice-open")
    assert (first.position, first.balance, first.duplicate) == (0, 300, False)
    n1.bank.deposit("twice", 50, request_id="dep-twice")
    for node in (n0, n1, n2):
        again = node.bank.open_account("twice", 300, request_id="twice-open")
        assert (again.account_id, again.position, again.balance, again.duplicate) == (
            "twice", 0, 300, True)
    assert [e.request_id for e in history(n2, "twice")] == ["twice-open", "dep-twice"]
    assert settled_chosen_through(bank, "twice") == 1  # the open and one deposit


def test_a_retried_deposit_is_applied_once(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    n0.bank.open_account("retry", 0, request_id="retry-open")
    first = n0.bank.deposit("retry", 25, memo="m", request_id="retry-1")
    assert (first.position, first.balance, first.duplicate) == (1, 25, False)
    later = n1.bank.deposit("retry", 5, request_id="retry-2")
    assert (later.position, later.balance) == (2, 30)
    for node in (n0, n1, n2, n0):
        reply = node.stub.Deposit(pb.DepositRequest(
            account_id="retry", amount=25, memo="m", request_id="retry-1"), timeout=10)
        # The original position and the balance right after it, not today's balance.
        assert (reply.position, reply.balance, reply.duplicate) == (1, 25, True)
    assert strong_balance(n2, "retry").balance == 30
    entries = history(n1, "retry")
    assert [e.request_id for e in entries] == ["retry-open", "retry-1", "retry-2"]
    assert replayed_balance(entries) == 30
    assert settled_chosen_through(bank, "retry") == 2  # the retries wrote nothing


def test_simultaneous_retries_through_every_node_apply_once(bank: Bank) -> None:
    bank.nodes[0].bank.open_account("echo", 0)
    for round_ in range(3):
        request_id = f"echo-{round_}"
        start = threading.Barrier(6)

        def send(index: int, request_id: str = request_id,
                 start: threading.Barrier = start) -> Transaction:
            start.wait()
            return bank.nodes[index % 3].bank.deposit("echo", 10, request_id=request_id)

        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(send, range(6)))
        assert {(r.position, r.balance) for r in replies} == {(round_ + 1, 10 * (round_ + 1))}
        # Exactly one reply says it wrote the entry (every proposal carries a nonce, so
        # two nodes proposing the same operation never both see "our value was chosen").
        assert sum(not r.duplicate for r in replies) == 1
    entries = history(bank.nodes[1], "echo")
    assert [e.request_id for e in entries[1:]] == ["echo-0", "echo-1", "echo-2"]
    assert replayed_balance(entries) == 30


def test_a_refused_withdrawal_is_recorded_once_and_refused_again_on_retry(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    n0.bank.open_account("poor", 100)
    details = expect_status(CODE.FAILED_PRECONDITION, lambda: n1.stub.Withdraw(
        pb.WithdrawRequest(account_id="poor", amount=150, request_id="poor-w"), timeout=10),
        "insufficient funds", "balance of 100", "withdrawal of 150")
    assert "'poor'" in details
    assert strong_balance(n2, "poor").balance == 100
    (refused,) = [e for e in history(n2, "poor") if e.request_id == "poor-w"]
    assert (refused.position, refused.kind, refused.amount, refused.balance_after,
            refused.rejected, refused.reject_reason) == (
        1, pb.ENTRY_KIND_WITHDRAWAL, 150, 100, True, "insufficient funds")

    topped_up = n2.bank.deposit("poor", 100)
    assert (topped_up.position, topped_up.balance) == (2, 200)
    for node in (n0, n1, n2):
        with pytest.raises(InsufficientFunds) as failure:
            node.bank.withdraw("poor", 150, request_id="poor-w")
        assert (failure.value.balance, failure.value.amount, failure.value.position) == (
            100, 150, 1)
        assert failure.value.request_id == "poor-w"
        assert "balance of 100" in str(failure.value)
    entries = history(n0, "poor")
    assert [e.request_id for e in entries].count("poor-w") == 1
    assert [(e.position, e.rejected) for e in entries] == [(0, False), (1, True), (2, False)]
    assert replayed_balance(entries) == 200 == strong_balance(n1, "poor").balance
    # The balance may reach exactly zero.
    assert n1.bank.withdraw("poor", 200).balance == 0
    with pytest.raises(InsufficientFunds):
        n2.bank.withdraw("poor", 1)
    assert settled_chosen_through(bank, "poor") == 4  # one log position per operation


def test_a_deposit_past_the_balance_limit_is_refused(bank: Bank) -> None:
    n0, n1, _ = bank.nodes
    n0.bank.open_account("whale", MAX_AMOUNT)
    deposits = MAX_BALANCE // MAX_AMOUNT - 1

    def deposit(i: int) -> Transaction:
        return n0.bank.deposit("whale", MAX_AMOUNT, request_id=f"whale-{i}")

    with ThreadPoolExecutor(24) as pool:
        done = list(pool.map(deposit, range(deposits)))
    assert sorted(t.position for t in done) == list(range(1, deposits + 1))
    assert max(t.balance for t in done) == MAX_BALANCE  # exactly the limit is allowed
    details = expect_status(CODE.FAILED_PRECONDITION, lambda: n1.stub.Deposit(
        pb.DepositRequest(account_id="whale", amount=1, request_id="whale-over"), timeout=10),
        "balance limit", str(MAX_BALANCE))
    assert "deposit of 1" in details
    n1.bank.withdraw("whale", MAX_AMOUNT)
    with pytest.raises(BalanceLimit) as failure:
        n0.bank.deposit("whale", 1, request_id="whale-over")  # the refusal is final
    assert (failure.value.balance, failure.value.amount) == (MAX_BALANCE, 1)
    entries = history(n1, "whale")
    assert [(e.rejected, e.reject_reason) for e in entries if e.request_id == "whale-over"] == [
        (True, "balance limit")]
    assert replayed_balance(entries) == MAX_BALANCE - MAX_AMOUNT


# ------------------------------------------------------------------ concurrency


def test_concurrent_opens_through_two_nodes_one_wins(bank: Bank) -> None:
    for round_ in range(4):
        account = f"race-{round_}"
        start = threading.Barrier(2)
        results: dict[int, Transaction | Exception] = {}

        def open_through(index: int, account: str = account,
                         start: threading.Barrier = start,
                         results: dict[int, Transaction | Exception] = results) -> None:
            start.wait()
            try:
                results[index] = bank.nodes[index].bank.open_account(
                    account, 10 + index, request_id=f"{account}-by-{index}")
            except Exception as error:
                results[index] = error

        threads = [threading.Thread(target=open_through, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        won = [i for i, r in results.items() if isinstance(r, Transaction)]
        lost = [i for i, r in results.items() if isinstance(r, AccountExists)]
        assert len(won) == 1 and len(lost) == 1, results
        winner = results[won[0]]
        assert isinstance(winner, Transaction)
        assert (winner.position, winner.balance, winner.duplicate) == (0, 10 + won[0], False)
        entries = history(bank.nodes[2], account)
        assert [(e.position, e.request_id) for e in entries] == [(0, f"{account}-by-{won[0]}")]


def test_concurrent_withdrawals_through_three_nodes_never_overdraw(bank: Bank) -> None:
    opening = 1_500
    bank.nodes[0].bank.open_account("contended", opening)
    rng = random.Random(7)
    plans = [[(f"c{t}-{i}", rng.randint(1, 100)) for i in range(30)] for t in range(3)]
    assert sum(amount for plan in plans for _, amount in plan) > opening
    outcomes: dict[str, tuple[int, Transaction | InsufficientFunds]] = {}
    failures: list[BaseException] = []

    def withdraw_all(thread: int) -> None:
        node = bank.nodes[thread]
        for request_id, amount in plans[thread]:
            try:
                outcomes[request_id] = (amount, node.bank.withdraw(
                    "contended", amount, request_id=request_id))
            except InsufficientFunds as refusal:
                outcomes[request_id] = (amount, refusal)
            except BaseException as error:  # every call must get a definite answer
                failures.append(error)
                return

    threads = [threading.Thread(target=withdraw_all, args=(t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(outcomes) == 90

    entries = history(bank.nodes[1], "contended")
    assert len(entries) == 91, "the open and every withdrawal, each at one position"
    by_request = {e.request_id: e for e in entries}
    assert len(by_request) == 91, "every request id appears exactly once"
    succeeded = {rid: r for rid, (_, r) in outcomes.items() if isinstance(r, Transaction)}
    refused = {rid: r for rid, (_, r) in outcomes.items() if isinstance(r, InsufficientFunds)}
    assert succeeded and refused
    assert len({t.position for t in succeeded.values()}) == len(succeeded)
    for request_id, done in succeeded.items():
        entry = entries[done.position]
        assert (entry.request_id, entry.rejected, entry.balance_after, entry.amount) == (
            request_id, False, done.balance, outcomes[request_id][0])
        assert not done.duplicate
    for request_id, refusal in refused.items():
        entry = by_request[request_id]
        assert entry.rejected and entry.reject_reason == "insufficient funds"
        assert (entry.position, entry.balance_after, entry.amount) == (
            refusal.position, refusal.balance, refusal.amount)
        assert entry.amount > entry.balance_after
    final = replayed_balance(entries)
    assert final == opening - sum(outcomes[rid][0] for rid in succeeded) >= 0
    for node in bank.nodes:
        assert strong_balance(node, "contended").balance == final


def test_a_strong_read_sees_a_write_acknowledged_through_another_node(bank: Bank) -> None:
    bank.nodes[0].bank.open_account("linear", 0)
    for i in range(30):
        writer, reader = bank.nodes[i % 3], bank.nodes[(i + 1 + i // 3 % 2) % 3]
        assert writer is not reader
        done = writer.bank.deposit("linear", 1, request_id=f"linear-{i}")
        seen = strong_balance(reader, "linear")
        assert (seen.balance, seen.position) == (done.balance, done.position) == (i + 1, i + 1)
        reply = reader.stub.GetHistory(pb.GetHistoryRequest(
            account_id="linear", from_position=done.position), timeout=10)
        assert [e.request_id for e in reply.entries] == [f"linear-{i}"]
    # UNSPECIFIED consistency means STRONG.
    unspecified = bank.nodes[2].stub.GetBalance(pb.GetBalanceRequest(account_id="linear"),
                                                timeout=10)
    assert (unspecified.balance, unspecified.position) == (30, 30)


# ------------------------------------------------------------------ reads


def test_local_reads_report_how_far_they_have_applied(bank: Bank) -> None:
    n0 = bank.nodes[0]
    n0.bank.open_account("local", 5)
    for i in range(4):
        done = n0.bank.deposit("local", 10, request_id=f"local-{i}")
    assert (done.position, done.balance) == (4, 45)
    # The node that decided the writes has applied them before it answered.
    local = n0.bank.balance("local", local=True)
    assert (local.balance, local.position) == (45, 4)
    assert [e.position for e in n0.bank.history("local", local=True)] == [0, 1, 2, 3, 4]
    # The others catch up without client help; LOCAL says how far they are (and, until
    # a replica has learned slot 0, that the account does not exist there yet).
    def applied_everything(node: Node) -> bool:
        try:
            return node.bank.balance("local", local=True).position == 4
        except AccountNotFound:
            return False

    for node in bank.nodes[1:]:
        eventually(lambda node=node: applied_everything(node),
                   what=f"{node.address} applies the writes")
        reply = node.stub.GetBalance(pb.GetBalanceRequest(account_id="local",
                                                          consistency=LOCAL), timeout=10)
        assert (reply.account_id, reply.balance, reply.position) == ("local", 45, 4)
        assert len(history(node, "local", LOCAL)) == 5


def test_history_paging(bank: Bank) -> None:
    n0, n1, n2 = bank.nodes
    n0.bank.open_account("pages", 0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: n0.bank.deposit("pages", 1, request_id=f"pages-{i}"),
                      range(149)))

    def positions(node: Node, from_position: int, limit: int,
                  consistency: int = STRONG) -> list[int]:
        reply = node.stub.GetHistory(pb.GetHistoryRequest(
            account_id="pages", from_position=from_position, limit=limit,
            consistency=consistency), timeout=10)
        return [e.position for e in reply.entries]

    assert positions(n1, 0, 0) == list(range(100))  # limit 0 means 100
    assert positions(n2, 100, 0) == list(range(100, 150))
    assert positions(n0, 0, 1_000) == list(range(150))
    assert positions(n0, 0, 1, LOCAL) == [0]
    paged: list[int] = []
    while True:
        page = positions(bank.nodes[len(paged) % 3], len(paged), 40)
        if not page:
            break
        paged.extend(page)
    assert paged == list(range(150))
    assert positions(n1, 149, 10) == [149]
    assert positions(n1, 150, 10) == []
    assert positions(n2, 10**15, 10) == []
    entries = n1.bank.history("pages", from_position=140, limit=5)
    assert [e.request_id.startswith("pages-") for e in entries] == [True] * 5
    assert [e.position for e in entries] == [140, 141, 142, 143, 144]


def test_list_accounts_is_sorted_and_paged(bank: Bank) -> None:
    n0 = bank.nodes[0]
    names = ["ls-c", "ls-a", "ls-b_2", "ls-a.1", "ls-B", "ls-0"]
    for name in names:
        n0.bank.open_account(name, 1)

    def listed(node: Node, page: int) -> list[str]:
        found: list[str] = []
        after = "ls-"
        while True:
            reply = node.stub.ListAccounts(pb.ListAccountsRequest(after=after, limit=page),
                                           timeout=10)
            ids = list(reply.account_ids)
            assert len(ids) <= page
            found.extend(i for i in ids if i.startswith("ls-"))
            if len(ids) < page or not ids[-1].startswith("ls-"):
                return found
            after = ids[-1]

    assert listed(n0, 2) == sorted(names)
    assert listed(n0, 1) == sorted(names)
    everything = n0.bank.list_accounts(limit=1_000)
    assert everything == sorted(set(everything))
    assert n0.bank.list_accounts(after="ls-a", limit=2) == ["ls-a.1", "ls-b_2"]
    assert len(n0.bank.list_accounts()) == min(100, len(everything))  # limit 0 means 100
    assert "ghost" not in everything
    for node in bank.nodes[1:]:  # from each node's own knowledge, once it has caught up
        eventually(lambda node=node: listed(node, 4) == sorted(names),
                   what=f"{node.address} lists the new accounts")


def test_replaying_the_log_reproduces_the_cached_balance_on_every_replica(bank: Bank) -> None:
    rng = random.Random(2024)
    accounts = [f"replay-{i}" for i in range(4)]
    expected: dict[str, int] = {}
    for account in accounts:
        opening = rng.randint(0, 500)
        rng.choice(bank.nodes).bank.open_account(account, opening)
        expected[account] = opening

    def operate(seed: int) -> None:
        local_rng = random.Random(seed)
        for _ in range(25):
            account = local_rng.choice(accounts)
            node = local_rng.choice(bank.nodes)
            amount = local_rng.randint(1, 300)
            if local_rng.random() < 0.5:
                node.bank.deposit(account, amount)
                with lock:
                    expected[account] += amount
            else:
                try:
                    node.bank.withdraw(account, amount)
                except InsufficientFunds:
                    continue
                with lock:
                    expected[account] -= amount

    lock = threading.Lock()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(operate, [rng.randrange(2**32) for _ in range(3)]))
    eventually(lambda: converged(bank.cluster), what="the replicas converge")
    for node in bank.nodes:
        statuses = status_balances(node)
        for account in accounts:
            values = log_values(node, account)
            state, verdicts = replay(decode_entry(value) for value in values)
            assert state.balance == expected[account]
            balance, opened, applied, chosen = statuses[account]
            assert opened and (balance, applied, chosen) == (state.balance, len(values) - 1,
                                                             len(values) - 1)
            local = node.bank.balance(account, local=True)
            assert (local.balance, local.position) == (state.balance, state.operations - 1)
            numbered = [v for v in verdicts if not isinstance(v, NoOp)]
            entries = history(node, account, LOCAL)
            assert [(e.position, e.balance_after, e.rejected) for e in entries] == [
                (v.position, v.balance, not isinstance(v, Applied)) for v in numbered]


# ------------------------------------------------------------------ the client


def test_the_client_fails_over_and_reuses_the_request_id(bank: Bank) -> None:
    nowhere = "127.0.0.1:1"  # nothing listens there: the call fails at once, UNAVAILABLE
    with LedgerClient([nowhere, bank.addresses[1]], security=bank.cluster.security) as failover:
        failover.open_account("failover", 10)
        done = failover.deposit("failover", 5)
        assert (done.position, done.balance, done.duplicate) == (1, 15, False)
        assert len(done.request_id) >= 16  # chosen by the client when not given
        entries = history(bank.nodes[2], "failover")
        assert [e.request_id for e in entries][1] == done.request_id
        again = failover.deposit("failover", 5, request_id=done.request_id)
        assert (again.position, again.balance, again.duplicate) == (1, 15, True)
        assert failover.balance("failover").balance == 15
    with (LedgerClient(nowhere, timeout_s=0.5, security=INSECURE) as dead,
          pytest.raises(Unavailable) as failure):
        dead.withdraw("failover", 1, request_id="nowhere-1")
    assert failure.value.request_id == "nowhere-1"
    assert "retrying with request id 'nowhere-1' is safe" in str(failure.value)


# ------------------------------------------------------------ without a majority


def test_without_a_majority_calls_fail_unavailable_before_the_deadline(
    own_cluster: ProcessCluster,
) -> None:
    cluster = own_cluster
    nodes = connect(cluster)
    try:
        n0 = nodes[0]
        n0.bank.open_account("alone", 100, request_id="alone-open")
        cluster.kill(1)
        cluster.kill(2)
        # The client gives up after its deadline and says which request id to retry.
        pool = ThreadPoolExecutor(1)
        impatient = client(cluster, 0, timeout_s=2)
        during = pool.submit(impatient.deposit, "alone", 7, request_id="during")
        # Raw stubs with a 2 s deadline: the server must answer UNAVAILABLE itself.
        calls = [
            n0.stub.Deposit.future(pb.DepositRequest(
                account_id="alone", amount=5, request_id="raw-deposit"), timeout=2),
            n0.stub.Withdraw.future(pb.WithdrawRequest(
                account_id="alone", amount=5, request_id="raw-withdraw"), timeout=2),
            n0.stub.OpenAccount.future(pb.OpenAccountRequest(
                account_id="newcomer", opening_balance=1, request_id="raw-open"),
                timeout=2),
            n0.stub.Deposit.future(pb.DepositRequest(
                account_id="unknown", amount=5, request_id="raw-unknown"), timeout=2),
            n0.stub.GetBalance.future(pb.GetBalanceRequest(account_id="alone"), timeout=2),
            n0.stub.GetHistory.future(pb.GetHistoryRequest(account_id="alone"), timeout=2),
        ]
        for call in calls:
            error = call.exception()
            assert isinstance(error, grpc.RpcError)
            assert error.code() == CODE.UNAVAILABLE, f"{error.code()}: {error.details()}"
            assert error.details()
        writes = [call.exception() for call in calls[:3]]
        for error in writes:
            assert "retrying with the same request id is safe" in error.details()
        with pytest.raises(Unavailable, match="may or may not") as failure:
            during.result()
        assert failure.value.request_id == "during"
        pool.shutdown()
        impatient.close()
        # What needs no majority still works: validation, and LOCAL reads.
        expect_status(CODE.INVALID_ARGUMENT, lambda: n0.stub.Deposit(pb.DepositRequest(
            account_id="alone", amount=0, request_id="x"), timeout=2), "amount")
        local = n0.stub.GetBalance(pb.GetBalanceRequest(account_id="alone",
                                                        consistency=LOCAL), timeout=2)
        assert (local.balance, local.position) == (100, 0)

        cluster.start_node(1)
        # Retrying with the same ids is safe: each lands exactly once, whichever attempt.
        retried = {
            "during": n0.bank.deposit("alone", 7, request_id="during"),
            "raw-deposit": n0.bank.deposit("alone", 5, request_id="raw-deposit"),
            "raw-withdraw": n0.bank.withdraw("alone", 5, request_id="raw-withdraw"),
        }
        entries = history(nodes[1], "alone")
        assert sorted(e.request_id for e in entries) == sorted(
            ["alone-open", *retried])
        for request_id, done in retried.items():
            assert entries[done.position].request_id == request_id
        assert replayed_balance(entries) == 107
        with pytest.raises(AccountNotFound):
            n0.bank.deposit("unknown", 5, request_id="raw-unknown")

        # A node that stops answering (paused, not refusing connections) is failed
        # over too: the client does not spend its whole deadline on one server.
        cluster.start_node(2)
        cluster.pause(0)
        with LedgerClient(cluster.addresses, timeout_s=6, security=cluster.security) as failover:
            done = failover.deposit("alone", 3, request_id="while-paused")
            assert done.balance == 110
            assert failover.balance("alone").balance == 110
        cluster.resume(0)
    finally:
        disconnect(nodes)
