"""Every replica's applied state is a consistent cut: a credit never applies before its
debit, nor a settlement before its credit, whatever order a replica learns the
accounts' logs in. So its audit adds up at every instant, not just at the end."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.accounts import MAX_AMOUNT, MAX_BALANCE, Kind, Operation
from ledger.bank import codec
from ledger.bank.audit import Audit
from ledger.bank.state_machine import LedgerStateMachine
from ledger.paxos import Committed
from ledger.storage.memory import MemoryStore

ACCOUNTS = ("a", "b", "c", "d")


def audited(machine: LedgerStateMachine) -> Audit:
    return asyncio.run(machine.audit())


class Replica:
    def __init__(self) -> None:
        self.store = MemoryStore(LedgerStateMachine.TABLES)
        self.machine = LedgerStateMachine(self.store)

    def apply(self, entries: list[Committed]) -> None:
        self.store.stage(self.machine.apply(entries))
        self.store.stage(self.machine.flush())


class Proposer:
    """Decides transfers as the bank does (debit, credit, settle or refund), one replica
    applying each entry as soon as it is chosen, and keeps every account's log."""

    def __init__(self, openings: dict[str, int]) -> None:
        self.replica = Replica()
        self.logs: dict[str, list[bytes]] = {account: [] for account in openings}
        self.funding: dict[str, int] = {}  # slots that open and fund each account
        for account, balance in openings.items():
            # Past the largest single amount: the rest in one entry of deposits.
            deposits, opening = divmod(balance, MAX_AMOUNT)
            self.choose(account, Operation(Kind.OPEN, opening, f"open-{account}"))
            if deposits:
                self.choose(account, *(Operation(Kind.DEPOSIT, MAX_AMOUNT, f"fund-{n}")
                                       for n in range(deposits)))
            self.funding[account] = len(self.logs[account])

    def choose(self, account: str, *operations: Operation) -> int:
        slot = len(self.logs[account])
        value = codec.encode_entry(operations)
        self.logs[account].append(value)
        self.replica.apply([Committed(account, slot, value)])
        return slot

    def transfer(self, number: int, source: str, target: str, amount: int, settle: bool) -> None:
        rid = f"t{number}"
        debit = Operation(Kind.TRANSFER_OUT, amount, rid, counterparty=target)
        debit_slot = self.choose(source, debit)
        decided = self.replica.machine.decision_of(source, debit)
        assert decided is not None
        if decided.rejected:
            return
        credit = Operation(Kind.TRANSFER_IN, amount, rid, counterparty=source,
                           counterparty_slot=debit_slot)
        credit_slot = self.choose(target, credit)
        credited = self.replica.machine.decision_of(target, credit)
        assert credited is not None
        if credited.rejected:
            self.choose(source, Operation(Kind.TRANSFER_REFUND, amount, rid,
                                          counterparty=target))
        elif settle:  # else it stays pending, as when its proposer died
            self.choose(source, Operation(Kind.TRANSFER_SETTLE, amount, rid,
                                          counterparty=target, counterparty_slot=credit_slot))


transfers = st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                               st.integers(1, 400), st.booleans()),
                     min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(transfers=transfers, order=st.lists(st.tuples(st.sampled_from(ACCOUNTS),
                                                     st.integers(1, 3)), max_size=80))
def test_a_replica_learning_the_logs_in_any_order_is_always_a_consistent_cut(
    transfers: list[tuple[str, str, int, bool]], order: list[tuple[str, int]],
) -> None:
    # "d" sits near the limit, so credits to it bounce and come back as refunds.
    openings = {"a": 500, "b": 300, "c": 0, "d": MAX_BALANCE - 200}
    proposer = Proposer(openings)
    for number, (source, target, amount, settle) in enumerate(transfers):
        if source != target:
            proposer.transfer(number, source, target, amount, settle)
    opened = sum(openings.values())
    assert audited(proposer.replica.machine).total == opened

    learner = Replica()
    learner.apply([Committed(account, slot, proposer.logs[account][slot])
                   for account in ACCOUNTS for slot in range(proposer.funding[account])])
    learned = dict(proposer.funding)  # slots handed to the learner, per account

    def learn(account: str, count: int) -> None:
        log = proposer.logs[account]
        batch = [Committed(account, slot, log[slot])
                 for slot in range(learned[account], min(len(log), learned[account] + count))]
        learned[account] += len(batch)
        learner.apply(batch)
        audit = audited(learner.machine)
        assert audit.total == opened
        assert all(account.balance >= 0 for account in audit.accounts)

    for account, count in order:
        learn(account, count)
    for account in ACCOUNTS:
        learn(account, len(proposer.logs[account]))
    assert not learner.machine.waiting_on()
    assert audited(learner.machine) == audited(proposer.replica.machine)
    for account in ACCOUNTS:
        assert learner.machine.account(account) == proposer.replica.machine.account(account)


