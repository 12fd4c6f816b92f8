"""Do the replicas agree? Every node's view of every account, compared.

One helper for every caller that asks (`ledger status`, the demo, chaos runs and the
tests), so "converged" means the same thing everywhere: every node answered, holds
the same accounts with identical chosen logs (same length, same chained digest, same
balance), has applied everything it holds, and has no vote on a slot it has not seen
settled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.client.admin import account_statuses
from ledger.security.tls import Security
from ledger.v1 import replica_pb2 as pb


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as one node holds it."""

    applied_slot: int  # the last log slot applied to its state (-1: none)
    chosen_through: int  # the last slot of the chosen prefix held there
    digest: bytes  # chained digest of the chosen values 0..chosen_through
    balance: int | None  # as applied there; None while the account is not open there
    highest_slot: int = -1  # the highest slot it voted on or knows chosen

    @property
    def caught_up(self) -> bool:
        """Has the node applied everything it holds of this account's log, and seen every
        slot it voted on settled? (A vote past the chosen prefix may belong to a value
        that is chosen, its learners killed before they said so: it settles once the
        account idles.)"""
        return self.applied_slot == self.chosen_through >= self.highest_slot


#: account -> its view on one node; None for a node that did not answer.
NodeView = dict[str, AccountView]


def node_view(address: str, timeout_s: float, security: Security) -> NodeView | None:
    statuses = account_statuses(address, timeout_s, security)
    if statuses is None:
        return None
    return view_of(statuses)


def view_of(statuses: Iterable[pb.AccountStatus]) -> NodeView:
    """A node's account statuses (Admin.Status) as its view."""
    return {a.account: AccountView(a.applied_slot, a.chosen_through, a.digest,
                                   a.balance if a.opened else None, a.highest_slot)
            for a in statuses}


def node_views(addresses: Sequence[str], timeout_s: float, security: Security
               ) -> list[NodeView | None]:
    return [node_view(address, timeout_s, security) for address in addresses]


def agreement(views: Sequence[NodeView | None]) -> dict[str, bool]:
    """Per account (every account any node holds): do all nodes that answered hold
    identical views of it? A node that answered without the account disagrees."""
    answered = [view for view in views if view is not None]
    accounts = sorted({account for view in answered for account in view})
    return {account: len({view.get(account) for view in answered}) == 1
            for account in accounts}


def converged(views: Sequence[NodeView | None]) -> NodeView | None:
    """The common view if every node answered, all hold identical logs and every node
    has applied all it holds; None otherwise."""
    if not views or any(view is None for view in views):
        return None
    first = views[0]
    assert first is not None
    if any(view != first for view in views[1:]):
        return None
    if not all(account.caught_up for account in first.values()):
        return None
    return first
