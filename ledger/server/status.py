"""A node's view of itself, for operators: identity, peers, and each account's log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledger.node.cluster import ClusterConfig
from ledger.node.driver import NodeDriver
from ledger.storage.base import Store

MAX_ACCOUNTS_PER_PAGE = 1_000


BalanceOf = Callable[[str], int | None]  # an account's applied balance, None if not open


@dataclass(frozen=True, slots=True)
class AccountStatus:
    account: str
    applied_slot: int
    chosen_through: int
    digest: bytes
    balance: int | None
    highest_slot: int  # past chosen_through: a vote or a chosen slot not settled here yet


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node_id: str
    peers: tuple[str, ...]
    cluster_fingerprint: str
    accounts: tuple[AccountStatus, ...]
    complete: bool


def node_status(
    node_id: str, cluster: ClusterConfig, store: Store, driver: NodeDriver,
    balance_of: BalanceOf, after: str, limit: int,
) -> NodeStatus:
    limit = min(limit or MAX_ACCOUNTS_PER_PAGE, MAX_ACCOUNTS_PER_PAGE)
    summaries = store.account_summaries(after, limit)
    accounts = tuple(
        AccountStatus(s.account, driver.applied_slot(s.account), s.chosen_through, s.digest,
                      balance_of(s.account), driver.highest_slot(s.account))
        for s in summaries
    )
    peers = tuple(f"{m.node_id}={m.address}" for m in cluster.members)
    return NodeStatus(node_id, peers, cluster.fingerprint, accounts, len(summaries) < limit)
