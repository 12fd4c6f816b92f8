"""`teller`: a bank teller's command line over the Python client.

Options --servers, --json and --timeout go before or after the verb; the TLS options
(--ca, --cert, --key, --insecure, or LEDGER_CA, LEDGER_CERT, LEDGER_KEY and
LEDGER_INSECURE=1) before it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

import click

from ledger.accounts.model import MAX_BALANCE
from ledger.cli.security_options import ClientTls, client_options
from ledger.client import (
    AccountExists,
    AccountNotFound,
    BalanceLimit,
    InsufficientFunds,
    InvalidRequest,
    LedgerClient,
    LedgerError,
    PermissionDenied,
    Refused,
    Transaction,
    Unauthenticated,
    Unavailable,
    importer,
    new_request_id,
)
from ledger.client.money import BadAmount, format_amount, parse_amount

T = TypeVar("T")

DEFAULT_SERVERS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_MISSING = 1, 2, 3, 4
#: How a history line names a transfer's other account.
TRANSFER_LINKS = {"transfer_out": "to", "transfer_in": "from", "transfer_refund": "back from"}

EXIT_CODES = """\b
Exit codes:
  0  done (also a retry that found the transaction already done: it says so)
  1  refused by the ledger (insufficient funds, balance limit), or not allowed
     (a certificate without the role, or revoked)
  2  bad input (amount, account id, request id, ...)
  3  outcome unknown (no majority in time): it may or may not have happened;
     the message shows the exact command to retry it safely
  4  account not found, or already exists (also: the request id was already
     used for a different request)"""


class TellerError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


NO_TLS_FLAGS = ClientTls()  # the environment decides


@dataclass(frozen=True, slots=True)
class Settings:
    servers: str
    as_json: bool
    timeout_s: float
    tls: ClientTls = NO_TLS_FLAGS


def common_options(group: bool) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """--servers/--json/--timeout, on the group (with defaults) and on every verb."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        function = click.option(
            "--timeout", "timeout_s", type=click.FloatRange(min=0.1), metavar="SECONDS",
            default=10.0 if group else None, show_default=group,
            help="Give up after this long.")(function)
        function = click.option(
            "--json", "as_json", is_flag=True, default=None,
            help="Print JSON for scripts.")(function)
        return click.option(
            "--servers", metavar="HOST:PORT,...",
            envvar="LEDGER_SERVERS" if group else None,
            default=DEFAULT_SERVERS if group else None, show_default=group,
            help="Ledger nodes to use (env LEDGER_SERVERS).")(function)

    return decorate


def settings_for(ctx: click.Context, servers: str | None, as_json: bool | None,
                 timeout_s: float | None) -> Settings:
    """A verb's own options win over the ones given before it."""
    base: Settings = ctx.find_object(Settings) or Settings(DEFAULT_SERVERS, False, 10.0)
    return Settings(servers or base.servers, bool(as_json) or base.as_json,
                    timeout_s if timeout_s is not None else base.timeout_s, base.tls)


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@common_options(group=True)
@client_options
@click.pass_context
def teller(ctx: click.Context, servers: str, as_json: bool | None, timeout_s: float,
           tls: ClientTls) -> None:
    """Open accounts, deposit, withdraw, and look at balances and history.

    Amounts are written as money: 12.34, 100, 0.05. Every call is made over mutual
    TLS with the certificate in LEDGER_CERT (see --ca, --cert, --key).
    """
    ctx.obj = Settings(servers, bool(as_json), timeout_s, tls)


def amount_argument(allow_zero: bool) -> Callable[[click.Context, click.Parameter, str], int]:
    def convert(ctx: click.Context, param: click.Parameter, value: str) -> int:
        try:
            return parse_amount(value, allow_zero=allow_zero)
        except BadAmount as error:
            raise TellerError(str(error), EXIT_BAD_INPUT) from error
    return convert


def emit(settings: Settings, payload: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(payload) if settings.as_json else text)


