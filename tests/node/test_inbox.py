"""The driver's inbox: what a rejoined peer's former life sent is dropped, unanswered."""

from __future__ import annotations

import asyncio

from ledger.node.inbox import Call, Inbox
from ledger.paxos import Envelope, Learn


async def test_work_from_a_rejoined_peer_is_dropped_and_its_calls_get_no_answers() -> None:
    loop = asyncio.get_running_loop()
    inbox = Inbox()
    old, other = Call(1, [], loop.create_future()), Call(2, [], loop.create_future())
    inbox.calls += [old, other]
    inbox.messages += [Envelope(1, 0, Learn("a", 0, b"v")), Envelope(2, 0, Learn("a", 0, b"v"))]
    inbox.drop_from(1)
    assert inbox.calls == [other] and [e.source for e in inbox.messages] == [2]
    assert old.future.result() == [] and not other.future.done()
