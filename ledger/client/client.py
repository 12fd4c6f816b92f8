"""A synchronous client over the Ledger stubs.

Every call has a deadline (default 10 s) covering all its attempts; each attempt
gets a share of what is left, so a server that hangs cannot use it all up. A call
that finds a server unreachable, hung or without a majority tries the next server
with the same request id, so a retried write can never apply twice; when the deadline
runs out it raises Unavailable, whose request_id lets the caller retry later.

Every call goes over mutual TLS with the caller's certificate (`security`, by default
from LEDGER_CA, LEDGER_CERT and LEDGER_KEY), or in plaintext only when asked for by
name (LEDGER_INSECURE=1, for a node started with --insecure).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from ledger import errors
from ledger.accounts import Kind, WriteRequest
from ledger.accounts.validation import MAX_BATCH_OPERATIONS
from ledger.api import wire
from ledger.client.streams import Group, StreamBroken, WriteStream
from ledger.security.tls import Security, client_security, handshake_hint
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
RETRYABLE_NUMBERS = {code.value[0] for code in RETRYABLE}
MAX_LEADER_HINTS = 100_000  # accounts whose leader the client remembers
#: A reply may hold 10,000 results, each with an error message that quotes its input:
#: more than gRPC's default 4 MiB (which would end a shared write stream for everyone).
MAX_REPLY_BYTES = 64 << 20
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", MAX_REPLY_BYTES),)
PAUSE_BETWEEN_ROUNDS_S = 0.05  # after every server failed once, before trying them again


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Transaction:
    account_id: str
    position: int  # the operation's number in the account's history
    balance: int  # the balance right after it
    duplicate: bool  # this request id had already been applied; nothing new was written
    request_id: str


@dataclass(frozen=True, slots=True)
class TransferReceipt:
    """A transfer's outcome on both sides."""

    from_account_id: str
    to_account_id: str
    from_position: int  # the debit's number in the source's history
    from_balance: int  # the source's balance right after the debit
    to_position: int  # the credit's number in the destination's history
    duplicate: bool  # this request id had already been used for this transfer
    bounced: bool  # the destination would have passed the balance limit: money refunded
    refund_position: int  # when bounced: the refund's number in the source's history
    request_id: str


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """One write of a `submit` batch. An empty request_id gets a fresh one."""

    kind: str  # "open" (amount: the opening balance), "deposit", "withdraw" or "transfer"
    account_id: str  # for a transfer, the source
    amount: int
    memo: str = ""
    request_id: str = ""
    to_account: str = ""  # for a transfer, the destination


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    balance: int
    position: int  # the last operation reflected


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    position: int
    kind: str  # "open", "deposit" or "withdrawal"
    amount: int
    balance_after: int
    request_id: str
    memo: str
    rejected: bool
    reject_reason: str
    recorded_at_ms: int
    principal: str = ""  # who asked ("anonymous" under --insecure; "" if recorded before)
    counterparty: str = ""  # a transfer's other account (with request_id, its other entry)


@dataclass(frozen=True, slots=True)
class AuditedBalance:
    account_id: str
    balance: int
    position: int  # the last operation reflected
    in_flight: int  # what it sent that is not credited or refunded yet, in the cut


@dataclass(frozen=True, slots=True)
class BankAudit:
    """One node's consistent cut of the whole bank (sums are exact Python ints)."""

    node: str
    accounts: int
    balances: int
    in_flight: int
    transfers_in_flight: int
    total: int  # balances + in_flight: what was opened plus deposited minus withdrawn
    balances_by_account: tuple[AuditedBalance, ...] = ()  # empty when totals_only


def with_request_ids(writes: Sequence[BatchWrite], request_ids: Sequence[str]
                     ) -> list[BatchWrite]:
    """The same writes, each with its request id from `request_ids` (a failed submit's)."""
    if len(writes) != len(request_ids):
        raise ValueError(f"{len(writes)} writes but {len(request_ids)} request ids")
    return [dataclasses.replace(write, request_id=request_id)
            for write, request_id in zip(writes, request_ids, strict=True)]


def parse_servers(servers: str | Sequence[str]) -> list[str]:
    if isinstance(servers, str):
        servers = servers.split(",")
    addresses = [s.strip() for s in servers if s.strip()]
    if not addresses:
        raise ValueError("no servers given")
    return addresses


