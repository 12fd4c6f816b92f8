"""Principals and roles: who a caller is, read from its certificate (never from a field
of a message).

A certificate names its principal and roles in subject-alternative-name URIs:
``urn:ledger:name:NAME`` (exactly one) and ``urn:ledger:role:ROLE`` (one or more).
Member certificates carry the role ``member`` and the member id as their name;
client certificates carry ``teller``, ``auditor`` or ``operator``.
"""

from __future__ import annotations

import contextvars
import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

NAME_URI_PREFIX = "urn:ledger:name:"
ROLE_URI_PREFIX = "urn:ledger:role:"
MAX_PRINCIPAL_CHARS = 64
#: A principal's name: what the audit trail records, so nothing a log could misread.
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: Names no client certificate may take: the CA's own, and the insecure mode's.
RESERVED_NAMES = frozenset({"ca", "anonymous"})


class Role(enum.Enum):
    TELLER = "teller"  # moves money (open, deposit, withdraw, transfer) and reads
    AUDITOR = "auditor"  # reads balances, histories and the account list; nothing else
    OPERATOR = "operator"  # status and administration; never moves money
    MEMBER = "member"  # a node of the cluster: the peer service and forwarding

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(role.value for role in CLIENT_ROLES)
            raise ValueError(f"{text!r} is not a role: {names}") from None


#: The roles a client certificate may carry (`member` is for `certs init` alone).
CLIENT_ROLES = (Role.TELLER, Role.AUDITOR, Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    name: str
    roles: frozenset[Role]
    serial: int | None = None  # the certificate's serial number (None: no certificate)
    not_after_s: float | None = None  # when the certificate expires (Unix time)

    def has(self, role: Role) -> bool:
        return role in self.roles

    def is_member(self, node_id: str | None = None) -> bool:
        """A node of the cluster (that node, if `node_id` is given)."""
        return Role.MEMBER in self.roles and (node_id is None or self.name == node_id)


#: Every caller under `ledger serve --insecure`: local development only.
ANONYMOUS = Principal("anonymous", frozenset(Role))


class NotAPrincipal(ValueError):
    """A certificate that names no usable principal."""


def check_name(name: str) -> str:
    """`name` if it may name a principal; else ValueError saying why."""
    if not PRINCIPAL_NAME.fullmatch(name):
        raise ValueError(
            f"{name[:80]!r} cannot name a principal: 1 to {MAX_PRINCIPAL_CHARS} letters, "
            "digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def principal_of_certificate(certificate: x509.Certificate) -> Principal:
    """The principal a certificate names; NotAPrincipal when it names none, or several,
    or a role this program does not know (a certificate is read whole or not at all)."""
    try:
        names = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        raise NotAPrincipal("the certificate has no subject alternative names") from None
    except ValueError as error:  # a malformed extension: the certificate is not read at all
        raise NotAPrincipal(f"the certificate's extensions cannot be read: {error}") from None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    principal_names = [u[len(NAME_URI_PREFIX):] for u in uris if u.startswith(NAME_URI_PREFIX)]
    role_names = [u[len(ROLE_URI_PREFIX):] for u in uris if u.startswith(ROLE_URI_PREFIX)]
    if len(principal_names) != 1:
        raise NotAPrincipal(f"the certificate names {len(principal_names)} principals "
                            f"({NAME_URI_PREFIX}NAME URIs), not exactly one")
    try:
        name = check_name(principal_names[0])
        roles = frozenset(Role(role) for role in role_names)
    except ValueError as error:
        raise NotAPrincipal(str(error)) from None
    if not roles:
        raise NotAPrincipal(f"the certificate carries no role ({ROLE_URI_PREFIX}ROLE URIs)")
    return Principal(name, roles, certificate.serial_number,
                     certificate.not_valid_after_utc.timestamp())


def principal_of_pem(pem: bytes) -> Principal:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise NotAPrincipal(f"the certificate cannot be read: {error}") from None
    return principal_of_certificate(certificate)


_CURRENT: contextvars.ContextVar[Principal] = contextvars.ContextVar("ledger_principal")


def current_principal() -> Principal:
    """Who made the RPC being handled (the front door sets it before any servicer runs;
    a servicer reached without it is a programming error)."""
    return _CURRENT.get()


def set_current_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _CURRENT.set(principal)
