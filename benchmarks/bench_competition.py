"""A class rush: 30 teams submit a checkpoint within one minute while the projector shows the standings.

Set-up: a competition on a small Shapes hidden split (50 images at 96 px by default), 30 teams, the
scoring worker started as its own process (``seglab competition worker``, as the app starts it).
Each team submits one of the shipped demo checkpoints, spread evenly over ``--window-s`` seconds,
through :func:`seglab.competition.submit` from a thread per upload (what the Streamlit server does
when students press Submit: validation runs there, at once). Meanwhile the standings page
(``pages/competition_board.py``) is rendered again and again with Streamlit's AppTest.

Reported:
- upload answer time (validate + queue) p50 / p95;
- time from the first upload to the last score, and from the last upload to the last score;
- standings render time p50 / p95 during the rush, against the same page rendered before it (idle);
- exactly-once: 30 score rows, every submission scored on its first attempt, 30 "scored" lines in the
  worker log;
- baselines in the same run: the pure scoring compute (one checkpoint on the split in this process,
  the split already generated, x 30) and one scoring in a freshly spawned Python process (what a
  worker without the forked, pre-imported child would pay per submission). The worker's child also
  generates the Shapes split each time (~0.2 s here).

Nothing is asserted; timings are wall clock on a shared machine (the load average is printed).

    python benchmarks/bench_competition.py
    python benchmarks/bench_competition.py --teams 30 --images 50 --size 96 --window-s 60 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout
import seglab  # noqa: E402, F401  before torch loads (thread settings)

DEMO_CHECKPOINTS = sorted((ROOT / "checkpoints").glob("shapes-*/best.pt"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def scoring_compute_s(spec, repeats: int = 3) -> float:
    """Median time of one in-process scoring (load + predict + confusions): the compute lower bound."""
    import torch

    from seglab.competition.scoring import score_submission
    from seglab.data.spec import build_dataset

    torch.set_num_threads(1)
    dataset = build_dataset(spec)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        score_submission("checkpoint", DEMO_CHECKPOINTS[0], dataset)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def spawned_scoring_s(spec) -> float:
    """One scoring in a fresh Python process (imports torch and seglab each time)."""
    import json

    code = (
        "import sys, json, torch; torch.set_num_threads(1); from seglab.data.spec import DataSpec, build_dataset; "
        "from seglab.competition.scoring import score_submission; "
        "score_submission('checkpoint', sys.argv[1], build_dataset(DataSpec.from_dict(json.loads(sys.argv[2]))))"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, str(DEMO_CHECKPOINTS[0]), json.dumps(spec.to_dict())],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return time.perf_counter() - started


def render_standings(at) -> float:
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"the standings page failed: {at.exception}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--images", type=int, default=50, help="hidden Shapes test images")
    parser.add_argument("--size", type=int, default=96, help="Shapes image size (px)")
    parser.add_argument("--window-s", type=float, default=60.0, help="uploads spread over this many seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each scoring")
    parser.add_argument("--render-every-s", type=float, default=0.5, help="standings renders during the rush")
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    from seglab.competition import CompetitionSettings, CompetitionStore, create_competition, submit
    from seglab.competition.jobs import queue_counts
    from seglab.competition.submissions import all_submissions
    from seglab.competition.teams import add_teams
    from seglab.data.shapes import ShapesConfig
    from seglab.data.spec import DataSpec

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    work = Path(tempfile.mkdtemp(prefix="seglab-bench-competition-"))
    os.environ.update(
        {
            "SEGLAB_COMPETITION_DIR": str(work / "competition"),
            "SEGLAB_RUNS_DIR": str(work / "runs"),
            "SEGLAB_CACHE_DIR": str(work / "cache"),
            "SEGLAB_COMPETITION_WORKER": "off",
        }
    )
    spec = DataSpec(split="test", shapes=ShapesConfig(image_size=args.size, test_size=args.images))
    store = CompetitionStore(work / "competition")
    competition = create_competition(store, CompetitionSettings(name="rush", spec=spec, quota_count=5))
    teams = [item.team for item in add_teams(store, competition, [f"Team {i:02d}" for i in range(args.teams)])]
    print(
        f"hidden split: Shapes test, {args.images} images at {args.size} px; {args.teams} teams; "
        f"checkpoints: {', '.join(p.parent.name for p in DEMO_CHECKPOINTS)}"
    )

    compute = scoring_compute_s(spec)
    spawned = spawned_scoring_s(spec)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/competition_board.py")
    idle = [render_standings(at) for _ in range(8)][1:]  # the first one warms imports

    log_path = work / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seglab",
                "competition",
                "worker",
                "--dir",
                str(store.folder),
                "--threads",
                str(args.threads),
                "--poll-s",
                "0.2",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    time.sleep(5)  # the worker imports torch once before the rush, as it would have with the app running

    answers: list[float] = []
    errors: list[str] = []

    def upload(team, checkpoint: Path) -> None:
        started = time.perf_counter()
        try:
            submit(store, competition, team, checkpoint.read_bytes(), "best.pt")
        except Exception as error:  # reported below: a benchmark must show failures, not hide them
            errors.append(f"{team.name}: {error}")
        answers.append(time.perf_counter() - started)

    rush_start = time.perf_counter()
    threads = []
    for index, team in enumerate(teams):
        at_s = index * args.window_s / len(teams)
        threads.append(threading.Timer(at_s, upload, (team, DEMO_CHECKPOINTS[index % len(DEMO_CHECKPOINTS)])))
        threads[-1].start()
    renders: list[float] = []
    last_upload = last_score = None
    while True:
        renders.append(render_standings(at))
        time.sleep(max(0.0, args.render_every_s - renders[-1]))
        counts = queue_counts(store, competition)
        if last_upload is None and len(answers) == len(teams):
            last_upload = time.perf_counter() - rush_start
        if counts["scored"] + counts["failed"] == len(teams) - len(errors) and len(answers) == len(teams):
            last_score = time.perf_counter() - rush_start
            break
        if time.perf_counter() - rush_start > args.window_s + 900:
            print("gave up waiting for the scores after 15 minutes")
            break
    for thread in threads:
        thread.join()
    worker.terminate()
    worker.wait(timeout=30)

    submissions = all_submissions(store, competition)
    with store.connect() as connection:
        score_rows = connection.execute("SELECT COUNT(*), COUNT(DISTINCT submission_id) FROM scores").fetchone()
        scoring_s = [row[0] for row in connection.execute("SELECT seconds FROM scores")]
    scored_lines = sum(1 for line in log_path.read_text().splitlines() if ": scored in " in line)
    first_attempt = sum(1 for s in submissions if s.status == "scored" and s.attempts == 1)
    print()
    p50, p95 = percentile(answers, 0.5), percentile(answers, 0.95)
    print(f"uploads answered (validate + queue): p50 {p50:.2f} s, p95 {p95:.2f} s")
    if scoring_s:
        p50, p95 = percentile(scoring_s, 0.5), percentile(scoring_s, 0.95)
        print(f"one scoring in the worker's child: p50 {p50:.2f} s, p95 {p95:.2f} s")
    if last_score is not None:
        print(
            f"first upload -> last score: {last_score:.1f} s (last upload at {last_upload:.1f} s; "
            f"last upload -> last score {last_score - last_upload:.1f} s)"
        )
    print(
        f"standings render during the rush: p50 {percentile(renders, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(renders, 0.95) * 1000:.0f} ms over {len(renders)} renders; idle before it: "
        f"p50 {percentile(idle, 0.5) * 1000:.0f} ms ({percentile(renders, 0.5) / percentile(idle, 0.5):.1f}x)"
    )
    print(
        f"exactly once: {score_rows[0]} score rows for {score_rows[1]} submissions, {first_attempt}/{len(teams)} "
        f"scored on their first attempt, {scored_lines} 'scored' lines in the worker log, "
        f"{len(errors)} upload errors{': ' + '; '.join(errors[:3]) if errors else ''}"
    )
    print(
        f"baselines: one scoring in-process {compute:.2f} s "
        f"(x {len(teams)} = {compute * len(teams):.1f} s of pure compute); "
        f"one scoring in a freshly spawned Python process {spawned:.2f} s "
        f"(x {len(teams)} = {spawned * len(teams):.1f} s, {spawned / compute:.1f}x the compute)"
    )
    print(f"(data in {work})")


if __name__ == "__main__":
    main()
