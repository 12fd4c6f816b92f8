"""A node runs on uvloop when it is installed, and on asyncio's loop when told to."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from ledger.server import event_loop


async def running_loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.fixture(autouse=True)
def switch_interval_restored() -> Iterator[None]:
    """`run` sets the interpreter's switch interval: this test process keeps its own."""
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_uvloop_is_the_default_and_asyncio_can_be_forced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")  # a dependency wherever uvloop supports the platform
    monkeypatch.delenv(event_loop.ENV_EVENT_LOOP, raising=False)
    assert event_loop.loop_factory()[0] == "uvloop"
    assert event_loop.run(running_loop_type()).startswith("uvloop")
    monkeypatch.setenv(event_loop.ENV_EVENT_LOOP, "asyncio")
    assert event_loop.loop_factory() == ("asyncio", None)
    assert event_loop.run(running_loop_type()).startswith("asyncio")
    assert sys.getswitchinterval() == pytest.approx(event_loop.SWITCH_INTERVAL_S)


def test_the_switch_interval_is_lowered_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV_SWITCH_INTERVAL_S, raising=False)
    assert event_loop.switch_interval_s() == event_loop.SWITCH_INTERVAL_S
    monkeypatch.setenv(event_loop.ENV_SWITCH_INTERVAL_S, "0.005")
    assert event_loop.switch_interval_s() == 0.005
    for bad in ("abc", "0", "-1", "10"):
        monkeypatch.setenv(event_loop.ENV_SWITCH_INTERVAL_S, bad)
        assert event_loop.switch_interval_s() == event_loop.SWITCH_INTERVAL_S