class LedgerClient:
    """Talks to any of the given servers; prefers the first that answers."""

    def __init__(self, servers: str | Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                 security: Security | None = None, stream_writes: bool = True) -> None:
        """`security` None: from the environment (`client_security`), which raises
        SecurityConfigError, saying what to set, when it names no certificate."""
        self.servers = parse_servers(servers)
        self.timeout_s = timeout_s
        self.security = security if security is not None else client_security()
        self._channels = [self.security.channel(address, CHANNEL_OPTIONS)
                          for address in self.servers]
        self._stubs = [pb_grpc.LedgerStub(channel) for channel in self._channels]
        # Writes travel over one long-lived stream per node, concurrent callers' writes
        # coalesced into shared batches; `stream_writes=False` sends each as its own call.
        self._streams = ([WriteStream(stub) for stub in self._stubs] if stream_writes
                         else None)
        self._preferred = 0
        # Where each account's writes are decided, from the nodes' leader hints: the next
        # write goes there first and saves the forward (bounded: oldest hints dropped).
        self._index_of = {address: index for index, address in enumerate(self.servers)}
        self._leaders: dict[str, int] = {}
        self._hints_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        self._closed = True
        for stream in self._streams or ():
            stream.close()
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    def open_account(self, account_id: str, opening_balance: int = 0,
                     request_id: str | None = None, timeout_s: float | None = None,
                     ) -> Transaction:
        request_id = request_id or new_request_id()
        request = pb.OpenAccountRequest(account_id=account_id, opening_balance=opening_balance,
                                        request_id=request_id)
        return self._write(pb.BatchOperation(open_account=request),
                           lambda stub: stub.OpenAccount, request, timeout_s)

    def deposit(self, account_id: str, amount: int, memo: str = "",
                request_id: str | None = None, timeout_s: float | None = None) -> Transaction:
        request_id = request_id or new_request_id()
        request = pb.DepositRequest(account_id=account_id, amount=amount, memo=memo,
                                    request_id=request_id)
        return self._write(pb.BatchOperation(deposit=request), lambda stub: stub.Deposit,
                           request, timeout_s)

    def withdraw(self, account_id: str, amount: int, memo: str = "",
                 request_id: str | None = None, timeout_s: float | None = None) -> Transaction:
        request_id = request_id or new_request_id()
        request = pb.WithdrawRequest(account_id=account_id, amount=amount, memo=memo,
                                     request_id=request_id)
        return self._write(pb.BatchOperation(withdraw=request), lambda stub: stub.Withdraw,
                           request, timeout_s)

    def transfer(self, from_account_id: str, to_account_id: str, amount: int, memo: str = "",
                 request_id: str | None = None, timeout_s: float | None = None,
                 ) -> TransferReceipt:
        """Move `amount` between accounts, exactly once whatever is retried: the answer
        comes once the destination is credited (or the credit bounced and the money went
        back). Refused without funds (InsufficientFunds: nothing moved)."""
        request_id = request_id or new_request_id()
        request = pb.TransferRequest(from_account_id=from_account_id,
                                     to_account_id=to_account_id, amount=amount,
                                     request_id=request_id, memo=memo)
        if self._streams is None:
            reply = self._call(lambda stub: stub.Transfer, request, timeout_s, request_id,
                               from_account_id)
        else:  # coalesced with other callers' writes, as deposits are
            reply = self._streamed(pb.BatchOperation(transfer=request), timeout_s, request_id,
                                   from_account_id).transfer
        self._learn_leader(from_account_id, reply.leader)
        return TransferReceipt(reply.from_account_id, reply.to_account_id, reply.from_position,
                               reply.from_balance, reply.to_position, reply.duplicate,
                               reply.bounced, reply.refund_position, request_id)

    def submit(self, writes: Sequence[BatchWrite], timeout_s: float | None = None
               ) -> list[Transaction | errors.LedgerError]:
        """Many writes in one call (at most 10,000): a result or a typed error for each,
        in order. A whole call that finds no server is retried on the others with the
        same request ids; if it fails as a whole, the error's `request_ids` are the ids
        it used (generated ones included), and `with_request_ids(writes,
        error.request_ids)` resubmits safely. An operation whose own result is
        Unavailable may be resubmitted with its request id, safely."""
        ids = [write.request_id or new_request_id() for write in writes]
        if len(writes) > MAX_BATCH_OPERATIONS:  # refused whole, as the node refuses a Submit
            too_many = errors.InvalidRequest(
                f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, not {len(writes)}")
            too_many.request_ids = tuple(ids)
            raise too_many
        request = pb.SubmitRequest(operations=[wire.batch_operation(_write_request(w, rid))
                                               for w, rid in zip(writes, ids, strict=True)])
        try:
            if self._streams is None:
                replies = self._call(lambda stub: stub.Submit, request, timeout_s).results
            else:
                replies = self._call_streaming(request.operations, timeout_s)
        except errors.LedgerError as failure:
            # The ids this call used, generated ones included: resubmitting with them
            # (`with_request_ids`) can never apply anything twice.
            failure.request_ids = tuple(ids)
            raise
        results: list[Transaction | errors.LedgerError] = []
        for request_id, result in zip(ids, replies, strict=True):
            outcome = wire.operation_outcome(result)
            if isinstance(outcome, errors.LedgerError):
                outcome.request_id = request_id
                results.append(outcome)
            else:
                results.append(_transaction(outcome, request_id))
        return results

    # ------------------------------------------------------------------- reads

    def balance(self, account_id: str, local: bool = False,
                timeout_s: float | None = None) -> Balance:
        request = pb.GetBalanceRequest(account_id=account_id, consistency=_consistency(local))
        reply = self._call(lambda stub: stub.GetBalance, request, timeout_s)
        return Balance(reply.account_id, reply.balance, reply.position)

    def history(self, account_id: str, from_position: int = 0, limit: int = 0,
                local: bool = False, timeout_s: float | None = None) -> list[HistoryEntry]:
        request = pb.GetHistoryRequest(account_id=account_id, from_position=from_position,
                                       limit=limit, consistency=_consistency(local))
        reply = self._call(lambda stub: stub.GetHistory, request, timeout_s)
        return [HistoryEntry(e.position, _kind_name(e.kind), e.amount,
                             e.balance_after, e.request_id, e.memo, e.rejected,
                             e.reject_reason, e.recorded_at_ms, e.principal,
                             e.counterparty_account_id)
                for e in reply.entries]

    def list_accounts(self, after: str = "", limit: int = 0,
                      timeout_s: float | None = None) -> list[str]:
        request = pb.ListAccountsRequest(after=after, limit=limit)
        return list(self._call(lambda stub: stub.ListAccounts, request, timeout_s).account_ids)

    def audit(self, totals_only: bool = False, page_size: int = 0,
              timeout_s: float | None = None) -> BankAudit:
        """The bank as the first node that answers has applied it, at one instant."""
        request = pb.AuditRequest(totals_only=totals_only, page_size=page_size)
        replies = self._call(lambda stub: lambda r, timeout: list(stub.Audit(r, timeout=timeout)),
                             request, timeout_s)
        totals = replies[0].totals
        return BankAudit(totals.node, totals.accounts, int(totals.balances),
                         int(totals.in_flight), totals.transfers_in_flight, int(totals.total),
                         tuple(AuditedBalance(a.account_id, a.balance, a.position, a.in_flight)
                               for reply in replies[1:] for a in reply.accounts))

    # ---------------------------------------------------------------- plumbing

    def _learn_leader(self, account: str, leader: str) -> None:
        """Remember the node a reply named as the account's leader, if this client knows
        it by that address (a hint only: any node still takes the write)."""
        index = self._index_of.get(leader) if leader else None
        if index is None:
            return
        with self._hints_lock:  # callers on many threads share one client
            if account not in self._leaders and len(self._leaders) >= MAX_LEADER_HINTS:
                del self._leaders[next(iter(self._leaders))]
            self._leaders[account] = index

    def _write(self, operation: pb.BatchOperation,
               method: Callable[[pb_grpc.LedgerStub], Callable[..., pb.TransactionReply]],
               request: pb.OpenAccountRequest | pb.DepositRequest | pb.WithdrawRequest,
               timeout_s: float | None) -> Transaction:
        """One write: over the stream (coalesced with other callers'), or its own call."""
        account, request_id = request.account_id, request.request_id
        if self._streams is None:
            reply = self._call(method, request, timeout_s, request_id, account)
        else:
            reply = self._streamed(operation, timeout_s, request_id, account).reply
        self._learn_leader(account, reply.leader)
        return _transaction(reply, request_id)

    def _streamed(self, operation: pb.BatchOperation, timeout_s: float | None,
                  request_id: str, account: str) -> pb.OperationResult:
        """One write's result over the write stream; its typed error raised."""
        [result] = self._call_streaming([operation], timeout_s, request_id, account)
        outcome = wire.operation_outcome(result)
        if isinstance(outcome, errors.LedgerError):
            outcome.request_id = request_id
            raise outcome
        return result

    def _call_streaming(self, operations: Sequence[pb.BatchOperation], timeout_s: float | None,
                        request_id: str | None = None, account: str | None = None,
                        ) -> Sequence[pb.OperationResult]:
        """Results for `operations`, sent as one group over a node's write stream, failing
        over as `_call` does. A single write (`request_id` given) whose own result is
        UNAVAILABLE is retried elsewhere too, as its unary call would be."""
        assert self._streams is not None
        streams = self._streams

        def attempt(index: int, timeout: float) -> Sequence[pb.OperationResult]:
            stream = streams[index]
            if stream.unimplemented:  # an older node: the same batch as a unary call
                request = pb.SubmitRequest(operations=operations)
                return self._stubs[index].Submit(request, timeout=timeout).results
            group = Group(operations, time.monotonic() + timeout)
            stream.send(group)
            if not group.wait(timeout):
                raise StreamBroken(grpc.StatusCode.DEADLINE_EXCEEDED,
                                   "the node did not answer in time")
            if group.failure is not None:
                if group.failure.code() is grpc.StatusCode.UNIMPLEMENTED:
                    return attempt(index, group.deadline - time.monotonic())
                raise group.failure
            if request_id is not None and group.results[0].code in RETRYABLE_NUMBERS:
                raise StreamBroken(wire.CODES_BY_NUMBER[group.results[0].code],
                                   group.results[0].message)
            return group.results

        return self._attempts(attempt, timeout_s, request_id, account)

    def _call(self, method: Callable[[pb_grpc.LedgerStub], Callable[..., T]], request: object,
              timeout_s: float | None, request_id: str | None = None,
              account: str | None = None) -> T:
        """Call servers in turn until one answers or the deadline passes."""
        return self._attempts(
            lambda index, timeout: method(self._stubs[index])(request, timeout=timeout),
            timeout_s, request_id, account)

    def _attempts(self, attempt: Callable[[int, float], T], timeout_s: float | None,
                  request_id: str | None, account: str | None) -> T:
        """`attempt(server index, timeout)` on servers in turn until one answers or the
        deadline passes."""
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        last: grpc.RpcError | None = None
        attempts = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.01:
                break
            hinted = self._leaders.get(account) if account is not None else None
            index = ((self._preferred if hinted is None else hinted) + attempts) % len(
                self.servers)
            # Share what is left among the servers not yet tried in this round, so a
            # server that hangs (rather than refusing) cannot use up the whole deadline.
            untried = len(self.servers) - attempts % len(self.servers)
            try:
                reply = attempt(index, remaining / untried)
            except grpc.RpcError as error:
                # CANCELLED: the node cancelled the call as it stopped (the outcome is
                # unknown, as for UNAVAILABLE), unless this client was closed meanwhile.
                retry = error.code() in RETRYABLE or (
                    error.code() is grpc.StatusCode.CANCELLED and not self._closed)
                if not retry:
                    raise _typed(error, request_id) from None
                if hinted is not None:
                    self._leaders.pop(account, None)  # type: ignore[arg-type]  # stale
                last = error
                attempts += 1
                if attempts % len(self.servers) == 0:
                    time.sleep(min(PAUSE_BETWEEN_ROUNDS_S, max(0.0, remaining / 10)))
                continue
            if hinted is None:
                self._preferred = index
            return reply
        detail = f" (last error: {last.details()})" if last is not None else ""
        hint = handshake_hint(last.details() or "") if last is not None else None
        if hint is not None:
            detail += f"; {hint}"
        error = errors.Unavailable(
            f"no server answered in time{detail}"
            + (f"; it may or may not have been applied: retrying with request id {request_id!r}"
               " is safe" if request_id else "")
        )
        error.request_id = request_id
        raise error


def _consistency(local: bool) -> int:
    return pb.CONSISTENCY_LOCAL if local else pb.CONSISTENCY_STRONG


def _transaction(reply: pb.TransactionReply, request_id: str) -> Transaction:
    return Transaction(reply.account_id, reply.position, reply.balance, reply.duplicate,
                       request_id)


def _kind_name(entry_kind: int) -> str:
    kind = wire.ENTRY_KIND_TO_KIND.get(entry_kind)
    return "unknown" if kind is None else kind.value


def _write_request(write: BatchWrite, request_id: str) -> WriteRequest:
    try:
        kind = Kind.parse(write.kind)
    except ValueError:
        raise ValueError(f"unknown kind of write {write.kind!r}: open, deposit, withdraw or "
                         "transfer") from None
    return WriteRequest(kind, write.account_id, write.amount, request_id, write.memo,
                        counterparty=write.to_account)


def _typed(error: grpc.RpcError, request_id: str | None) -> errors.LedgerError:
    """The typed exception for a status the server sent."""
    typed = wire.error_from_status(error.code(), error.details() or "",
                                   dict(error.trailing_metadata() or ()))
    typed.request_id = request_id
    return typed
