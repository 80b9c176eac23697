"""End to end: a browser on another machine (a student) versus one on the server machine (the teacher).

The app is served on ``0.0.0.0`` as the README tells teachers to; Chromium opens it once through
this machine's network address (the server sees a remote client) and once through ``127.0.0.1``
(the server machine itself). Only the local browser may open a folder outside the allowed ones by
typing it on Home; the remote one is refused before anything is read, and told which folders it
may open. Skips when this machine has no network address besides loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import (
    ERROR,
    PAGE_TIMEOUT_MS,
    ROOT,
    VIEWPORT,
    AppServer,
    expect,
    free_port,
    stop_server,
    wait_until_healthy,
)
from tests.helpers.folders import write_mini_camvid


def network_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None with loopback only."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e-remote")
    return {
        "root": root,
        "inside": write_mini_camvid(root / "data" / "camvid"),
        "outside": write_mini_camvid(root / "private" / "camvid"),
        "never_chosen": write_mini_camvid(root / "secret" / "camvid"),  # no test chooses it: refused in any order
    }


@pytest.fixture(scope="module")
def served(places: dict[str, Path]) -> Iterator[tuple[AppServer, str]]:
    """The app on 0.0.0.0 with ``places`` data folder; yields the server and this machine's address."""
    address = network_address()
    if address is None:
        pytest.skip("no network address besides loopback: a remote browser cannot be told apart")
    root, port = places["root"], free_port()
    env = {name: value for name, value in os.environ.items() if name not in ("SEGLAB_DATA_ROOTS", "SEGLAB_CONFIG")}
    env |= {"SEGLAB_DATA_ROOT": str(root / "data"), "SEGLAB_RUNS_DIR": str(root / "runs")}
    env |= {"SEGLAB_CACHE_DIR": str(root / "cache"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.address", "0.0.0.0", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    log_path = root / "streamlit.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = AppServer(f"http://127.0.0.1:{port}", log_path, root / "runs", process)
    try:
        wait_until_healthy(server)
        yield server, f"http://{address}:{port}"
    finally:
        stop_server(process)


def type_camvid_folder(browser, url: str, folder: Path):
    """Open Home at ``url``, pick the CamVid source and type ``folder``; returns the page."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url)
    page.get_by_text("CamVid / SegNet layout").click()
    field = page.get_by_label("Dataset folder", exact=True)
    expect(field).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    field.fill(str(folder))
    field.press("Enter")
    return page


def test_a_remote_browser_may_not_type_a_folder_outside_the_allowed_ones(served, browser, places) -> None:
    _, remote_url = served
    page = type_camvid_folder(browser, remote_url, places["never_chosen"])
    refusal = page.locator(ERROR).filter(has_text="is outside the folders this app may read")
    expect(refusal).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(refusal).to_contain_text(f"dataset folder {places['never_chosen']}")
    expect(page.get_by_text("From this browser the server opens folders and files under")).to_be_visible()
    expect(page.get_by_role("button", name="Use this dataset")).to_have_count(0)
    page.context.close()


def test_the_server_machines_browser_may_and_its_choice_then_works_for_the_class(served, browser, places) -> None:
    server, remote_url = served
    page = type_camvid_folder(browser, server.url, places["outside"])  # 127.0.0.1: the teacher's own browser
    expect(page.get_by_text("11 classes · train: 3 images · val: 3 images")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_text("From this browser the server opens")).to_have_count(0)
    page.get_by_role("button", name="Use this dataset").click()
    expect(page.get_by_text("This is the dataset every page uses now")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    query = page.url.split("?", 1)[1]
    page.context.close()
    student = browser.new_context(viewport=VIEWPORT).new_page()  # the shared link, opened by a student
    student.goto(f"{remote_url}/dataset?{query}")
    expect(student.get_by_text("Trivial baseline")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(student.get_by_text(f"camvid:{places['outside']}")).to_be_visible()
    expect(student.locator(ERROR)).to_have_count(0)
    student.context.close()
