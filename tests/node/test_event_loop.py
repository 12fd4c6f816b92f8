"""A node runs on uvloop when it is installed, and on asyncio's loop when told to."""

from __future__ import annotations

import asyncio

import pytest

from ledger.server import event_loop


async def running_loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_is_the_default_and_asyncio_can_be_forced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")  # a dependency wherever uvloop supports the platform
    monkeypatch.delenv(event_loop.ENV_EVENT_LOOP, raising=False)
    assert event_loop.loop_factory()[0] == "uvloop"
    assert event_loop.run(running_loop_type()).startswith("uvloop")
    monkeypatch.setenv(event_loop.ENV_EVENT_LOOP, "asyncio")
    assert event_loop.loop_factory() == ("asyncio", None)
    assert event_loop.run(running_loop_type()).startswith("asyncio")
