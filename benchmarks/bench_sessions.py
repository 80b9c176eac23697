"""The server alone under a class: N sessions over Streamlit's websocket protocol, no browsers.

bench_classroom.py drives real Chromium tabs, so on a 2-core machine 30 browsers compete with the server
for the cores and its figures mix both. This benchmark speaks the browser's protocol directly (a
``rerun_script`` message per page, then the forward messages until the run finishes) and fetches each
page's images, so what it times is the server: per page, the median and worst time from asking for the
page to a finished run with its images, for 1 session and then for N sessions asking together, and the
ratio, and the server's CPU seconds per page (steadier than times on a shared machine: per session, a page
that shares its work costs less CPU at N sessions than alone). Sessions visit the pages in order, all
together, as in bench_classroom. Nothing is asserted.

    python benchmarks/bench_sessions.py                      # 1, 8 and 30 sessions, every page
    python benchmarks/bench_sessions.py --sessions 30 --pages metrics_explorer,loss_inspector
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout

import psutil  # noqa: E402
import websockets  # noqa: E402  (a dependency of streamlit)
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from tests.helpers.browser import PAGES, seed_runs, start_app, stop_server  # noqa: E402

FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


def fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=300) as response:
        return len(response.read())


async def open_page(socket, base_url: str, page: str) -> tuple[float, int]:
    """Seconds to a finished run of ``page`` with its images fetched, and how many exceptions it showed."""
    start = time.perf_counter()
    message = BackMsg()
    message.rerun_script.page_name = page
    await socket.send(message.SerializeToString())
    urls, exceptions = [], 0
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(await socket.recv())
        kind = forward.WhichOneof("type")
        if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
            element = forward.delta.new_element
            exceptions += element.WhichOneof("type") == "exception"
            if element.WhichOneof("type") == "imgs":
                images = element.imgs.imgs
                urls += [base_url + image.url if image.url.startswith("/") else image.url for image in images]
        elif kind == "script_finished" and forward.script_finished in FINISHED:
            break  # a run stopped early for a rerun (st.rerun) is followed by the real one
    await asyncio.gather(*(asyncio.to_thread(fetch, url) for url in urls))
    return time.perf_counter() - start, exceptions


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds the server process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


async def class_visits(
    base_url: str, sessions: int, pages: list[str], server: psutil.Process
) -> tuple[dict[str, list[tuple[float, int]]], dict[str, float]]:
    """Every session's (seconds, exceptions) per page, and the server's CPU seconds per page; sessions open
    each page together."""
    stream = base_url.replace("http", "ws", 1) + "/_stcore/stream"
    sockets = [await websockets.connect(stream, subprotocols=["streamlit"], max_size=None) for _ in range(sessions)]
    visits, cpu = {}, {}
    try:
        for page in pages:
            before = cpu_seconds(server)
            visits[page] = await asyncio.gather(*(open_page(s, base_url, page) for s in sockets))
            cpu[page] = cpu_seconds(server) - before
        return visits, cpu
    finally:
        for socket in sockets:
            await socket.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="8,30", help="session counts after the single one (default: 8,30)")
    parser.add_argument("--pages", default=",".join(page.path for page in PAGES.values() if page.path))
    args = parser.parse_args()
    pages = [page.strip() for page in args.pages.split(",") if page.strip()]
    with tempfile.TemporaryDirectory(prefix="seglab-bench-sessions-") as scratch:
        folder = Path(scratch)
        runs = folder / "runs"
        print(f"checkpoints: {', '.join(seed_runs(runs))}")
        env = {"SEGLAB_RUNS_DIR": str(runs), "SEGLAB_CACHE_DIR": str(folder / "cache")}
        server = start_app(runs, folder / "streamlit.log", env)
        try:
            process = psutil.Process(server.process.pid)
            asyncio.run(class_visits(server.url, 1, pages, process))  # fills the shared caches
            alone, alone_cpu = asyncio.run(class_visits(server.url, 1, pages, process))  # warm, as for a class
            print(f"load average before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
            for count in (int(value) for value in args.sessions.split(",")):
                visits, cpu = asyncio.run(class_visits(server.url, count, pages, process))
                print(f"\n{count} sessions at once (server only, images fetched; CPU: server CPU s per session)")
                header = f"{'page':20s} {'alone':>7s} {'median':>7s} {'worst':>7s} {'ratio':>6s}"
                print(f"{header} {'CPU 1':>6s} {'CPU N':>6s}  exceptions")
                for page in pages:
                    times = [seconds for seconds, _ in visits[page]]
                    single = alone[page][0][0]
                    median = statistics.median(times)
                    errors = sum(count for _, count in visits[page])
                    row = f"{page:20s} {single:7.2f} {median:7.2f} {max(times):7.2f} {median / single:6.1f}"
                    print(f"{row} {alone_cpu[page]:6.3f} {cpu[page] / count:6.3f}  {errors}")
                total = sum(cpu.values())
                print(f"server CPU: {total:.1f} s for {count} sessions, {sum(alone_cpu.values()):.1f} s for one")
        finally:
            stop_server(server.process)


if __name__ == "__main__":
    main()
