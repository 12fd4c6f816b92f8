"""The disk nemesis: a node loses its data directory, or gets an older copy of it back.

One injection SIGKILLs one node and either wipes its data directory or puts back a
copy of it taken earlier in the run: a plain copy made while the node was stopped
(a brief SIGTERM, copy, restart), or a `ledger backup --server` of it running. Then
`ledger serve` on the harmed directory must refuse, naming `ledger recover`; if it
does not (it exits 0 or starts serving), the run fails. At the heal, `ledger
recover` (every other member must answer) and the cluster's normal start bring the
node back.

A plain copy is refused only once some member has seen the node commit past it, so
before harming the node with one, the nemesis waits until a member says so (a copy
taken before an earlier recovery of the node is refused for its old incarnation).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from ledger.bank.state_machine import LedgerStateMachine
from ledger.client.admin import node_serving
from ledger.node.cluster import ClusterConfig
from ledger.security.tls import INSECURE, Security, load_member
from ledger.storage.lmdb import LmdbStore
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

HARMS = ("wipe", "rollback")
COPY_KINDS = ("stopped", "backup")
REFUSAL_TIMEOUT_S = 60.0  # `ledger serve` on a harmed directory must exit within this
RECOVER_TIMEOUT_S = 60.0  # `ledger recover`, every other member up (it takes ~1 s)
BACKUP_TIMEOUT_S = 60.0
PROGRESS_TIMEOUT_S = 30.0  # for a member to see the node commit past its copy
ASK_TIMEOUT_S = 1.0
RECOVER_HINT = "ledger recover"


class DiskNemesisError(Exception):
    """The disk nemesis could not do its job (a tool failed or timed out); says which."""


@dataclass(frozen=True)
class Copy:
    """A copy of one node's data directory, to roll it back to later."""

    path: pathlib.Path
    taken_ms: float
    kind: str  # stopped: copied while the node was stopped | backup: `ledger backup --server`
    life: int  # recoveries of the node before the copy was taken
    commits: int | None  # a stopped copy's commit count