def call(settings: Settings, action: Callable[[LedgerClient], T],
         retry_command: list[str] | None = None) -> T:
    """Run `action` with a client; turn ledger errors into messages and exit codes."""
    try:
        with LedgerClient(settings.servers, timeout_s=settings.timeout_s,
                          security=settings.tls.security()) as bank:
            return action(bank)
    except ValueError as error:  # e.g. an empty --servers
        raise TellerError(str(error), EXIT_BAD_INPUT) from error
    except (Unauthenticated, PermissionDenied) as error:  # nothing was written
        raise TellerError(f"not allowed: {error}", EXIT_REFUSED) from error
    except Refused as error:
        raise TellerError(f"refused: {refusal_text(error)}", EXIT_REFUSED) from error
    except InvalidRequest as error:
        raise TellerError(f"bad input: {error}", EXIT_BAD_INPUT) from error
    except (AccountNotFound, AccountExists) as error:
        raise TellerError(str(error), EXIT_MISSING) from error
    except Unavailable as error:
        reason = f"no majority of {settings.servers} answered within {settings.timeout_s:g}s"
        if retry_command is None:
            raise TellerError(f"no answer: {reason}", EXIT_UNKNOWN) from error
        raise TellerError(unknown_outcome(reason, retry_command), EXIT_UNKNOWN) from error
    except LedgerError as error:  # an unexpected status: a write's outcome is unknown too
        if retry_command is None:
            raise TellerError(str(error), EXIT_UNKNOWN) from error
        raise TellerError(unknown_outcome(str(error), retry_command), EXIT_UNKNOWN) from error


def unknown_outcome(reason: str, retry_command: list[str]) -> str:
    verb = next(word for word in retry_command
                if word in ("open", "deposit", "withdraw", "transfer"))
    what = {"open": "opening", "withdraw": "withdrawal"}.get(verb, verb)
    return (f"outcome unknown: {reason}; the {what} may or may not have "
            "happened.\nTo retry it safely (it cannot apply twice), run:\n  "
            + shlex.join(retry_command))


def refusal_text(error: Refused) -> str:
    """The ledger's refusal with its numbers written as money (the server sends minor units)."""
    if error.balance is None or error.amount is None:
        return str(error)
    where = f" (operation {error.position}, kept in the history)" if error.position is not None \
        else ""
    if isinstance(error, InsufficientFunds):
        what = "transfer" if "transfer" in str(error) else "withdrawal"
        return (f"insufficient funds: the balance was {format_amount(error.balance)} when the "
                f"{what} of {format_amount(error.amount)} was decided{where}")
    if isinstance(error, BalanceLimit):
        return (f"balance limit: a deposit of {format_amount(error.amount)} would take the "
                f"balance of {format_amount(error.balance)} past the limit of "
                f"{format_amount(MAX_BALANCE)}{where}")
    return str(error)


def report_transaction(settings: Settings, verb: str, result: Transaction) -> None:
    payload = asdict(result)
    again = " (already done earlier with this request id; nothing new was written)"
    text = (f"{verb} {result.account_id}: balance {format_amount(result.balance)} "
            f"(operation {result.position}){again if result.duplicate else ''}")
    emit(settings, payload, text)


def request_id_or_new(request_id: str | None) -> str:
    if request_id is None:
        return new_request_id()
    if not request_id.strip():
        raise TellerError("--request-id must not be empty", EXIT_BAD_INPUT)
    return request_id


def retry_line(settings: Settings, *words: str) -> list[str]:
    return ["teller", *settings.tls.flags(), "--servers", settings.servers, *words]


@teller.command("open")
@click.argument("account")
@click.option("--opening-balance", default="0", callback=amount_argument(allow_zero=True),
              help="Starting balance, e.g. 100.00.")
@click.option("--request-id", help="Idempotency key; reuse it to retry safely.")
@common_options(group=False)
@click.pass_context
def open_(ctx: click.Context, account: str, opening_balance: int, request_id: str | None,
          servers: str | None, as_json: bool | None, timeout_s: float | None) -> None:
    """Open ACCOUNT."""
    settings = settings_for(ctx, servers, as_json, timeout_s)
    request_id = request_id_or_new(request_id)
    again = retry_line(settings, "open", account, "--opening-balance",
                       format_amount(opening_balance), "--request-id", request_id)
    result = call(settings, lambda bank: bank.open_account(account, opening_balance, request_id),
                  again)
    report_transaction(settings, "opened", result)


def transfer_command(kind: str) -> click.Command:
    @click.argument("account")
    @click.argument("amount", callback=amount_argument(allow_zero=False))
    @click.option("--memo", default="", help="A note kept with the transaction.")
    @click.option("--request-id", help="Idempotency key; reuse it to retry safely.")
    @common_options(group=False)
    @click.pass_context
    def command(ctx: click.Context, account: str, amount: int, memo: str,
                request_id: str | None, servers: str | None, as_json: bool | None,
                timeout_s: float | None) -> None:
        settings = settings_for(ctx, servers, as_json, timeout_s)
        request_id = request_id_or_new(request_id)
        words = [kind, account, format_amount(amount), "--request-id", request_id]
        if memo:
            words[3:3] = ["--memo", memo]
        method = LedgerClient.deposit if kind == "deposit" else LedgerClient.withdraw
        result = call(settings, lambda bank: method(bank, account, amount, memo, request_id),
                      retry_line(settings, *words))
        report_transaction(settings, "deposited to" if kind == "deposit" else "withdrew from",
                           result)

    command.__doc__ = f"{kind.capitalize()} AMOUNT {'to' if kind == 'deposit' else 'from'} ACCOUNT."
    # "-5" must reach the amount parser (and its one-line error), not the option parser.
    return click.command(kind, context_settings={"ignore_unknown_options": True})(command)


