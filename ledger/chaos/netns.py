"""Real network faults: each node in its own network namespace, nftables dropping packets.

Topology of one run (all inside namespaces this module creates and removes):

    namespace <run>-hub:  bridge br0 10.<k>.0.254  (clients and the harness run here)
    namespace <run>-n1:   eth0 10.<k>.0.1  --veth--  hub:br0
    namespace <run>-n2:   eth0 10.<k>.0.2  --veth--  hub:br0   ...

Partitions and packet loss are nftables rules in the nodes' own namespaces, on
traffic between node addresses only; the hub (clients) keeps reaching every node
unless a fault says otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TABLE = "ledger_chaos"


def unavailable_reason() -> str | None:
    """Why real network faults cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces and nftables need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (Debian: iproute2, nftables)"
    probe = f"ledger-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def run(*args: str, namespace: str | None = None, stdin: str | None = None) -> None:
    command = list(args) if namespace is None else ["ip", "netns", "exec", namespace, *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Topology:
    """The namespaces and addresses of one run."""

    name: str  # prefix of every namespace and interface of this run
    size: int
    subnet: int  # the k of 10.k.0.0/24

    @property
    def hub(self) -> str:
        return f"{self.name}-hub"

    def node_namespace(self, index: int) -> str:
        return f"{self.name}-n{index + 1}"

    def address(self, index: int) -> str:
        return f"10.{self.subnet}.0.{index + 1}"

    @property
    def hub_address(self) -> str:
        return f"10.{self.subnet}.0.254"

    # ------------------------------------------------------------- lifecycle

    def create(self) -> None:
        self.destroy()  # leftovers of a crashed run with the same name
        run("ip", "netns", "add", self.hub)
        run("ip", "link", "set", "lo", "up", namespace=self.hub)
        run("ip", "link", "add", "br0", "type", "bridge", namespace=self.hub)
        run("ip", "addr", "add", f"{self.hub_address}/24", "dev", "br0", namespace=self.hub)
        run("ip", "link", "set", "br0", "up", namespace=self.hub)
        for index in range(self.size):
            namespace = self.node_namespace(index)
            run("ip", "netns", "add", namespace)
            run("ip", "link", "set", "lo", "up", namespace=namespace)
            port = f"p{index + 1}"
            run("ip", "link", "add", "eth0", "netns", namespace, "type", "veth",
                "peer", "name", port, "netns", self.hub)
            run("ip", "addr", "add", f"{self.address(index)}/24", "dev", "eth0",
                namespace=namespace)
            run("ip", "link", "set", "eth0", "up", namespace=namespace)
            run("ip", "link", "set", port, "master", "br0", namespace=self.hub)
            run("ip", "link", "set", port, "up", namespace=self.hub)
            self._install_table(index)

    def destroy(self) -> None:
        existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        names = {line.split()[0] for line in existing.splitlines() if line.strip()}
        for namespace in [self.hub, *(self.node_namespace(i) for i in range(self.size))]:
            if namespace in names:
                subprocess.run(["ip", "netns", "del", namespace], capture_output=True)

    def exec_prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]

    # ---------------------------------------------------------------- faults

    def _install_table(self, index: int) -> None:
        script = (f"add table inet {TABLE}\n"
                  f"add chain inet {TABLE} input {{ type filter hook input priority 0; }}\n"
                  f"add chain inet {TABLE} output {{ type filter hook output priority 0; }}\n")
        run("nft", "-f", "-", namespace=self.node_namespace(index), stdin=script)

    def heal(self) -> None:
        for index in range(self.size):
            namespace = self.node_namespace(index)
            run("nft", "flush", "chain", "inet", TABLE, "input", namespace=namespace)
            run("nft", "flush", "chain", "inet", TABLE, "output", namespace=namespace)

    def cut(self, links: Iterable[tuple[int, int]]) -> None:
        """Drop every packet from node a to node b, for each (a, b)."""
        by_source: dict[int, list[int]] = {}
        for source, destination in links:
            by_source.setdefault(source, []).append(destination)
        for source, destinations in by_source.items():
            addresses = ", ".join(self.address(d) for d in destinations)
            run("nft", "add", "rule", "inet", TABLE, "output", "ip", "daddr",
                f"{{ {addresses} }}", "drop", namespace=self.node_namespace(source))

    def partition(self, groups: Sequence[Iterable[int]]) -> None:
        """Nodes talk only to nodes that share a group with them (groups may overlap)."""
        sets = [set(group) for group in groups]
        self.cut((a, b) for a in range(self.size) for b in range(self.size)
                 if a != b and not any(a in g and b in g for g in sets))

    def lose(self, percent: int) -> None:
        """Drop `percent`% of the packets between nodes, at random, both ways."""
        assert 0 < percent < 100
        peers = ", ".join(self.address(i) for i in range(self.size))
        for index in range(self.size):
            run("nft", "add", "rule", "inet", TABLE, "output", "ip", "daddr",
                f"{{ {peers} }}", "numgen", "random", "mod", "100", "<", str(percent), "drop",
                namespace=self.node_namespace(index))
