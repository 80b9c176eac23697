"""End to end on real CamVid frames: the Diagnostics page in headless Chromium, and its link to Inspect.

A few real frames per split (from ../shared/data/camvid; skipped when absent) and one tiny run trained
on them; the server reads them through a link, the data root being in its allow-list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import (
    PAGE_TIMEOUT_MS,
    ROOT,
    VIEWPORT,
    App,
    AppServer,
    expect,
    free_port,
    stop_server,
    wait_until_healthy,
)

pytestmark = pytest.mark.camvid
FRAMES_PER_SPLIT = 3


@pytest.fixture(scope="module")
def camvid_server(tmp_path_factory, camvid_root, artifacts) -> Iterator[tuple[AppServer, Path]]:
    """A server whose runs folder holds one tiny run trained on a few real CamVid frames."""
    from seglab.data.spec import DataSpec
    from seglab.engine.config import TrainConfig
    from seglab.engine.trainer import train

    folder = tmp_path_factory.mktemp("e2e-camvid")
    data = folder / "camvid"
    for split in ("train", "val"):
        names = sorted(path.name for path in (camvid_root / split).glob("*.png"))[:FRAMES_PER_SPLIT]
        for sub in (split, f"{split}annot"):
            (data / sub).mkdir(parents=True)
            for name in names:
                shutil.copy(camvid_root / sub / name, data / sub / name)
        lines = "".join(f"/SegNet/CamVid/{split}/{n} /SegNet/CamVid/{split}annot/{n}\n" for n in names)
        (data / f"{split}.txt").write_text(lines)
    spec = DataSpec(kind="camvid", root=str(data))
    config = TrainConfig(
        data=spec, model="tiny_unet_small", epochs=1, crop_size=96, batch_size=3, threads=1, preview_images=0
    )
    train(config, out_dir=folder / "runs" / "camvid-tiny")
    port = free_port()
    env = {
        **os.environ,
        "SEGLAB_RUNS_DIR": str(folder / "runs"),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_DATA_ROOTS": str(data),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log_path = artifacts / "streamlit-camvid.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = AppServer(f"http://127.0.0.1:{port}", log_path, folder / "runs", process)
    try:
        wait_until_healthy(server)
        yield server, data
    finally:
        stop_server(process)


def test_diagnostics_on_camvid_frames(browser, camvid_server, artifacts) -> None:
    server, data = camvid_server
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    app = App(page, server, artifacts)
    try:
        page.goto(f"{server.url}/diagnostics?data=camvid&root={data}&split=val")
        app.settle("Diagnostics")
        app.expect_text("Lesion-wise Dice vs IoU")
        app.expect_text("(< 1,728 px)")  # size buckets in pixels of a 480x360 CamVid frame
        app.screenshot("diagnostics_camvid")
        page.get_by_role("tab", name="Boundaries").click()
        app.expect_text("Boundary IoU (Cheng et al. 2021)")
        page.get_by_role("tab", name="Objects").click()
        app.button("Inspect").first.click()  # the smallest missed object's frame
        expect(page.get_by_role("heading", name="Inspect", exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        app.settle("Inspect")
    finally:
        context.close()