teller.add_command(transfer_command("deposit"))
teller.add_command(transfer_command("withdraw"))


@teller.command("transfer", context_settings={"ignore_unknown_options": True})
@click.argument("from_account")
@click.argument("to_account")
@click.argument("amount", callback=amount_argument(allow_zero=False))
@click.option("--memo", default="", help="A note kept with both sides of the transfer.")
@click.option("--request-id", help="Idempotency key; reuse it to retry safely.")
@common_options(group=False)
@click.pass_context
def transfer(ctx: click.Context, from_account: str, to_account: str, amount: int, memo: str,
             request_id: str | None, servers: str | None, as_json: bool | None,
             timeout_s: float | None) -> None:
    """Move AMOUNT from FROM_ACCOUNT to TO_ACCOUNT (exactly once; refused without funds).

    A transfer the destination cannot take (it would pass the balance limit) bounces:
    the money goes back to FROM_ACCOUNT, and teller exits 1, as for a refusal."""
    settings = settings_for(ctx, servers, as_json, timeout_s)
    request_id = request_id_or_new(request_id)
    words = ["transfer", from_account, to_account, format_amount(amount),
             "--request-id", request_id] + (["--memo", memo] if memo else [])
    receipt = call(settings, lambda bank: bank.transfer(from_account, to_account, amount, memo,
                                                        request_id),
                   retry_line(settings, *words))
    again = " (already done earlier with this request id; nothing new was written)"
    text = (f"transferred {format_amount(amount)} from {from_account} (balance "
            f"{format_amount(receipt.from_balance)}, operation {receipt.from_position}) to "
            f"{to_account} (operation {receipt.to_position}){again if receipt.duplicate else ''}")
    if receipt.bounced:
        text = (f"bounced: {to_account} would have passed the balance limit of "
                f"{format_amount(MAX_BALANCE)}; the {format_amount(amount)} went back to "
                f"{from_account} (operation {receipt.refund_position})")
    emit(settings, asdict(receipt), text)
    if receipt.bounced:
        raise TellerError("the transfer bounced (see above)", EXIT_REFUSED)


@teller.command()
@click.argument("account")
@click.option("--local", is_flag=True,
              help="Answer from the first node that responds, without a majority round; "
                   "may lag.")
@common_options(group=False)
@click.pass_context
def balance(ctx: click.Context, account: str, local: bool, servers: str | None,
            as_json: bool | None, timeout_s: float | None) -> None:
    """Show the balance of ACCOUNT (up to date unless --local)."""
    settings = settings_for(ctx, servers, as_json, timeout_s)
    result = call(settings, lambda bank: bank.balance(account, local=local))
    emit(settings, asdict(result),
         f"{account}: {format_amount(result.balance)} (after operation {result.position})")


