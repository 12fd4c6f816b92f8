"""The one HTML page of `ledger dashboard` (live) and `ledger demo --explain --html`
(saved): self-contained, no build step, its script draws the diagrams as SVG."""

from __future__ import annotations

import html
import json
from importlib import resources

TEMPLATE = "ledger_page.html"


def render(title: str, data: dict[str, object] | None) -> str:
    """The page; `data` embedded makes a saved page, None a live one (it polls /api)."""
    template = resources.files("ledger.tools").joinpath(TEMPLATE).read_text(encoding="utf-8")
    # Inside <script>: no "<" at all, so nothing in the data can end the element.
    payload = "null" if data is None else json.dumps(data).replace("<", "\\u003c")
    return template.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
