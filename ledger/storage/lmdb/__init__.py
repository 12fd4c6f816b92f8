"""The durable store: the `Store` protocol over LMDB, with group commit.

One LMDB environment (a directory) per node. Its named databases:

- ``meta``: format version, reserved round, node identity.
- ``promise``: account -> the ballot promised for every slot of the account.
- ``vote``: (account, slot) -> (ballot, value), the acceptor's undecided votes.
- ``chosen``: (account, slot) -> value, the chosen prefix of each account.
- ``tail``: account -> (chosen_through, chained digest of the chosen values).
- ``app.<name>`` for each application table the opener declares: opaque keys and
  values for the layer above.

Keys sort by (account, slot) so an account's votes or chosen values are one
range scan: the account's UTF-8 bytes, a NUL, then the slot as 8 bytes big
endian. Every stored value is ``crc32(key + payload)`` followed by the payload,
and every read verifies it (`records` says why and how).

Staging and group commit: all writes staged since the last `sync` live in one
open LMDB write transaction, which reads go through, so they see staged
writes; `sync` commits it in one durable write, and the transaction is rebuilt
from a list of the staged writes when LMDB makes us throw it away (`staging`).
A full disk is reported as `StorageFull`, even when LMDB calls it an I/O error
(`errors`).

The modules, one job each:

- `directory`: whether a directory holds a store; the lock against a second process.
- `environment`: opening the environment, the format version check, the table handles.
- `records`: the record format: keys, checksums, encoding and decoding of values.
- `errors`: LMDB and OS errors as `StorageFull` (full disk) or `StorageError`.
- `writes`: applying writes to a write transaction, with the store's invariant checks.
- `staging`: the open write transaction, its commit, and recovery after a failure.
- `read_transactions`: the transaction each read goes through; the per-thread read cache.
- `reads`: the reads, Paxos state and application tables, each record checked.
- `store`: `LmdbStore`, which opens the parts, inherits the reads and offers the writes.
"""

from ledger.storage.lmdb.directory import store_exists
from ledger.storage.lmdb.environment import FORMAT_VERSION, format_refusal
from ledger.storage.lmdb.store import LmdbStore

__all__ = ["FORMAT_VERSION", "LmdbStore", "format_refusal", "store_exists"]