def test_a_credit_learned_before_its_debit_waits_for_it_and_says_what_it_waits_for() -> None:
    proposer = Proposer({"a": 100, "b": 0})
    proposer.transfer(1, "a", "b", 30, settle=True)
    learner = Replica()
    log_a, log_b = proposer.logs["a"], proposer.logs["b"]
    learner.apply([Committed("a", 0, log_a[0]), Committed("b", 0, log_b[0]),
                   Committed("b", 1, log_b[1])])  # b's credit, before a's debit
    assert learner.machine.applied_slot("b") == 0
    assert learner.machine.waiting_on() == {"a": 1}
    assert audited(learner.machine).total == 100  # not 130: the credit is not in the cut
    learner.apply([Committed("a", 1, log_a[1])])  # the debit: the credit follows it
    assert learner.machine.applied_slot("b") == 1
    assert not learner.machine.waiting_on()
    audit = audited(learner.machine)
    assert (audit.balances, audit.in_flight, audit.transfers_in_flight) == (100, 0, 0)


def test_a_settlement_learned_before_its_credit_waits_for_it() -> None:
    proposer = Proposer({"a": 100, "b": 0})
    proposer.transfer(1, "a", "b", 30, settle=True)
    learner = Replica()
    log_a, log_b = proposer.logs["a"], proposer.logs["b"]
    learner.apply([Committed("a", slot, value) for slot, value in enumerate(log_a)])
    assert learner.machine.applied_slot("a") == 1  # the debit, not the settlement
    audit = audited(learner.machine)
    assert (audit.balances, audit.in_flight, audit.transfers_in_flight) == (70, 30, 1)
    # Fed again (a repair re-feeds what follows the applied slot), it is held once.
    learner.apply([Committed("a", 2, log_a[2])])
    learner.apply([Committed("b", slot, value) for slot, value in enumerate(log_b)])
    assert learner.machine.applied_slot("a") == 2
    assert audited(learner.machine).total == 100
    assert learner.machine.pending_transfers(b"", 10)[0] == []


def test_a_held_entry_is_applied_again_after_a_restart() -> None:
    """Held entries are not applied, so not stored as applied: a restarted node's
    re-apply holds them again, and they apply once their debit does."""
    proposer = Proposer({"a": 100, "b": 0})
    proposer.transfer(1, "a", "b", 30, settle=False)
    learner = Replica()
    learner.apply([Committed("b", slot, value) for slot, value in enumerate(proposer.logs["b"])])
    restarted = LedgerStateMachine(learner.store)
    assert restarted.applied_slot("b") == 0
    learner.machine = restarted
    learner.apply([Committed("b", 1, proposer.logs["b"][1])])
    learner.apply([Committed("a", slot, value) for slot, value in enumerate(proposer.logs["a"])])
    assert restarted.account("b").state.balance == 30
    assert audited(restarted).total == 100


def test_a_chosen_value_that_follows_a_slot_it_cannot_is_malformed() -> None:
    for operation in (Operation(Kind.DEPOSIT, 5, "d", counterparty_slot=3),
                      Operation(Kind.TRANSFER_IN, 5, "t", counterparty="a",
                                counterparty_slot=-2)):
        value = codec.encode_entry([operation])
        try:
            codec.decode_entry(value)
        except codec.MalformedEntry as error:
            assert "follows slot" in str(error)
        else:
            raise AssertionError(f"{operation} decoded")
