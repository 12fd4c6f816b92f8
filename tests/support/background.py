"""Three in-process nodes on an event loop of their own thread, for synchronous tests
(hypothesis drives them one example at a time), with everything that went wrong in them
collected: exceptions nobody handled, and error logs."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from tests.support.in_process import Servers

T = TypeVar("T")


class Trouble(logging.Handler):
    """Error records and unhandled exceptions, except the ones a test expects."""

    def __init__(self, expected: tuple[str, ...]) -> None:
        super().__init__(logging.ERROR)
        self.expected = expected
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if not any(fragment in text for fragment in self.expected):
            self.records.append(f"{record.name}: {text} {record.exc_info or ''}")


class BackgroundCluster:
    def __init__(self, size: int = 3, expected_errors: tuple[str, ...] = ()) -> None:
        self.size = size
        self.trouble = Trouble(expected_errors)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._unhandled)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.servers = Servers(size)

    def _unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.trouble.records.append(f"unhandled: {context.get('message')} "
                                    f"{context.get('exception')!r}")

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    @property
    def addresses(self) -> list[str]:
        return [self.servers.address(index) for index in range(self.size)]

    def channels(self) -> list[grpc.Channel]:
        """A blocking channel to each node (the caller closes them)."""
        return [grpc.insecure_channel(address) for address in self.addresses]

    def __enter__(self) -> BackgroundCluster:
        logging.getLogger().addHandler(self.trouble)
        self._thread.start()
        for index in range(self.size):
            self.run(self.servers.start(index))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.servers.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            logging.getLogger().removeHandler(self.trouble)
