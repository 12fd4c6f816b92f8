"""Which roles may call which RPC: the one table the front door consults on every call
(the README's table is this one; a test keeps them equal and checks that every method
of every service the node serves is listed, so a new RPC cannot go unguarded).

Least privilege: a teller moves money and reads; an auditor only reads balances,
histories, the account list and the audit; an operator reads the node's state and the
audit (`ledger status` shows its totals) and runs admin calls (Admin's log, trace and
backup expose memos, so only operators get them), but never moves money; members, the
nodes' own certificates, alone speak the peer protocol, and forward clients' writes
(Submit, SubmitStream) and fetch peers' copies (Admin.Log).
"""

from __future__ import annotations

from ledger.security.principal import Principal, Role

TELLER, AUDITOR, OPERATOR, MEMBER = Role.TELLER, Role.AUDITOR, Role.OPERATOR, Role.MEMBER
#: Any authenticated principal (health checks: they reveal nothing).
ANY_ROLE = frozenset(Role)

READERS = frozenset({TELLER, AUDITOR})

METHOD_ROLES: dict[str, frozenset[Role]] = {
    "/ledger.v1.Ledger/OpenAccount": frozenset({TELLER}),
    "/ledger.v1.Ledger/Deposit": frozenset({TELLER}),
    "/ledger.v1.Ledger/Withdraw": frozenset({TELLER}),
    "/ledger.v1.Ledger/Transfer": frozenset({TELLER}),
    "/ledger.v1.Ledger/Submit": frozenset({TELLER, MEMBER}),
    "/ledger.v1.Ledger/SubmitStream": frozenset({TELLER, MEMBER}),
    "/ledger.v1.Ledger/GetBalance": READERS,
    "/ledger.v1.Ledger/GetHistory": READERS,
    "/ledger.v1.Ledger/ListAccounts": READERS,
    "/ledger.v1.Ledger/Audit": READERS | {OPERATOR},
    "/ledger.v1.Admin/Status": frozenset({OPERATOR}),
    "/ledger.v1.Admin/Log": frozenset({OPERATOR, MEMBER}),
    "/ledger.v1.Admin/Trace": frozenset({OPERATOR}),
    "/ledger.v1.Admin/Backup": frozenset({OPERATOR}),
    "/ledger.v1.Replica/Step": frozenset({MEMBER}),
    "/ledger.v1.Replica/Stream": frozenset({MEMBER}),
    "/ledger.v1.Replica/Identify": frozenset({MEMBER}),
    "/ledger.v1.Replica/Rejoin": frozenset({MEMBER}),
    "/ledger.v1.Replica/RecoveryTails": frozenset({MEMBER}),
    "/grpc.health.v1.Health/Check": ANY_ROLE,
    "/grpc.health.v1.Health/Watch": ANY_ROLE,
    "/grpc.health.v1.Health/List": ANY_ROLE,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": ANY_ROLE,
}


def refusal(method: str, principal: Principal) -> str | None:
    """Why `principal` may not call `method` (None: it may). A method missing from the
    table is refused to everyone."""
    allowed = METHOD_ROLES.get(method)
    if allowed is None:
        return f"{method} is not in the authorisation table: refused to everyone"
    if principal.roles & allowed:
        return None
    held = ", ".join(sorted(role.value for role in principal.roles)) or "none"
    needed = " or ".join(sorted(role.value for role in allowed))
    return f"{principal.name} (roles: {held}) may not call {method}: it needs {needed}"
