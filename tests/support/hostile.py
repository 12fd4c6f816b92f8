"""Hypothesis strategies for hostile input: well-formed protobuf messages whose fields hold
anything a buggy member or client might put there, and raw bytes."""

from __future__ import annotations

from hypothesis import strategies as st

from ledger.v1 import ledger_pb2 as api
from ledger.v1 import replica_pb2 as peer

UINT64 = 2**64 - 1
EDGE_UINTS = [0, 1, 2, 255, 2**31, 2**48, 2**48 + 1, 2**62, 2**62 + 1, 2**63, UINT64]
EDGE_SINTS = [-(2**63), -(2**31), -2, -1, 0, 1, 2**48, 2**63 - 1]

hostile_text = st.one_of(
    st.sampled_from(["", "a", "a" * 64, "a" * 65, "x" * 600, "a\x00b", "é", "a/b", " ", "-",
                     "ghost", "\ufeff", "😀"]),
    st.text(max_size=80),
)


def uint64s() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_UINTS), st.integers(0, UINT64))


def sint64s() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_SINTS), st.integers(-(2**63), 2**63 - 1))


def int64s() -> st.SearchStrategy[int]:
    return sint64s()


def node_indexes() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([-5, -1, 0, 1, 2, 3, 99, 2**31 - 1, -(2**31)]),
                     st.integers(-(2**31), 2**31 - 1))


@st.composite
def ballots(draw: st.DrawFn) -> peer.Ballot:
    return peer.Ballot(round=draw(uint64s()), node_index=draw(node_indexes()))


values = st.one_of(st.binary(max_size=64), st.sampled_from([b"", bytes(2_000)]))


@st.composite
def peer_messages(draw: st.DrawFn, accounts: st.SearchStrategy[str]) -> peer.PeerMessage:
    """One Paxos message of any kind, every field drawn from hostile values."""
    account = draw(accounts)
    kind = draw(st.sampled_from([
        "prepare", "promise", "accept", "accepted", "nack", "learn", "catch_up_request",
        "catch_up_reply", "tail_query", "tail_report", "tails_request", "tails_reply", "none"]))
    if kind == "prepare":
        body = peer.Prepare(account=account, from_slot=draw(uint64s()), ballot=draw(ballots()))
    elif kind == "promise":
        body = peer.Promise(
            account=account, from_slot=draw(uint64s()), ballot=draw(ballots()),
            accepted=[peer.Vote(slot=draw(uint64s()), ballot=draw(ballots()),
                                value=draw(values))
                      for _ in range(draw(st.integers(0, 3)))],
            chosen=draw(st.lists(values, max_size=3)), chosen_through=draw(sint64s()))
    elif kind == "accept":
        body = peer.Accept(account=account, slot=draw(uint64s()), ballot=draw(ballots()),
                           value=draw(values))
    elif kind == "accepted":
        body = peer.Accepted(account=account, slot=draw(uint64s()), ballot=draw(ballots()),
                             chosen_through=draw(sint64s()))
    elif kind == "nack":
        body = peer.Nack(account=account, slot=draw(uint64s()), ballot=draw(ballots()),
                         promised=draw(ballots()), chosen_through=draw(sint64s()))
    elif kind == "learn":
        body = peer.Learn(account=account, slot=draw(uint64s()), value=draw(values))
    elif kind == "catch_up_request":
        body = peer.CatchUpRequest(account=account, from_slot=draw(uint64s()),
                                   limit=draw(st.integers(0, 2**32 - 1)))
    elif kind == "catch_up_reply":
        body = peer.CatchUpReply(account=account, from_slot=draw(uint64s()),
                                 values=draw(st.lists(values, max_size=4)),
                                 chosen_through=draw(sint64s()))
    elif kind == "tail_query":
        body = peer.TailQuery(account=account, nonce=draw(uint64s()))
    elif kind == "tail_report":
        body = peer.TailReport(account=account, nonce=draw(uint64s()),
                               chosen_through=draw(sint64s()), highest_vote=draw(sint64s()))
    elif kind == "tails_request":
        body = peer.TailsRequest(after=account, limit=draw(st.integers(0, 2**32 - 1)))
    elif kind == "tails_reply":
        body = peer.TailsReply(after=account, complete=draw(st.booleans()), tails=[
            peer.AccountTail(account=draw(accounts), chosen_through=draw(sint64s()))
            for _ in range(draw(st.integers(0, 3)))])
    else:
        return peer.PeerMessage()
    return peer.PeerMessage(**{kind: body})


@st.composite
def api_calls(draw: st.DrawFn, accounts: st.SearchStrategy[str]
              ) -> tuple[str, object]:
    """A public API call (its method name and request), every field drawn from hostile
    values (valid ones among them)."""
    method = draw(st.sampled_from(["OpenAccount", "Deposit", "Withdraw", "Transfer",
                                   "GetBalance", "GetHistory", "ListAccounts", "Submit"]))
    request_ids = st.one_of(hostile_text, st.text(alphabet="abc0123", min_size=1, max_size=8))
    if method == "OpenAccount":
        return method, api.OpenAccountRequest(account_id=draw(accounts),
                                              opening_balance=draw(int64s()),
                                              request_id=draw(request_ids))
    if method in ("Deposit", "Withdraw"):
        request_type = api.DepositRequest if method == "Deposit" else api.WithdrawRequest
        return method, request_type(account_id=draw(accounts), amount=draw(int64s()),
                                    request_id=draw(request_ids), memo=draw(hostile_text))
    if method == "Transfer":
        return method, transfer_request(draw, accounts, request_ids)
    if method == "GetBalance":
        return method, api.GetBalanceRequest(account_id=draw(accounts),
                                             consistency=draw(st.integers(0, 5)))
    if method == "GetHistory":
        return method, api.GetHistoryRequest(
            account_id=draw(accounts), from_position=draw(uint64s()),
            limit=draw(st.integers(0, 2**32 - 1)), consistency=draw(st.integers(0, 5)))
    if method == "ListAccounts":
        return method, api.ListAccountsRequest(after=draw(hostile_text),
                                               limit=draw(st.integers(0, 2**32 - 1)))
    operations = []
    for _ in range(draw(st.integers(0, 4))):
        which = draw(st.sampled_from(["open_account", "deposit", "withdraw", "transfer",
                                      "none"]))
        if which == "transfer":
            operations.append(api.BatchOperation(
                transfer=transfer_request(draw, accounts, request_ids)))
        elif which == "open_account":
            operations.append(api.BatchOperation(open_account=api.OpenAccountRequest(
                account_id=draw(accounts), opening_balance=draw(int64s()),
                request_id=draw(request_ids))))
        elif which == "none":
            operations.append(api.BatchOperation())
        else:
            request_type = api.DepositRequest if which == "deposit" else api.WithdrawRequest
            operations.append(api.BatchOperation(**{which: request_type(
                account_id=draw(accounts), amount=draw(int64s()),
                request_id=draw(request_ids), memo=draw(hostile_text))}))
    return method, api.SubmitRequest(operations=operations)


#: A peer's incarnation for hand-made peer calls to a node that has not heard from that
#: peer yet (it records the first incarnation it hears from each peer).
TEST_INCARNATION = peer.Incarnation(generation=0, id=b"test-incarnatio!")


def transfer_request(draw: st.DrawFn, accounts: st.SearchStrategy[str],
                     request_ids: st.SearchStrategy[str]) -> api.TransferRequest:
    return api.TransferRequest(from_account_id=draw(accounts), to_account_id=draw(accounts),
                               amount=draw(int64s()), request_id=draw(request_ids),
                               memo=draw(hostile_text))
