"""The floor: a Ledger server that does nothing, to show what Python gRPC alone costs.

    python -m ledger.bench.floor --listen 127.0.0.1:7100

It answers every Deposit at once with an empty reply, and every Submit (and every
batch of a SubmitStream) with one empty result per operation: no consensus, no
disk. `ledger bench --floor` runs the same load generator against it, so the table
can say how much of a write's time and CPU is the gRPC server itself. Never a
ledger: it stores nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import grpc

from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc


class DoNothingLedger(pb_grpc.LedgerServicer):
    async def Deposit(
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        return pb.TransactionReply()

    async def Transfer(
        self, request: pb.TransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferReply:
        return pb.TransferReply()

    async def Submit(
        self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitReply:
        return pb.SubmitReply(results=[pb.OperationResult() for _ in request.operations])

    async def SubmitStream(
        self, requests: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamReply]:
        async for request in requests:
            yield pb.StreamReply(tag=request.tag,
                                 results=[pb.OperationResult() for _ in request.operations])


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    pb_grpc.add_LedgerServicer_to_server(DoNothingLedger(), server)
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on")
    asyncio.run(serve(parser.parse_args().listen))


if __name__ == "__main__":
    main()
