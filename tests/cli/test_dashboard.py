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
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ledger.client import LedgerClient
from ledger.dashboard.probe import ClusterProbe
from ledger.dashboard.server import API_HEADER, DashboardServer
from ledger.security.tls import INSECURE
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


def read(driver: webdriver.Chrome, selector: str, *attributes: str
         ) -> list[dict[str, str]]:
    """Every element `selector` matches, read in one go: its text and `attributes`."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll(arguments[0])].map(e => Object.fromEntries("
        "[['text', e.textContent], ...arguments[1].map(a => [a, e.getAttribute(a)])]))",
        selector, list(attributes))


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
                # (The page redraws itself every second: each look reads the DOM at once.)
                wait = WebDriverWait(driver, WAIT_S,
                                     ignored_exceptions=(StaleElementReferenceException,))
                wait.until(lambda d: read(d, "section.sequence"))
                members = read(driver, "#members tbody tr.serving", "data-node")
                assert sorted(m["data-node"] for m in members) == ["n1", "n2", "n3"]
                wait.until(lambda d: read(d, 'tr.agree[data-account="watched"]'))
                deposited = bank.deposit("watched", 5_00)
            assert deposited.position == 1  # slot 1 of the log: the open took slot 0

            def arrows(kind: str) -> list[tuple[str, str]]:
                return [(a["data-from"], a["data-to"]) for a in read(
                    driver, f'g.arrow[data-kind="{kind}"][data-slot="1"]', "data-from",
                    "data-to")]

            wait.until(lambda d: len(arrows("Learn")) == 2 and len(arrows("Accepted")) >= 2)
            accepts = arrows("Accept")
            (proposer,) = {source for source, _ in accepts}
            assert sorted(target for _, target in accepts) == ["n1", "n2", "n3"]
            assert all(target == proposer for _, target in arrows("Accepted"))
            (summary,) = read(driver, "ul.summary")
            assert f"slot 1: {proposer} proposed" in summary["text"]
            assert "chosen once 2 of 3 had voted" in summary["text"]
            # The replicas still agree after it, at the deposit's slot.
            wait.until(lambda d: any("slot 1 ·" in row["text"] for row in read(
                d, 'tr.agree[data-account="watched"]')))
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


def test_the_server_answers_only_its_page_and_checks_what_it_is_asked(
        tmp_path: pathlib.Path) -> None:
    """Refused before the cluster is asked anything (the probe's node is never dialled):
    another site's name for this address, an API call without the page's header, an
    account id or a page size that are not one."""
    [port] = free_ports(1)
    probe = ClusterProbe(["127.0.0.1:1"], INSECURE)
    server = DashboardServer(probe, f"127.0.0.1:{port}")
    server.start()

    def get(path: str, host: str = f"127.0.0.1:{port}", api: bool = True) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={
            "Host": host, **({API_HEADER: "1"} if api else {})})
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        assert get("/")[0] == 200 and get("/", host=f"localhost:{port}")[0] == 200
        assert get("/", host=f"attacker.example:{port}") == (
            403, "this dashboard answers only requests addressed to it\n")
        assert get("/api/trace?account=a", api=False)[0] == 403
        status, text = get("/api/trace?account=no%20spaces")
        assert status == 400 and "account id 'no spaces'" in text
        assert get("/api/cluster?after=%3Cb%3E")[0] == 400
        for limit in ("%C2%B2", "1" * 7, "-1"):  # "²", too many digits, a sign
            assert get(f"/api/cluster?limit={limit}")[0] == 400, limit
        assert get("/nothing")[0] == 404
    finally:
        server.stop()
        probe.close()
