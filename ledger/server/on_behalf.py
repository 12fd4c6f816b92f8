"""Whose operations a Submit call carries, and whether it was forwarded: pure rules the
Ledger servicer applies to the caller the front door authenticated.

A client's operations are its own: each is recorded under the caller's name. A node
that forwards clients' writes to the node leading their accounts names each write's
original principal in `on_behalf_of`, and marks the call FORWARDED; both are honoured
from cluster members only (a member's certificate), never from a client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger import errors
from ledger.security.principal import Principal, check_name
from ledger.server.forwarder import FORWARDED

ONLY_MEMBERS = "only cluster members may submit on behalf of another principal"


class OnBehalfDenied(errors.PermissionDenied):
    """A caller that is not a member named other principals: nothing is written."""


def submit_principals(caller: Principal, on_behalf_of: Sequence[str],
                      operations: int) -> list[str]:
    """The principal of each of a Submit's `operations`, in order.

    OnBehalfDenied if a non-member sets `on_behalf_of`; InvalidRequest if it does not
    name exactly one valid principal per operation.
    """
    if not on_behalf_of:
        return [caller.name] * operations
    if not caller.is_member():
        raise OnBehalfDenied(ONLY_MEMBERS)
    if len(on_behalf_of) != operations:
        raise errors.InvalidRequest(
            f"on_behalf_of names {len(on_behalf_of)} principals for {operations} "
            "operations: it must name exactly one per operation, in order")
    for name in on_behalf_of:
        try:
            check_name(name)
        except ValueError as error:
            raise errors.InvalidRequest(f"on_behalf_of: {error}") from None
    return list(on_behalf_of)


def forwarded(caller: Principal, metadata: Iterable[tuple[str, str]]) -> bool:
    """Did another member forward this call (so it must not be forwarded again)? The
    marker counts only from a member; from anyone else it is ignored."""
    return caller.is_member() and FORWARDED in tuple(metadata)
