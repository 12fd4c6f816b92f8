"""`ledger dashboard` in a real browser: headless Chromium (Debian's; `.ci/run` installs
it) loads the live page of a running 3-node cluster. The page shows three members, an
account whose replicas agree, and the sequence diagram of a deposit the test makes:
the proposer's Accepts, the votes, the Learns, and a sentence saying how its slot was
decided. A screenshot is saved with the test's output."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ledger.client import LedgerClient
from ledger.tools.localcluster import ProcessCluster, free_ports
from ledger.tools.page import render
from ledger.tools.sequence import diagram
from ledger.v1 import replica_pb2 as pb
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30


def browser(profile: pathlib.Path) -> webdriver.Chrome:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    assert not missing, f"{missing} missing: install Debian's chromium and chromium-driver " \
        "(.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1800",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_the_page_shows_the_members_agreement_and_how_a_deposit_was_decided(
        tmp_path: pathlib.Path, record_property: pytest.RecordProperty) -> None:
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}/"
    with ProcessCluster(tmp_path / "cluster", 3) as cluster:
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "ledger", "dashboard", "--servers",
             ",".join(cluster.addresses), "--listen", f"127.0.0.1:{port}",
             *cluster.client_flags()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        driver = None
        try:
            eventually(lambda: answers(url), what="the dashboard serves its page")
            with LedgerClient(cluster.addresses[:1], security=cluster.security) as bank:
                bank.open_account("watched", 10_00)
                driver = browser(tmp_path / "profile")
                driver.get(url + "?account=watched")  # its first poll starts the traces
                wait = WebDriverWait(driver, WAIT_S)
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.sequence"))
                members = driver.find_elements(By.CSS_SELECTOR, "#members tbody tr.serving")
                assert sorted(m.get_attribute("data-node") for m in members) == \
                    ["n1", "n2", "n3"]
                wait.until(lambda d: d.find_elements(
                    By.CSS_SELECTOR, 'tr.agree[data-account="watched"]'))
                deposited = bank.deposit("watched", 5_00)
            assert deposited.position == 1  # slot 1 of the log: the open took slot 0

            def arrows(kind: str) -> list[tuple[str, str]]:
                return [(a.get_attribute("data-from"), a.get_attribute("data-to"))
                        for a in driver.find_elements(  # type: ignore[union-attr]
                            By.CSS_SELECTOR, f'g.arrow[data-kind="{kind}"][data-slot="1"]')]

            wait.until(lambda d: len(arrows("Learn")) == 2 and len(arrows("Accepted")) >= 2)
            accepts = arrows("Accept")
            (proposer,) = {source for source, _ in accepts}
            assert sorted(target for _, target in accepts) == ["n1", "n2", "n3"]
            assert all(target == proposer for _, target in arrows("Accepted"))
            summary = driver.find_element(By.CSS_SELECTOR, "ul.summary").text
            assert f"slot 1: {proposer} proposed" in summary
            assert "chosen once 2 of 3 had voted" in summary
            # The replicas still agree after it, at the deposit's slot.
            wait.until(lambda d: "slot 1 ·" in d.find_element(
                By.CSS_SELECTOR, 'tr.agree[data-account="watched"]').text)
            screenshot = tmp_path / "dashboard.png"
            driver.save_screenshot(str(screenshot))
            record_property("screenshot", str(screenshot))
            print(f"screenshot: {screenshot}")
            assert screenshot.stat().st_size > 10_000
        finally:
            if driver is not None:
                driver.quit()
            dashboard.terminate()
            output, _ = dashboard.communicate(timeout=15)
        assert dashboard.returncode == 0, output.decode()
        assert f"at {url}" in output.decode()


def test_a_saved_page_draws_its_diagrams_without_a_server(tmp_path: pathlib.Path) -> None:
    """`ledger demo --explain --html` writes the same page with the diagrams embedded: it
    draws them opened from disk, with no server to poll."""
    def sent(at_ms: int, source: str, target: str, kind: str, ballot: str = "1.0"
             ) -> pb.TraceEvent:
        return pb.TraceEvent(at_ms=at_ms, node_id=source, direction="sent", peer_id=target,
                             kind=kind, slot=0, ballot=ballot, text=kind)

    nodes = ["n1", "n2", "n3"]
    events = [sent(1, "n1", peer, "Prepare") for peer in nodes] + \
        [sent(2, peer, "n1", "Promise") for peer in nodes] + \
        [sent(3, "n1", peer, "Accept") for peer in nodes] + \
        [sent(4, peer, "n1", "Accepted") for peer in nodes] + \
        [sent(5, "n1", peer, "Learn", "") for peer in ("n2", "n3")]
    page = tmp_path / "saved.html"
    page.write_text(render("Saved", {"intro": "One write.", "diagrams": [
        diagram("Open through n1", nodes, events).as_json()]}))
    driver = browser(tmp_path / "profile")
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "svg.diagram"))
        assert len(driver.find_elements(By.CSS_SELECTOR, "g.arrow")) == 14
        assert not driver.find_elements(By.CSS_SELECTOR, 'g.arrow[data-fast="true"]')
        summary = driver.find_element(By.CSS_SELECTOR, "ul.summary").text
        assert summary == ("slot 0: n1 proposed under ballot 1.0 after Phase 1 (Prepare, "
                           "then Promises from a majority); voted for by n1, n2, n3; chosen "
                           "once 2 of 3 had voted; Learn told n2, n3")
    finally:
        driver.quit()
