"""The record format: how keys are built and how every stored value is sealed and checked.

Keys sort by (account, slot) so that an account's votes or chosen values are one
range scan: the account's UTF-8 bytes, a NUL, then the slot as 8 bytes big
endian. Account-only keys (``promise``, ``tail``) carry the same NUL, so every
table orders accounts the way Python orders the strings, and the empty account
is a valid (non-empty) LMDB key.

Every stored value is ``crc32(key + payload)`` (4 bytes, big endian) followed by
the payload. Paxos Made Live found disks that return bad data silently; a node
that acts on a corrupt vote or promise can break agreement for the whole
cluster, so every read verifies the checksum and raises `Corruption` naming the
record instead. The key is part of the checksum so that a record written under
the wrong key is caught too.

The write loop (`writes.apply_writes`) inlines `seal` with these same structs,
since it runs once per write: change the format in both places.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Final

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.messages import AcceptedEntry
from ledger.storage.base import EMPTY_DIGEST, Corruption, Incarnation, NodeIdentity, PeerRecord

CRC: Final = struct.Struct(">I")
U64: Final = struct.Struct(">Q")  # slots (in keys), the format version, the reserved round
BALLOT: Final = struct.Struct(">Qi")  # round, node_index
TAIL_BODY: Final = struct.Struct(">Q16s")  # chosen_through, digest
CRC_SIZE: Final = CRC.size
SLOT_SIZE: Final = U64.size

# Keys in the ``meta`` table.
META_FORMAT: Final = b"format"
META_ROUND: Final = b"reserved_round"
META_IDENTITY: Final = b"identity"
META_COMMITS: Final = b"commits"  # commits made, counted in each commit
META_FLOOR: Final = b"round_floor"
META_MAX_PROMISED: Final = b"max_promised_round"
META_PEERS: Final = b"peers"


def seal(key: bytes, payload: bytes) -> bytes:
    """The stored form of `payload` under `key`: its checksum, then the payload."""
    return CRC.pack(zlib.crc32(payload, zlib.crc32(key))) + payload


def _encode_incarnation(incarnation: Incarnation) -> list[object]:
    return [incarnation.generation, incarnation.id.hex()]


def _decode_incarnation(raw: object) -> Incarnation:
    if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int)
            and isinstance(raw[1], str)):
        raise ValueError(f"not an incarnation: {raw!r}")
    return Incarnation(raw[0], bytes.fromhex(raw[1]))


def encode_identity(identity: NodeIdentity) -> bytes:
    """The payload of the node identity record (JSON, so a person can read it)."""
    incarnation = identity.incarnation
    return json.dumps({
        "node_id": identity.node_id,
        "cluster": [list(pair) for pair in identity.cluster],
        "incarnation": None if incarnation is None else _encode_incarnation(incarnation),
        "join_pending": identity.join_pending,
        "recovery_required": identity.recovery_required,
    }).encode()


def decode_identity(payload: bytes) -> NodeIdentity:
    decoded = json.loads(payload)
    incarnation = decoded.get("incarnation")
    return NodeIdentity(
        decoded["node_id"], tuple((node, address) for node, address in decoded["cluster"]),
        None if incarnation is None else _decode_incarnation(incarnation),
        bool(decoded.get("join_pending", False)),
        decoded.get("recovery_required"),
    )


def encode_peers(records: dict[str, PeerRecord]) -> bytes:
    return json.dumps({node: [_encode_incarnation(r.incarnation), r.durable_seq]
                       for node, r in sorted(records.items())}).encode()


def decode_peers(payload: bytes) -> dict[str, PeerRecord]:
    decoded = json.loads(payload)
    return {node: PeerRecord(_decode_incarnation(incarnation), int(seq))
            for node, (incarnation, seq) in decoded.items()}


class Records:
    """Key building and checked decoding for the store at `path`.

    An object rather than plain functions because two things vary per store: the
    path, which every `Corruption` message names, and the longest account the
    environment's key size allows.
    """

    __slots__ = ("max_account_bytes", "path")

    def __init__(self, path: str, max_key_size: int) -> None:
        self.path = path
        # Room for the NUL and the slot in the longest (vote and chosen) keys.
        self.max_account_bytes = max_key_size - 1 - SLOT_SIZE

    def account_key(self, account: str) -> bytes:
        """The key prefix of `account` in every table: its UTF-8 bytes, then NUL."""
        raw = account.encode()
        if b"\x00" in raw or len(raw) > self.max_account_bytes:
            raise ValueError(
                f"account {account!r} cannot be stored: it must hold no NUL character and "
                f"be at most {self.max_account_bytes} bytes of UTF-8"
            )
        return raw + b"\x00"

    def checked(self, key: bytes, raw: bytes, what: str, *args: object,
                account: str | None = None, slot: int | None = None) -> bytes:
        """The payload of a stored record, after verifying its checksum.

        `what % args` names the record; it is only formatted if the check fails,
        since this runs for every record read.
        """
        if len(raw) >= CRC_SIZE:
            payload = raw[CRC_SIZE:]
            stored = CRC.unpack_from(raw)[0]
            computed = zlib.crc32(payload, zlib.crc32(key))
            if stored == computed:
                return payload
            detail = f"stored crc32 {stored:#010x}, computed {computed:#010x}"
        else:
            detail = f"only {len(raw)} bytes"
        raise Corruption(
            f"{what % args} in the store at {self.path} failed its checksum ({detail}): the data "
            f"on disk is damaged; run `ledger recover` on this node (see README, 'Losing a "
            f"disk'), which keeps what verifies and fetches the rest from its peers",
            account, slot,
        )

    def decode_promise(self, raw: bytes | None, key: bytes, account: str) -> Ballot:
        if raw is None:
            return NULL_BALLOT
        payload = self.checked(key, raw, "the promise of account %r", account, account=account)
        return Ballot(*BALLOT.unpack(payload))

    def decode_tail(self, raw: bytes | None, key: bytes, account: str) -> tuple[int, bytes]:
        """(chosen_through, digest) of an account; (-1, EMPTY_DIGEST) if nothing is chosen."""
        if raw is None:
            return -1, EMPTY_DIGEST
        through, digest = TAIL_BODY.unpack(
            self.checked(key, raw, "the chosen tail of account %r", account, account=account)
        )
        return through, digest

    def vote_entry(self, key: bytes, raw: bytes, account: str, slot: int) -> AcceptedEntry:
        payload = self.checked(key, raw, "the vote of account %r at slot %d", account, slot,
                               account=account)
        round_, node_index = BALLOT.unpack_from(payload)
        return AcceptedEntry(slot, Ballot(round_, node_index), payload[BALLOT.size:])