@teller.command()
@click.argument("account")
@click.option("--from", "from_position", default=0, type=click.IntRange(min=0),
              help="First operation to show.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@common_options(group=False)
@click.pass_context
def history(ctx: click.Context, account: str, from_position: int, limit: int,
            servers: str | None, as_json: bool | None, timeout_s: float | None) -> None:
    """List the operations of ACCOUNT, refused ones included."""
    settings = settings_for(ctx, servers, as_json, timeout_s)
    entries = call(settings, lambda bank: bank.history(account, from_position, limit))
    if settings.as_json:
        click.echo(json.dumps([asdict(e) for e in entries]))
        return
    click.echo(f"{'#':>5}  {'when (UTC)':<19}  {'kind':<15} {'amount':>14} {'balance':>14}  "
               f"{'by':<16}  note")
    for e in entries:
        when = datetime.fromtimestamp(e.recorded_at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        note = f"REFUSED: {e.reject_reason}" if e.rejected else e.memo
        if e.counterparty:  # a transfer: where to find its other side (with its request id)
            link = TRANSFER_LINKS.get(e.kind, "with")
            note = f"{link} {e.counterparty} ({e.request_id}) {note}".rstrip()
        by = e.principal or "-"  # "-": recorded before principals were
        click.echo(f"{e.position:>5}  {when:<19}  {e.kind:<15} {format_amount(e.amount):>14} "
                   f"{format_amount(e.balance_after):>14}  {by:<16}  {note}")


@teller.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--name", "import_name", metavar="NAME",
              help="Name this import (default: the file's name): rows without a request_id "
                   "get ids from it and their own content.")
@common_options(group=False)
@click.pass_context
def import_(ctx: click.Context, file: BinaryIO, import_name: str | None, servers: str | None,
            as_json: bool | None, timeout_s: float | None) -> None:
    """Import FILE.csv: columns account,kind,amount,memo[,request_id][,to_account] under a
    header line (kind: open, deposit, withdraw, or transfer to to_account).

    Rows without a request_id get one derived from the import's name and the row's
    own content (and its occurrence among identical rows), so running the import
    again (after an interruption, after fixing a bad row, after re-saving the file)
    applies nothing twice: only new or changed rows are applied. Rows whose outcome
    is unknown are retried with their ids for up to --timeout seconds each chunk.
    """
    settings = settings_for(ctx, servers, as_json, timeout_s)
    name = import_name if import_name is not None else os.path.basename(file.name)
    try:
        rows, problems = importer.parse(file.read(), name)
    except importer.BadFile as error:
        raise TellerError(f"cannot import {file.name}: {error}", EXIT_BAD_INPUT) from error
    report = importer.ImportReport(rows=len(problems), problems=list(problems))

    def run(bank: LedgerClient) -> None:
        with click.progressbar(length=len(rows), label=f"importing {len(rows)} rows",
                               file=sys.stderr) as bar:
            importer.import_rows(bank, rows, report, settings.timeout_s, bar.update)

    call(settings, run)
    report_import(settings, report)


def report_import(settings: Settings, report: importer.ImportReport) -> None:
    problems = sorted(report.problems, key=lambda p: p.number)
    summary = {
        "rows": report.rows, "applied": report.applied, "duplicates": report.duplicates,
        **{kind: report.count(kind) for kind in
           ("refused", "bad-input", "not-found", "exists", "unknown")},
        "problems": [{"row": p.number, "outcome": p.outcome, "message": p.message}
                     for p in problems],
    }
    text = [f"{report.rows} rows: {report.applied} applied, {report.duplicates} already "
            f"applied earlier, {report.count('refused')} refused, "
            f"{report.count('bad-input')} bad, {report.count('not-found')} not found, "
            f"{report.count('exists')} conflicting, {report.count('unknown')} unknown"]
    text += [f"  row {p.number}: {p.outcome}: {p.message}" for p in problems[:20]]
    if len(problems) > 20:
        text.append(f"  ... and {len(problems) - 20} more (--json lists them all)")
    emit(settings, summary, "\n".join(text))
    for outcome, code in (("unknown", EXIT_UNKNOWN), ("bad-input", EXIT_BAD_INPUT),
                          ("not-found", EXIT_MISSING), ("exists", EXIT_MISSING),
                          ("refused", EXIT_REFUSED)):
        if report.count(outcome):
            raise SystemExit(code)


@teller.command()
@common_options(group=False)
@click.pass_context
def shell(ctx: click.Context, servers: str | None, as_json: bool | None,
          timeout_s: float | None) -> None:
    """An interactive counter: type the verbs without 'teller' (help, quit)."""
    import readline  # noqa: F401  (line editing and history for input())

    settings = settings_for(ctx, servers, as_json, timeout_s)
    click.echo(f"teller shell on {settings.servers}; 'help' lists verbs, 'quit' leaves")
    while True:
        try:
            line = input("teller> ").strip()
        except EOFError:
            click.echo()
            return
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as in any shell
            click.echo()
            continue
        if line in ("quit", "exit"):
            return
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as error:  # e.g. an unclosed quote
            click.echo(f"Error: {error}", err=True)
            continue
        if words[0] == "help":
            words = ["--help"]
        if words[0] == "shell":
            click.echo("already in the shell", err=True)
            continue
        try:
            teller.main([*settings.tls.flags(), "--servers", settings.servers,
                         "--timeout", str(settings.timeout_s),
                         *(["--json"] if settings.as_json else []), *words],
                        prog_name="teller", standalone_mode=False)
        except click.ClickException as error:
            error.show()
        except click.exceptions.Exit:
            pass
        except click.Abort:
            click.echo("aborted")


def main() -> None:
    teller()
