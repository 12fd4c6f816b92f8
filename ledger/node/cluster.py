"""Cluster membership as given on the command line, and what every node derives from it."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ConfigError(ValueError):
    """The cluster description is malformed; the message says how."""


@dataclass(frozen=True, slots=True)
class Member:
    node_id: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> tuple[str, int]:
    """Split HOST:PORT (an IPv6 host goes in brackets: [::1]:7001)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{text!r} is not HOST:PORT")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} in {text!r} is out of range 1-65535")
    return host, port


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The members sorted by id: a node's ballot index is its rank in this order."""

    members: tuple[Member, ...]

    @classmethod
    def parse(cls, text: str) -> ClusterConfig:
        """Parse `ID=HOST:PORT,ID=HOST:PORT,...` (any order; ids unique)."""
        members: dict[str, Member] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            node_id, sep, address = item.partition("=")
            if not sep:
                raise ConfigError(f"{item!r} is not ID=HOST:PORT")
            if not NODE_ID_PATTERN.fullmatch(node_id):
                raise ConfigError(f"node id {node_id!r} must be 1-64 of [A-Za-z0-9._-]")
            if node_id in members:
                raise ConfigError(f"node id {node_id!r} appears twice")
            host, port = parse_address(address)
            members[node_id] = Member(node_id, host, port)
        if not members:
            raise ConfigError("the cluster has no members")
        addresses = [m.address for m in members.values()]
        if len(set(addresses)) != len(addresses):
            raise ConfigError("two members share an address")
        return cls(tuple(sorted(members.values(), key=lambda m: m.node_id)))

    @property
    def size(self) -> int:
        return len(self.members)

    def index_of(self, node_id: str) -> int:
        for index, member in enumerate(self.members):
            if member.node_id == node_id:
                return index
        raise ConfigError(
            f"node id {node_id!r} is not in the cluster ({', '.join(self.node_ids)})"
        )

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(m.node_id for m in self.members)

    def canonical(self) -> str:
        """One spelling of the membership, whatever order the flag listed it in."""
        return ",".join(f"{m.node_id}={m.address}" for m in self.members)

    @property
    def fingerprint(self) -> str:
        """Carried by every peer call; nodes configured differently refuse each other."""
        return _fingerprint(self.canonical())

    def as_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.node_id, m.address) for m in self.members)


@functools.lru_cache(maxsize=16)
def _fingerprint(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
