"""How `ledger serve` logs: one line per event, each naming the node; as text for people
or as JSON objects for log pipelines (`--log-format json`)."""

from __future__ import annotations

import json
import logging
import time

FORMATS = ("text", "json")


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, node, logger, message, and
    the exception's traceback when there is one."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "node": self._node_id,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event)


def configure(node_id: str, level: str, log_format: str) -> None:
    """Send every log record to stderr, one line each, in `log_format`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines(node_id) if log_format == "json" else logging.Formatter(
        f"%(asctime)s %(levelname)s node={node_id} %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
