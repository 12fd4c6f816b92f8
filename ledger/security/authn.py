"""Who is calling: the principal in the TLS session's client certificate (never a field
of a message), or ANONYMOUS on a node started with --insecure."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ledger.security.principal import ANONYMOUS, NotAPrincipal, Principal, principal_of_pem
from ledger.security.revocation import RevocationList

MAX_CACHED_CERTIFICATES = 4_096  # parsed certificates kept, to parse each only once


class Unauthenticated(Exception):
    """No usable principal: no certificate, one naming none, or a revoked one."""


class Authenticator:
    def __init__(self, insecure: bool, revocations: RevocationList | None = None) -> None:
        self.insecure = insecure
        self.revocations = revocations
        self._parsed: dict[bytes, Principal | NotAPrincipal] = {}

    def principal(self, auth_context: Mapping[str, Sequence[bytes]]) -> Principal:
        """The caller, from grpc's auth context; Unauthenticated saying why not."""
        if self.insecure:
            return ANONYMOUS
        pems = auth_context.get("x509_pem_cert")
        if not pems:
            raise Unauthenticated("the call carries no client certificate")
        pem = pems[0]
        principal = self._parsed.get(pem)
        if principal is None:
            try:
                principal = principal_of_pem(pem)
            except NotAPrincipal as error:
                principal = error
            if len(self._parsed) >= MAX_CACHED_CERTIFICATES:
                self._parsed.clear()
            self._parsed[pem] = principal
        if isinstance(principal, NotAPrincipal):
            raise Unauthenticated(f"the client certificate names no usable principal: "
                                  f"{principal}")
        self.check_still_valid(principal)
        return principal

    def check_still_valid(self, principal: Principal) -> None:
        """Unauthenticated if `principal`'s certificate has since expired or been revoked
        (a stream is checked again at each request: it may stay open for days)."""
        if principal.not_after_s is not None and time.time() > principal.not_after_s:
            raise Unauthenticated(f"the certificate of {principal.name} has expired")
        if self.revocations is not None and self.revocations.refuses(principal):
            raise Unauthenticated(f"the certificate of {principal.name} is revoked")
