"""`ledger demo`: see a replicated ledger survive a crash and converge."""

from ledger.demo.scenario import run_demo

__all__ = ["run_demo"]
