"""The ledger state machine: applies chosen log entries to account state, in log order.

For each account it keeps, in the store's application tables: the account's
state at its applied log slot, one history entry per numbered operation,
for each request id (and each transfer credited) the decision that settled it,
and the transfers it sent that are not settled or refunded yet ("pending": what a
node completes after a crash, without scanning anything else). Applying is deterministic,
so every replica computes the same balances, verdicts and history. These writes
trail the log: after a crash the driver re-applies what they are missing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from itertools import islice

from ledger.accounts import (
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Pending,
    Refused,
    Settled,
    apply_operation,
    decision_key,
)
from ledger.bank import codec
from ledger.bank.audit import Audit, take_audit
from ledger.bank.codec import Decision, StoredAccount
from ledger.bank.model import HistoryEntry
from ledger.node.consensus import Committed
from ledger.storage.base import AppWrite, Store

log = logging.getLogger(__name__)

MAX_CACHED_ACCOUNTS = 4_096  # applied account records kept in memory (a cache)
NEVER_APPLIED = StoredAccount(AccountState(), -1)
MAX_RECENT_ENTRIES = 4_096  # applied log entries whose decisions are kept for their writers
MAX_RECENT_DECISIONS = 20_000  # ... and the decisions they hold, in all

# A chosen entry, decoded: its operations and their decision keys.
_Decoded = tuple[Committed, list[Operation], list[bytes | None]]


class LedgerStateMachine:
    """Implements the driver's StateMachine; also answers the bank's local queries."""

    #: The application tables it keeps; the store is opened with them.
    TABLES = ("applied", "history", "requests", "pending")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._accounts: dict[str, StoredAccount] = {}  # a cache of the "applied" table
        # What the last entries applied decided, for the writers waiting on them.
        self._recent: OrderedDict[tuple[str, int], dict[str, Decision]] = OrderedDict()
        self._recent_decisions = 0
        self._unwritten: set[str] = set()  # accounts whose record changed since flush()
        # Chosen entries waiting for another account's slot (and every later entry of
        # their account); what each such account waits for; who waits on an account.
        self._held: dict[str, deque[_Decoded]] = {}
        self._blocked_on: dict[str, tuple[str, int]] = {}
        self._waiters: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ apply

    def applied_slot(self, account: str) -> int:
        return self.account(account).applied_slot

    def apply(self, entries: Sequence[Committed]) -> list[AppWrite]:
        """Apply chosen entries (each account's in log order); return the writes recording them.

        An entry holding a credit whose debit (or a settlement whose credit) is not
        applied here yet waits, with every later entry of its account, until that
        slot is applied: then it applies, within whichever call applied that slot.
        Whether each request id was decided before is looked up for the whole batch
        at once: one read of the store instead of one per operation.
        """
        decoded = [self._decode(committed) for committed in entries]
        decided = self._decided(decoded, set())
        writes: list[AppWrite] = []
        pending: dict[bytes, Pending | None] = {}  # what this batch changed, over the table
        released: list[str] = []  # accounts that applied something: their waiters may go
        for entry in decoded:
            committed = entry[0]
            held = self._held.get(committed.account)
            if held is not None:
                if committed.slot > held[-1][0].slot:  # (a re-fed held entry is there already)
                    held.append(entry)
                continue
            if self._hold_if_waiting(entry):
                continue
            self._apply_one(*entry, decided, pending, writes)
            released.append(committed.account)
        if self._waiters:
            self._release(released, decided, pending, writes)
        return writes

    def bounds(self) -> dict[str, tuple[int, int]]:
        """What its bounded memory holds now, and each bound: (used, limit) by name."""
        return {"applied_accounts_cached": (len(self._accounts), MAX_CACHED_ACCOUNTS),
                "recent_decisions": (self._recent_decisions, MAX_RECENT_DECISIONS)}

    def held_entries(self) -> int:
        """Chosen entries held back, waiting for another account's slot to be applied."""
        return sum(len(held) for held in self._held.values())

    def waiting_on(self) -> dict[str, int]:
        """The slots other accounts must be applied through before held entries can apply:
        what this node must learn (catch up on) to move on."""
        awaited: dict[str, int] = {}
        for account, slot in self._blocked_on.values():
            awaited[account] = max(slot, awaited.get(account, slot))
        return awaited

    def _decode(self, committed: Committed) -> _Decoded:
        operations = self._operations(committed)
        return committed, operations, [_store_key(committed.account, op) for op in operations]

    def _decided(self, entries: Sequence[_Decoded], decided: set[bytes]) -> set[bytes]:
        """`decided` and the keys of `entries` that the store holds a decision for."""
        wanted = list({key for _, _, keys in entries for key in keys
                       if key is not None and key not in decided})
        decided.update(key for key, raw in zip(
            wanted, self._store.app_get_many("requests", wanted), strict=True) if raw is not None)
        return decided

    def _unmet(self, operations: list[Operation]) -> tuple[str, int] | None:
        """The first other-account slot these operations follow that is not applied here."""
        for operation in operations:
            follows = operation.counterparty_slot
            if follows and self.applied_slot(operation.counterparty) < follows:
                return operation.counterparty, follows
        return None

    def _hold_if_waiting(self, entry: _Decoded) -> bool:
        committed, operations, _ = entry
        unmet = self._unmet(operations)
        if unmet is None:
            return False
        account = committed.account
        self._held.setdefault(account, deque()).append(entry)
        self._blocked_on[account] = unmet
        self._waiters.setdefault(unmet[0], set()).add(account)
        return True

    def _release(self, advanced: list[str], decided: set[bytes],
                 pending: dict[bytes, Pending | None], writes: list[AppWrite]) -> None:
        """Apply held entries whose awaited slots are applied now, and what they free."""
        work = list(dict.fromkeys(advanced))
        while work:
            for account in self._waiters.pop(work.pop(), ()):
                held = self._held[account]
                del self._blocked_on[account]
                applied = False
                while held and (unmet := self._unmet(held[0][1])) is None:
                    entry = held.popleft()
                    self._decided([entry], decided)
                    self._apply_one(*entry, decided, pending, writes)
                    applied = True
                if held:
                    assert unmet is not None
                    self._blocked_on[account] = unmet
                    self._waiters.setdefault(unmet[0], set()).add(account)
                else:
                    del self._held[account]
                if applied:  # (only then may its own waiters go: no loop on a stuck one)
                    work.append(account)

    def _apply_one(self, committed: Committed, operations: list[Operation],
                   keys: list[bytes | None], decided: set[bytes],
                   pending: dict[bytes, Pending | None], writes: list[AppWrite]) -> None:
        account = committed.account
        slot = committed.slot
        stored = self.account(account)
        assert slot == stored.applied_slot + 1, "entries apply in log order"
        state = stored.state
        decided_here: dict[tuple[str, str, str], Decision] = {}
        for operation, key in zip(operations, keys, strict=True):
            # (Only a transfer's operations touch the pending table: no key for the rest.)
            pending_key = (codec.pending_key(account, operation.request_id)
                           if operation.kind.in_transfer else b"")
            transfer = (self._pending(pending_key, operation.request_id, pending)
                        if operation.kind.ends_transfer else None)
            state, verdict = apply_operation(state, operation, key in decided, transfer)
            if isinstance(verdict, NoOp):
                continue
            if operation.kind is Kind.TRANSFER_OUT and isinstance(verdict, Applied):
                sent = Pending(operation.request_id, operation.counterparty, operation.amount,
                               operation.memo, operation.principal)
                pending[pending_key] = sent
                writes.append(AppWrite("pending", pending_key, codec.encode_pending(
                    sent, slot, operation.recorded_at_ms)))
            elif operation.kind.ends_transfer:
                pending[pending_key] = None
                writes.append(AppWrite("pending", pending_key, None))
            decision = _decision(operation, verdict, slot, state)
            decided_here[recent_key(operation)] = decision
            if isinstance(verdict, Settled):
                continue  # no number, no money moved: nothing for the history
            if key is not None:
                decided.add(key)
                writes.append(AppWrite("requests", key, codec.encode_decision(decision)))
            writes.append(AppWrite("history", codec.history_key(account, decision.position),
                                   codec.encode_history(decision)))
        self._remember(account, StoredAccount(state, slot))
        self._unwritten.add(account)
        self._recent[(account, slot)] = decided_here
        self._recent_decisions += len(decided_here)
        while self._recent and (len(self._recent) > MAX_RECENT_ENTRIES
                                or self._recent_decisions > MAX_RECENT_DECISIONS):
            _, dropped = self._recent.popitem(last=False)
            self._recent_decisions -= len(dropped)

    @staticmethod
    def _operations(committed: Committed) -> list[Operation]:
        try:
            return codec.decode_entry(committed.value)
        except codec.MalformedEntry as error:
            # Every replica skips it alike, so balances still agree; say so loudly.
            log.error("account %r slot %d: skipping a chosen value that is %s",
                      committed.account, committed.slot, error)
            return []

    def flush(self) -> list[AppWrite]:
        """The account records changed since the last flush (one write per account).

        The driver stages these with the entries' own writes, before any sync can
        start, so a commit never holds one without the other.
        """
        writes = [AppWrite("applied", codec.account_key(account),
                           codec.encode_account(self.account(account)))
                  for account in sorted(self._unwritten)]
        self._unwritten.clear()
        return writes

    def _pending(self, key: bytes, request_id: str, changed: dict[bytes, Pending | None]
                 ) -> Pending | None:
        if key in changed:
            return changed[key]
        raw = self._store.app_get("pending", key)
        return None if raw is None else codec.decode_pending(raw, request_id)[0]

    def recent_decision(self, account: str, slot: int, operation: Operation
                        ) -> Decision | None:
        """How `operation` was decided, preferring what applying `slot` just computed."""
        decided = self._recent.get((account, slot), {}).get(recent_key(operation))
        return decided if decided is not None else self.decision_of(account, operation)

    def decision_of(self, account: str, operation: Operation) -> Decision | None:
        """How the log decided the request `operation` stands for (None: not yet, or it
        settles a transfer: see `pending_transfer`)."""
        key = decision_key(operation)
        if key is None:
            return None
        raw = self._store.app_get("requests", codec.decision_store_key(account, key))
        return None if raw is None else codec.decode_decision(raw, operation.request_id)

    async def audit(self) -> Audit:
        """Every balance and the money in flight, as this node has applied them: one
        consistent cut, provided nothing is applied while it reads (see
        `ledger.bank.audit`)."""
        return await take_audit(self._store)

    def pending_transfer(self, account: str, request_id: str) -> Pending | None:
        """The transfer `request_id` that `account` sent, if it is pending here."""
        raw = self._store.app_get("pending", codec.pending_key(account, request_id))
        return None if raw is None else codec.decode_pending(raw, request_id)[0]

    # ---------------------------------------------------------------- queries

    def account(self, account: str) -> StoredAccount:
        stored = self._accounts.get(account)
        if stored is None:
            raw = self._store.app_get("applied", codec.account_key(account))
            if raw is None:
                return NEVER_APPLIED  # not cached: ids that were never opened leave nothing
            stored = codec.decode_account(raw)
            self._remember(account, stored)
        return stored

    def decision(self, account: str, request_id: str) -> Decision | None:
        raw = self._store.app_get("requests", codec.request_key(account, request_id))
        return None if raw is None else codec.decode_decision(raw, request_id)

    def history(self, account: str, from_position: int, limit: int) -> list[HistoryEntry]:
        start = codec.history_key(account, from_position)
        stop = account.encode() + b"\x01"
        rows = self._store.app_range("history", start, stop, limit)
        return [codec.decode_history(raw) for _, raw in rows]

    def opened_accounts(self, after: str, limit: int) -> list[str]:
        """Accounts this node knows to be open, sorted, strictly after `after`."""
        names: list[str] = []
        start = codec.account_key(after) + b"\x00" if after else b""
        while len(names) < limit:
            rows = self._store.app_range("applied", start, b"\xff", limit)
            for key, raw in rows:
                if codec.decode_account(raw).state.opened:
                    names.append(key.decode())
            if len(rows) < limit:
                break
            start = rows[-1][0] + b"\x00"
        return names[:limit]

    def pending_transfers(self, after: bytes, limit: int
                          ) -> tuple[list[tuple[str, Pending, int]], bytes]:
        """A page of the transfers pending here, after key `after` (b"": from the start):
        (source account, transfer, when its debit was proposed), and where the next
        page starts (b"" once the table is done: the next page starts over)."""
        rows = self._store.app_range("pending", after, b"\xff", limit)
        page = []
        for key, raw in rows:
            account, _, request_id = key.decode().partition("\x00")
            transfer, debited_at_ms = codec.decode_pending(raw, request_id)
            page.append((account, transfer, debited_at_ms))
        following = rows[-1][0] + b"\x00" if len(rows) == limit else b""
        return page, following

    def _remember(self, account: str, stored: StoredAccount) -> None:
        accounts = self._accounts
        if len(accounts) >= MAX_CACHED_ACCOUNTS and account not in accounts:
            # A cache, reloaded on demand: the oldest eighth goes, except records not
            # yet flushed (the store does not have them yet).
            oldest = list(islice(accounts, MAX_CACHED_ACCOUNTS // 8))
            for name in oldest:
                if name not in self._unwritten:
                    del accounts[name]
        accounts[account] = stored


def recent_key(operation: Operation) -> tuple[str, str, str]:
    """What tells an entry's decisions apart: the decision key, or for a settlement its
    kind and the transfer's id."""
    return decision_key(operation) or (operation.kind.value, "", operation.request_id)


def _store_key(account: str, operation: Operation) -> bytes | None:
    key = decision_key(operation)
    return None if key is None else codec.decision_store_key(account, key)


def _decision(operation: Operation, verdict: Applied | Refused | Settled, slot: int,
              state: AccountState) -> Decision:
    if isinstance(verdict, Settled):  # unnumbered: the position its next operation takes
        return Decision(state.operations, operation, False, "", state.balance, slot)
    if isinstance(verdict, Applied):
        return Decision(verdict.position, operation, False, "", verdict.balance, slot)
    return Decision(verdict.position, operation, True, verdict.reason.value, verdict.balance,
                    slot)