class Disks:
    """Harms nodes' data directories, checks `ledger serve` refuses them, recovers them."""

    def __init__(self, cluster: ProcessCluster, copies_dir: pathlib.Path,
                 note: Callable[[str, str], None], fail: Callable[[str, str], None],
                 now_ms: Callable[[], float], stop: threading.Event) -> None:
        self.cluster = cluster
        self.copies_dir = copies_dir
        self.note = note  # (kind, detail): a fault event for the history
        self.fail = fail  # (node, detail): the ledger broke a promise; the run must fail
        self.now_ms = now_ms
        self.stop = stop
        self.copies: dict[int, Copy] = {}
        self.lives: dict[int, int] = {}  # node index -> recoveries so far
        self.harmed: set[int] = set()  # down with a harmed directory, awaiting recovery
        self._copies_made = 0
        self._fingerprint = ClusterConfig.parse(cluster.cluster_flag).fingerprint

    def node_id(self, index: int) -> str:
        return self.cluster.nodes[index].node_id

    # ------------------------------------------------------------------ copies

    def take_copy(self, index: int, kind: str) -> Copy:
        """Copy the node's directory now: stopped (SIGTERM, copy, restart) or by backup."""
        node = self.cluster.nodes[index]
        self.copies_dir.mkdir(parents=True, exist_ok=True)
        self._copies_made += 1
        path = self.copies_dir / f"{node.node_id}-{self._copies_made}"
        taken_ms = self.now_ms()
        commits = None
        if kind == "stopped":
            try:
                self.cluster.terminate(index)
                shutil.copytree(node.data_dir, path)
            finally:
                if not node.running:
                    self.cluster.start_node(index, wait=False)
            commits = commits_in(path)
            self.cluster.wait_ready(index)
            self.note("copy", f"{node.node_id}: its directory copied while stopped "
                              f"({commits} commits)")
        else:
            run_tool(["backup", "--server", node.address, "--out", str(path),
                      *self.cluster.client_flags()],
                     BACKUP_TIMEOUT_S, f"`ledger backup --server` of {node.node_id}")
            self.note("copy", f"{node.node_id}: backed up while running (`ledger backup "
                              f"--server`)")
        copy = Copy(path, taken_ms, kind, self.lives.get(index, 0), commits)
        self.copies[index] = copy
        return copy

    def seen_commits(self, index: int) -> int:
        """The highest commit count of the node's current directory any other member
        recorded (0 if none answers or knows it)."""
        security = self.member_security(index)
        highest = 0
        for other, member in enumerate(self.cluster.nodes):
            if other == index:
                continue
            with security.channel(member.address) as channel:
                try:
                    reply = pb_grpc.ReplicaStub(channel).Identify(pb.IdentifyRequest(
                        cluster_fingerprint=self._fingerprint, node_id=self.node_id(index)),
                        timeout=ASK_TIMEOUT_S)
                except grpc.RpcError:
                    continue
            if reply.known:
                highest = max(highest, reply.durable_seq_seen)
        return highest

    def _seen_past(self, index: int, copy: Copy) -> int | None:
        """Wait until a member has seen the node commit past a stopped copy of its current
        life; the count seen, or None if the run stopped (or time ran out) first."""
        assert copy.commits is not None
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while time.monotonic() < deadline:
            seen = self.seen_commits(index)
            if seen > copy.commits:
                return seen
            if self.stop.wait(0.25):
                return None
        return None

    def member_security(self, index: int) -> Security:
        """The node's own member certificate: only a member may ask the peer service
        (Identify) what the others recorded of it, and only about itself."""
        if self.cluster.certs is None:
            return INSECURE
        return Security(load_member(self.cluster.tls_dir, self.node_id(index)))

    # ------------------------------------------------------------------- harm

    def harm(self, index: int, how: str, rng_choice: Callable[[tuple[str, ...]], str],
             fresh_copy: bool) -> None:
        """SIGKILL the node, wipe or roll back its directory, check `ledger serve` refuses it.
        Leaves the node down, in `harmed`, for `recover` (unless the run stopped first)."""
        assert how in HARMS
        node = self.cluster.nodes[index]
        why = ""
        if how == "rollback":
            copy = self.copies.get(index)
            if copy is None or fresh_copy:
                copy = self.take_copy(index, rng_choice(COPY_KINDS))
            life = self.lives.get(index, 0)
            why = f"a {copy.kind} copy taken at {copy.taken_ms / 1000:.1f} s"
            if copy.kind == "backup":
                why += " (marked as needing recovery)"
            elif copy.life < life:
                since = life - copy.life
                why += (f" before {since} recover{'y' if since == 1 else 'ies'} of the node "
                        f"(an older incarnation)")
            else:
                seen = self._seen_past(index, copy)
                if seen is None:
                    if not self.stop.is_set():
                        raise DiskNemesisError(
                            f"no member saw {node.node_id} commit past its copy "
                            f"({copy.commits} commits) within {PROGRESS_TIMEOUT_S:.0f} s")
                    return  # the run is ending: leave the node be
                why += f" ({copy.commits} commits; a member has seen {seen})"
        self.cluster.kill(index)
        self.harmed.add(index)
        shutil.rmtree(node.data_dir, ignore_errors=True)
        if how == "wipe":
            self.note("disk", f"{node.node_id}: killed, data directory wiped")
        else:
            shutil.copytree(self.copies[index].path, node.data_dir)
            self.note("disk", f"{node.node_id}: killed, data directory rolled back to {why}")
        self.check_refused(index)

    def check_refused(self, index: int) -> None:
        """Run the node's own `ledger serve` command on its harmed directory: it must exit
        non-zero naming `ledger recover`. Anything else is recorded as a failure."""
        node = self.cluster.nodes[index]
        started = time.monotonic()
        process = subprocess.Popen(self.cluster.command(index), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        stderr = ""
        outcome = "exited"
        security = self.cluster.security
        try:
            while True:
                try:
                    _, stderr = process.communicate(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if node_serving(node.address, security, 0.5):
                    outcome = "took the harmed directory and said SERVING"
                    break
                if time.monotonic() - started > REFUSAL_TIMEOUT_S:
                    outcome = f"was still running after {REFUSAL_TIMEOUT_S:.0f} s"
                    break
        finally:
            if process.poll() is None:
                process.kill()
                _, stderr = process.communicate()
        took = time.monotonic() - started
        with open(node.log_path, "a") as log:
            log.write(f"--- chaos: `ledger serve` on the harmed directory: {outcome}, exit "
                      f"{process.returncode} after {took:.1f} s ---\n{stderr}--- end ---\n")
        message = refusal_message(stderr)
        if outcome == "exited" and process.returncode != 0 and RECOVER_HINT in stderr:
            self.note("refused", f"{node.node_id} in {took:.1f} s: {message}")
            return
        self.note("not-refused", f"{node.node_id}: {outcome}, exit {process.returncode}: "
                                 f"{message}")
        self.fail(node.node_id, f"`ledger serve` on its harmed data directory did not refuse "
                  f"naming `{RECOVER_HINT}`: it {outcome} (exit {process.returncode}, "
                  f"{took:.1f} s); stderr: {stderr[-1500:]!r}")

    # ---------------------------------------------------------------- recover

    def recover(self, index: int) -> None:
        """`ledger recover` the harmed node (bounded in time), then start it as usual."""
        node = self.cluster.nodes[index]
        started = time.monotonic()
        command = [sys.executable, "-m", "ledger", "recover", "--node-id", node.node_id,
                   "--data-dir", str(node.data_dir), "--cluster", self.cluster.cluster_flag,
                   *self.cluster.security_flags()]
        if self.cluster.wrap is not None:  # from the node's own place in the network
            command = self.cluster.wrap(index, command)
        done = run_tool(command, RECOVER_TIMEOUT_S,
                        f"`ledger recover` of {node.node_id} (it waits for every other "
                        f"member to answer: are they all up and reachable?)", raw=True)
        self.harmed.discard(index)
        self.lives[index] = self.lives.get(index, 0) + 1
        self.note("recover", f"{node.node_id} in {time.monotonic() - started:.1f} s: "
                             f"{first_line(done)}")
        for old in node.data_dir.parent.glob(f"{node.data_dir.name}.replaced-*"):
            shutil.rmtree(old, ignore_errors=True)  # kept by recover for the operator
        self.cluster.start_node(index, wait=False)
        self.note("restart", node.node_id)


def commits_in(path: pathlib.Path) -> int:
    """The commit count of the (stopped) store at `path`, read without committing."""
    store = LmdbStore(path, app_tables=LedgerStateMachine.TABLES)
    try:
        return store.durable_seq()
    finally:
        store.abandon()


def run_tool(args: list[str], timeout_s: float, what: str, raw: bool = False) -> str:
    """Run `ledger ARGS` (or the command `args` when raw) to completion; its stdout.
    Raises DiskNemesisError, with what it printed, if it fails or overruns `timeout_s`."""
    command = args if raw else [sys.executable, "-m", "ledger", *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as late:
        printed = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
            for part in (late.stdout, late.stderr))
        raise DiskNemesisError(f"{what} did not finish within {timeout_s:.0f} s; it "
                               f"printed: {printed[-2000:]!r}") from None
    if result.returncode != 0:
        raise DiskNemesisError(f"{what} failed (exit {result.returncode}): "
                               f"{(result.stdout + result.stderr)[-2000:]!r}")
    return result.stdout


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def refusal_message(stderr: str) -> str:
    """The `Error: ...` line click prints for a refusal (else the last line of stderr)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["(no output)"])[-1][:400]
