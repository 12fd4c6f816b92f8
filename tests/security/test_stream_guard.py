"""A stream is checked at every request: a certificate revoked, or expired, while its
stream is open is refused at its next request, not only when the stream opens."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ledger.node.cluster import ClusterConfig
from ledger.security import certs
from ledger.security.authn import Authenticator
from ledger.security.principal import Role
from ledger.security.revocation import RevocationList
from ledger.server.front_door import Guard, guarded_stream


class Aborted(Exception):
    pass


class FakeContext:
    """The two things the front door asks of a call's context."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self.pem]}

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise Aborted(details)


async def test_a_member_revoked_mid_stream_is_refused_at_its_next_request(
        tmp_path: pathlib.Path) -> None:
    certs.write_init(tmp_path, ClusterConfig.parse("n1=127.0.0.1:1,n2=127.0.0.1:2"))
    revoked = tmp_path / "revoked.txt"
    guard = Guard(Authenticator(False, RevocationList(revoked)))
    context = FakeContext((tmp_path / "n2.pem").read_bytes())
    seen: list[str] = []

    async def method(requests: AsyncIterator[Any], context: Any) -> None:
        async for request in requests:
            seen.append(request)
            if request == "first":
                revoked.write_text("n2\n")
                guard.authenticator.revocations.reload()  # type: ignore[union-attr]

    async def requests() -> AsyncIterator[str]:
        for request in ("first", "second", "third"):
            yield request

    handler = guarded_stream(method, guard, "/ledger.v1.Replica/Stream")
    with pytest.raises(Aborted):
        await handler(requests(), context)  # type: ignore[arg-type]
    assert seen == ["first"]  # the second request never reached the method
    assert context.aborted == (grpc.StatusCode.UNAUTHENTICATED,
                               "the certificate of n2 is revoked")
    assert guard.unauthenticated == 1


async def test_a_client_role_is_refused_before_its_stream_is_read(
        tmp_path: pathlib.Path) -> None:
    certs.write_init(tmp_path, ClusterConfig.parse("n1=127.0.0.1:1"))
    certs.write_client(tmp_path, "alice", (Role.TELLER,), tmp_path)
    guard = Guard(Authenticator(False))
    context = FakeContext((tmp_path / "alice.pem").read_bytes())

    async def method(requests: AsyncIterator[Any], context: Any) -> None:
        raise AssertionError("the method must not run")

    async def requests() -> AsyncIterator[str]:
        yield "never read"

    with pytest.raises(Aborted):
        await guarded_stream(method, guard, "/ledger.v1.Replica/Stream")(
            requests(), context)  # type: ignore[arg-type]
    assert context.aborted is not None
    assert context.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
    assert guard.denied == 1


async def test_refusals_are_logged_at_most_once_a_while_and_backups_always(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    certs.write_init(tmp_path, ClusterConfig.parse("n1=127.0.0.1:1"))
    certs.write_client(tmp_path, "olga", (Role.OPERATOR,), tmp_path)
    guard = Guard(Authenticator(False))
    operator = FakeContext((tmp_path / "olga.pem").read_bytes())
    caplog.set_level("INFO", logger="ledger.server.front_door")
    for _ in range(3):  # a caller hammering a method it may not call
        with pytest.raises(Aborted):
            await guard.admit("/ledger.v1.Ledger/Deposit", operator)  # type: ignore[arg-type]
    refusals = [r for r in caplog.records if "refused a call" in r.getMessage()]
    assert len(refusals) == 1 and guard.denied == 3
    await guard.admit("/ledger.v1.Admin/Backup", operator)  # type: ignore[arg-type]
    await guard.admit("/ledger.v1.Admin/Status", operator)  # type: ignore[arg-type]
    audits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit:")]
    assert audits == ["audit: olga called /ledger.v1.Admin/Backup"]
