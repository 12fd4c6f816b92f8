"""Reads: STRONG passes a read barrier first (linearizable); LOCAL answers from this
node's applied state, which may lag."""

from __future__ import annotations

from ledger import errors
from ledger.accounts.validation import check_account_id, check_page
from ledger.bank.answers import quarantined
from ledger.bank.model import Balance, HistoryEntry
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.consensus import AccountQuarantined, Consensus, NoQuorum


class Reads:
    def __init__(self, consensus: Consensus, machine: LedgerStateMachine) -> None:
        self._consensus = consensus
        self._machine = machine

    async def balance(self, account_id: str, strong: bool, timeout_s: float) -> Balance:
        check_account_id(account_id)
        self._check_quarantine(account_id)
        if strong:
            await self._barrier(account_id, timeout_s)
        state = self._machine.account(account_id).state
        if not state.opened:
            raise errors.AccountNotFound(f"account {account_id!r} does not exist")
        return Balance(account_id, state.balance, state.operations - 1)

    async def history(
        self, account_id: str, from_position: int, limit: int, strong: bool, timeout_s: float
    ) -> list[HistoryEntry]:
        check_account_id(account_id)
        limit = check_page(limit)
        self._check_quarantine(account_id)
        if strong:
            await self._barrier(account_id, timeout_s)
        if not self._machine.account(account_id).state.opened:
            raise errors.AccountNotFound(f"account {account_id!r} does not exist")
        return self._machine.history(account_id, from_position, limit)

    def list_accounts(self, after: str, limit: int) -> list[str]:
        return self._machine.opened_accounts(after, check_page(limit))

    def _check_quarantine(self, account: str) -> None:
        reason = self._consensus.quarantine_reason(account)
        if reason is not None:
            raise quarantined(account, reason)

    async def _barrier(self, account: str, timeout_s: float) -> None:
        try:
            await self._consensus.read_barrier(account, timeout_s)
        except NoQuorum as error:
            raise errors.Unavailable(str(error)) from None
        except AccountQuarantined as error:
            raise quarantined(account, str(error)) from None
