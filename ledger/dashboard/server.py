"""The dashboard's local web server: the page, and the JSON it polls.

Plain HTTP from the standard library, one thread per request (each reads the cluster
through the probe's gRPC channels, which are thread-safe). Meant for 127.0.0.1: it
shows what an operator may see, to whoever can reach it. Two guards keep other web
pages in the same browser out: a request must name this server as its Host (a page
on another site that rebinds its name to 127.0.0.1 names its own), and the JSON needs
a header only this page's script sends (another site's page cannot send it without
asking first, which this server never allows).
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ledger import errors
from ledger.accounts.validation import check_account_id
from ledger.dashboard.probe import DEFAULT_PAGE_ACCOUNTS, ClusterProbe
from ledger.node.cluster import parse_address
from ledger.tools.page import render

log = logging.getLogger(__name__)

TITLE = "Ledger cluster"
API_HEADER = "X-Ledger-Dashboard"  # the page's script sends it with every /api call
MAX_PAGE_SIZE_DIGITS = 6


class DashboardServer:
    def __init__(self, probe: ClusterProbe, listen: str) -> None:
        host, port = parse_address(listen)
        self._probe = probe
        self._page = render(TITLE, None).encode()
        self._http = ThreadingHTTPServer((host.strip("[]"), port), self._handler())
        self._http.daemon_threads = True
        bound_port = self._http.server_address[1]
        self._hosts = {f"{name}:{bound_port}" for name in
                       (host, "localhost", "127.0.0.1", "[::1]")}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True,
                                        name="dashboard")
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # (shutdown waits for a serving loop: only if one ran)
            self._http.shutdown()
            self._thread.join()
        self._http.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if self.headers.get("Host", "") not in server._hosts:
                    self._send(HTTPStatus.FORBIDDEN, "text/plain",
                               b"this dashboard answers only requests addressed to it\n")
                    return
                if url.path.startswith("/api/") and self.headers.get(API_HEADER) != "1":
                    self._send(HTTPStatus.FORBIDDEN, "text/plain",
                               f"the API answers only the dashboard's page ({API_HEADER})\n"
                               .encode())
                    return
                try:
                    if url.path == "/":
                        self._send(HTTPStatus.OK, "text/html; charset=utf-8", server._page)
                    elif url.path == "/api/cluster":
                        after = query.get("after", "")
                        if after:
                            check_account_id(after)
                        self._json(server._probe.cluster(after, _page_size(query)))
                    elif url.path == "/api/trace":
                        account = query.get("account", "")
                        check_account_id(account)
                        self._json(server._probe.trace(account))
                    else:
                        self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
                except errors.InvalidRequest as error:
                    self._send(HTTPStatus.BAD_REQUEST, "text/plain", f"{error}\n".encode())

            def _json(self, value: object) -> None:
                self._send(HTTPStatus.OK, "application/json", json.dumps(value).encode())

            def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        return Handler


def _page_size(query: dict[str, str]) -> int:
    raw = query.get("limit", "")
    if not raw:
        return DEFAULT_PAGE_ACCOUNTS
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_PAGE_SIZE_DIGITS):
        raise errors.InvalidRequest(f"limit {raw[:20]!r} is not a whole number of at most "
                                    f"{MAX_PAGE_SIZE_DIGITS} digits")
    return int(raw)  # (the probe caps it at its maximum page)
