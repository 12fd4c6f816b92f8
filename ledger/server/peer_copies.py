"""Fetching a peer's copy of a chosen value, to put back one this node found damaged."""

from __future__ import annotations

import grpc

from ledger.node.cluster import ClusterConfig
from ledger.node.transport import open_channel
from ledger.security.tls import Security
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

FETCH_TIMEOUT_S = 2.0


class PeerCopies:
    """Asks the other members, in turn, for a chosen value (Admin.Log)."""

    def __init__(self, cluster: ClusterConfig, node_index: int, security: Security) -> None:
        self._security = security
        self._addresses = [m.address for i, m in enumerate(cluster.members) if i != node_index]
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def fetch(self, account: str, slot: int) -> bytes | None:
        """The value chosen at (account, slot), from the first peer that holds it."""
        for address in self._addresses:
            channel = self._channels.get(address)
            if channel is None:
                channel = self._channels[address] = open_channel(address, self._security)
            try:
                reply = await pb_grpc.AdminStub(channel).Log(
                    pb.LogRequest(account=account, from_slot=slot, limit=1),
                    timeout=FETCH_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                continue
            if reply.chosen_through >= slot and reply.values:
                return bytes(reply.values[0])
        return None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
