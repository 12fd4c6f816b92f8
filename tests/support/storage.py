"""What the storage tests share: the tables every test store is opened with, and the
kinds of write a store stages."""

from __future__ import annotations

from ledger.paxos.records import Write
from ledger.storage.base import AppWrite

StagedWrite = Write | AppWrite

#: The application tables every store in the storage tests is opened with.
APP_TABLES = ("applied", "history", "requests")
