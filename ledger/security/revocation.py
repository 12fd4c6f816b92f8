"""The revocation list: a file of principal names and certificate serials that are
refused, re-read when it changes (checked at most once a second) and on SIGHUP.

One entry per line: a principal name (every certificate of that name is refused) or
``serial:HEX`` (one certificate, as `ledger certs issue` prints it); ``#`` starts a
comment. TLS itself still accepts a revoked certificate (grpcio cannot be told
otherwise); every RPC it makes is refused, UNAUTHENTICATED, before anything runs.
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from dataclasses import dataclass

from ledger.security.principal import Principal, check_name

log = logging.getLogger(__name__)

MAX_REVOCATION_LIST_BYTES = 16 << 20
RECHECK_EVERY_S = 1.0  # how stale a revocation may be, at most, without a SIGHUP
SERIAL_PREFIX = "serial:"


class RevocationListError(ValueError):
    """A revocation list that cannot be read whole."""


@dataclass(frozen=True, slots=True)
class Revoked:
    names: frozenset[str] = frozenset()
    serials: frozenset[int] = frozenset()

    def refuses(self, principal: Principal) -> bool:
        return principal.name in self.names or principal.serial in self.serials


def parse(text: str, source: str = "the revocation list") -> Revoked:
    """The entries of a revocation list; RevocationListError naming the first bad line
    (a list is taken whole or not at all: half a list would let the rest in)."""
    names: set[str] = set()
    serials: set[int] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if line.lower().startswith(SERIAL_PREFIX):
                serials.add(int(line[len(SERIAL_PREFIX):].strip().replace(":", ""), 16))
            else:
                names.add(check_name(line))
        except ValueError as error:
            raise RevocationListError(f"{source}, line {number}: {error}") from None
    return Revoked(frozenset(names), frozenset(serials))


class RevocationList:
    """The current list from `path` (a missing file revokes nothing)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._checked_s = time.monotonic()
        self.revoked = Revoked()
        self.reload(strict=True)

    def refuses(self, principal: Principal) -> bool:
        now_s = time.monotonic()
        if now_s - self._checked_s >= RECHECK_EVERY_S:
            self._checked_s = now_s
            self.reload(strict=False)
        return self.revoked.refuses(principal)

    def reload(self, strict: bool = False) -> None:
        """Read the list again if the file changed. At start (`strict`) a bad list stops
        the node; later, it keeps the list it had and says so (an ERROR each change)."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            if self._stamp is not None:
                log.warning("revocation list %s was removed: nothing is revoked", self.path)
            self._stamp, self.revoked = None, Revoked()
            return
        except OSError as error:
            return self._failed(f"cannot read {self.path}: {error.strerror}", strict)
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return
        try:
            if status.st_size > MAX_REVOCATION_LIST_BYTES:
                raise RevocationListError(f"{self.path} is larger than "
                                          f"{MAX_REVOCATION_LIST_BYTES} bytes")
            revoked = parse(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, UnicodeDecodeError, RevocationListError) as error:
            self._stamp = stamp  # one ERROR per change of the file, not one per call
            return self._failed(str(error), strict)
        self._stamp, self.revoked = stamp, revoked
        log.info("revocation list %s: %d names, %d serials revoked", self.path,
                 len(revoked.names), len(revoked.serials))

    def _failed(self, reason: str, strict: bool) -> None:
        if strict:
            raise RevocationListError(reason)
        log.error("revocation list not reloaded (the previous one stays in force): %s", reason)
