"""A class opening the app at once: N simultaneous Chromium sessions on a fresh server, every page.

For one session alone and then for each ``--sessions`` count, a fresh ``streamlit run app.py`` (empty
caches, the Shapes demo runs of checkpoints/ or two tiny runs trained here) is opened by N browser
sessions at the same moment on Home; then all of them switch to every other page together (see
``tests/helpers/classroom.py`` for how a finished render is detected). Printed per page: the worst and the
median time to a finished render over the N sessions, the worst against one session alone (ratio),
and the exceptions and errors shown; per run: the server process tree's CPU seconds and peak
memory (psutil, sampled every 0.2 s) while the class ran, the browsers' CPU seconds (Chromium and the
Playwright driver: this process's tree less the server's), and the wall time.

The browsers run on the same machine as the server and share its cores, so judge the ratios rather
than the seconds, and read the CPU split: when the browsers' CPU seconds dwarf the server's, N sessions
wait for N renderers sharing the cores (a page whose browser work alone is B seconds cannot finish before
about N x B / cores), which a real class, one browser per machine, never does; benchmarks/bench_sessions.py
times the server alone. Goals (issue 10): at 8 sessions every page within 3x of its single-session time,
at 30 sessions no exception and no page over 60 s. Nothing is asserted.

    python benchmarks/bench_classroom.py                  # 1 session, then 8 and 30
    python benchmarks/bench_classroom.py --sessions 3     # 1 session, then 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout (tests.* helpers included)

import psutil  # noqa: E402

from tests.helpers.browser import seed_runs, start_app, stop_server  # noqa: E402
from tests.helpers.classroom import CLASSROOM_PAGES, PageFigures, class_visits, page_figures  # noqa: E402

GOAL_RATIO_8 = 3.0
GOAL_WORST_30_S = 60.0


class TreeMonitor:
    """CPU seconds and peak resident memory of a process and its children, sampled in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _members(self) -> list[psutil.Process]:
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> None:
        rss = 0
        for member in self._members():
            try:
                with member.oneshot():
                    times = member.cpu_times()
                    self._cpu[member.pid] = times.user + times.system
                    rss += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.peak_bytes = max(self.peak_bytes, rss)

    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> TreeMonitor:
        self.sample()
        self.cpu_at_start = self.cpu_seconds()
        self.peak_bytes = 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class ClassRun:
    sessions: int
    figures: list[PageFigures]
    cpu_s: float
    browsers_cpu_s: float
    peak_mb: float
    wall_s: float
    startup_s: float

    @property
    def problems(self) -> int:
        return sum(len(figure.problems) for figure in self.figures)


def run_class(sessions: int, demo_runs: Path, workdir: Path, timeout_s: float) -> ClassRun:
    """A fresh server (runs copied from ``demo_runs``, empty caches) opened by ``sessions`` browsers."""
    folder = Path(tempfile.mkdtemp(prefix=f"class{sessions}-", dir=workdir))
    shutil.copytree(demo_runs, folder / "runs")
    env = {
        "SEGLAB_RUNS_DIR": str(folder / "runs"),
        "SEGLAB_CACHE_DIR": str(folder / "cache"),
        "SEGLAB_COMPETITION_DIR": str(folder / "competition"),
    }
    log_path = folder / "streamlit.log"
    started = time.monotonic()
    server = start_app(folder / "runs", log_path, env)
    process = server.process
    try:
        startup_s = time.monotonic() - started
        with TreeMonitor(process.pid) as monitor, TreeMonitor(os.getpid()) as everything:
            began = time.monotonic()
            visits = class_visits(server.url, sessions, CLASSROOM_PAGES, timeout_s=timeout_s)
            wall_s = time.monotonic() - began
    finally:
        stop_server(process)
    tracebacks = log_path.read_text(errors="replace").count("Traceback")
    if tracebacks:
        print(f"  {sessions} session(s): {tracebacks} traceback(s) in the server log {log_path}")
    cpu_s = monitor.cpu_seconds() - monitor.cpu_at_start
    browsers_cpu_s = everything.cpu_seconds() - everything.cpu_at_start - cpu_s
    return ClassRun(
        sessions, page_figures(visits), cpu_s, browsers_cpu_s, monitor.peak_bytes / 2**20, wall_s, startup_s
    )


def seconds(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7s}"


def print_run(run: ClassRun, alone: ClassRun) -> None:
    single = {figure.page: figure.worst_s for figure in alone.figures}
    print(
        f"\n{run.sessions} session(s) at once: wall {run.wall_s:.1f} s, server CPU {run.cpu_s:.1f} s, browsers' CPU "
        f"{run.browsers_cpu_s:.1f} s, server peak memory {run.peak_mb:.0f} MB (server start-up {run.startup_s:.1f} s), "
        f"{run.problems} exception(s)/error(s)"
    )
    print(f"{'page':20s} {'alone':>7s} {'worst':>7s} {'median':>7s} {'ratio':>6s} {'done':>6s}  problems")
    for figure in run.figures:
        baseline = single.get(figure.page)
        ratio = f"{figure.worst_s / baseline:6.1f}" if figure.worst_s and baseline else f"{'-':>6s}"
        done = f"{figure.finished}/{figure.sessions}"
        times = f"{seconds(baseline)} {seconds(figure.worst_s)} {seconds(figure.median_s)}"
        print(f"{figure.page:20s} {times} {ratio} {done:>6s}  {len(figure.problems)}")
    for page, problem in [(figure.page, problem) for figure in run.figures for problem in figure.problems][:10]:
        print(f"    {page}: {problem[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[8, 30], help="sessions at once (default: 8 30)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds before a page counts as not finished")
    args = parser.parse_args()
    pages = ", ".join(page.slug for page in CLASSROOM_PAGES)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; pages: {pages}")
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as workdir:
        demo_runs = Path(workdir) / "demo-runs"
        print("runs:", ", ".join(seed_runs(demo_runs)))
        alone = run_class(1, demo_runs, Path(workdir), args.timeout)
        print_run(alone, alone)
        for count in args.sessions:
            print_run(run_class(count, demo_runs, Path(workdir), args.timeout), alone)
    print(
        f"\ngoals: at 8 sessions every page within {GOAL_RATIO_8:g}x of one session alone; "
        f"at 30 no exception and no page over {GOAL_WORST_30_S:g} s"
    )


if __name__ == "__main__":
    main()
