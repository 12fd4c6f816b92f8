"""`ledger serve` is plaintext only when asked by name: never by default, never from the
environment; and when it is, it says so at start."""

from __future__ import annotations

import pathlib

from ledger.client import INSECURE, LedgerClient
from ledger.tools.localcluster import ProcessCluster
from tests.support.cli import ledger

CLUSTER = "n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003"


def test_serve_without_tls_or_insecure_is_refused_whatever_the_environment(
        tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "n1"
    result = ledger("serve", "--node-id", "n1", "--data-dir", str(data_dir), "--cluster",
                    CLUSTER, env={"LEDGER_INSECURE": "1"})
    assert result.returncode == 2
    assert "no TLS: give --tls-dir DIR" in result.stderr and "--insecure" in result.stderr
    both = ledger("serve", "--node-id", "n1", "--data-dir", str(data_dir), "--cluster",
                  CLUSTER, "--insecure", "--tls-dir", str(tmp_path))
    assert both.returncode == 2 and "not both" in both.stderr
    assert not data_dir.exists()


def test_a_tls_dir_without_this_members_files_is_refused(tmp_path: pathlib.Path) -> None:
    result = ledger("serve", "--node-id", "n1", "--data-dir", str(tmp_path / "n1"),
                    "--cluster", CLUSTER, "--tls-dir", str(tmp_path))
    assert result.returncode == 2
    assert "cannot read the CA certificate" in result.stderr


def test_insecure_says_so_at_start_and_anyone_may_call(tmp_path: pathlib.Path) -> None:
    with ProcessCluster(tmp_path / "plain", 1, tls=False) as plain:
        assert "serves PLAINTEXT (--insecure)" in plain.log_tail(0, lines=200)
        with LedgerClient(plain.addresses, security=INSECURE) as anyone:
            anyone.open_account("open-to-all", 3)
            assert [e.principal for e in anyone.history("open-to-all")] == ["anonymous"]
