"""`ledger serve --log-format json`: every line a node logs is one JSON object naming the
node, from the first line to the clean stop."""

from __future__ import annotations

import json
import logging
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from ledger.cli.logs import JsonLines
from ledger.tools.localcluster import free_ports
from tests.support.cli import LEDGER

pytestmark = pytest.mark.xdist_group("processes")

UP_TIMEOUT_S = 60.0


def test_a_node_logs_json_lines_naming_itself(tmp_path: pathlib.Path) -> None:
    [port] = free_ports(1)
    node = subprocess.Popen(
        [*LEDGER, "serve", "--node-id", "n1", "--cluster", f"n1=127.0.0.1:{port}",
         "--data-dir", str(tmp_path / "n1"), "--insecure", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert node.stderr is not None
        events = []
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not any("serving on" in event["message"] for event in events):
            assert time.monotonic() < deadline, events
            line = node.stderr.readline()
            assert line, f"the node ended: {events}"
            events.append(json.loads(line))
        node.send_signal(signal.SIGTERM)
        _, rest = node.communicate(timeout=UP_TIMEOUT_S)
        events += [json.loads(line) for line in rest.splitlines()]
        assert node.returncode == 0
        assert all(event["node"] == "n1" for event in events)
        assert {"time", "level", "logger", "message"} <= set(events[0])
        assert any("stopped cleanly" in event["message"] for event in events), events
    finally:
        if node.poll() is None:
            node.kill()


def test_a_logged_exception_keeps_its_traceback_in_the_object() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("ledger.x", logging.ERROR, __file__, 1, "failed: %s",
                                   ("it",), exc_info=sys.exc_info())
    event = json.loads(JsonLines("n2").format(record))
    assert (event["node"], event["level"], event["message"]) == ("n2", "error", "failed: it")
    assert "ValueError: boom" in event["exception"]
