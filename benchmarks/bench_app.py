"""App responsiveness against its targets: page renders, Dataset re-renders, CamVid statistics.

(a) First render of every page on the built-in Shapes data, timed as Streamlit's AppTest
    ``switch_page(...).run()``, in navigation order within one session as a user would click
    through (caches start empty, so Inspect evaluates the checkpoint and later pages reuse it), and
    a second run of the same page (warm caches) for reference. Target < 2 s each. torch and seglab
    are already imported (by the checkpoint set-up): this is not the app's cold start.
(b) Dataset page re-renders after choosing another sample and after moving the overlay opacity
    (each to a value not seen before, so nothing is a cache hit). Target < 0.3 s (median).
(d) Label quality on Shapes val (target < 2 s) and CamVid val (target < 3 s): its render after a training run
    (``seglab train``'s evaluation that writes best.pt gathers the report: a disk-cache read), a warm rerun,
    after a server restart; for a model nobody evaluated (Shapes: the demo checkpoint; CamVid: the run's
    best.pt with empty caches) the first USEFUL render (a partial ranking, "Scored n of N", while a background
    job scores the rest) and, on its own row, the time until the COMPLETE page; on CamVid also what reading and
    predicting the split alone costs (the floor of any complete cold render), the former one-image-at-a-time
    path as a baseline, and the render after Inspect (whose evaluation scores the labels in its own pass).
(c) Statistics of CamVid train, first time (empty cache folder; target < 10 s) and cached
    (a fresh dataset object, statistics read from the disk cache; target < 0.5 s). Skipped with a
    message when the CamVid folder is absent.

Checkpoints: the Shapes demo runs in checkpoints/ when there are any, else two tiny runs trained
here first (a few seconds). Timings are wall clock on a shared machine: the load average is printed;
compare runs taken at similar load. Nothing is asserted.

    python benchmarks/bench_app.py
    python benchmarks/bench_app.py --repeats 9 --camvid ../shared/data/camvid
    python benchmarks/bench_app.py --only label-quality
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py does, before torch loads

from tests.helpers.browser import seed_runs  # noqa: E402  (the browser tests' demo runs)

PAGES = {
    "Home": "pages/home.py",
    "Dataset": "pages/dataset.py",
    "Train": "pages/train.py",
    "Inspect": "pages/failures.py",
    "Compare": "pages/compare.py",
    "Leaderboard": "pages/leaderboard.py",
    "Metric definitions": "pages/metrics_explorer.py",
    "Loss inspector": "pages/loss_inspector.py",
    "Label quality": "pages/label_quality.py",
}
PAGE_TARGET_S = 2.0
RERENDER_TARGET_S = 0.3
STATS_FIRST_TARGET_S = 10.0
STATS_CACHED_TARGET_S = 0.5
LABEL_QUALITY_CAMVID_TARGET_S = 3.0


@dataclass
class Row:
    what: str
    seconds: float | None
    target_s: float | None
    note: str = ""

    def line(self) -> str:
        measured = f"{self.seconds:8.3f}" if self.seconds is not None else f"{'-':>8s}"
        target = f"< {self.target_s:g}" if self.target_s is not None else ""
        verdict = (
            ""
            if self.seconds is None or self.target_s is None
            else ("pass" if self.seconds < self.target_s else "FAIL")
        )
        return f"{self.what:46s} {measured} {target:>7s} {verdict:>5s}  {self.note}"


def timed_run(at) -> float:
    """Seconds of one AppTest script run; a page exception makes the number meaningless, so it stops here."""
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception}")
    return seconds


def bench_pages(repeats: int) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    rows = []
    for title, path in PAGES.items():
        if title != "Home":  # the app opens on Home
            at.switch_page(path)
        first = timed_run(at)
        again = timed_run(at)
        rows.append(Row(f"first render: {title}", first, PAGE_TARGET_S, f"warm rerun {again:.3f} s"))

    at.switch_page(PAGES["Dataset"])
    timed_run(at)
    ids = list(at.selectbox(key="dataset_sample").options)
    sample_times, opacity_times = [], []
    for index in range(repeats):
        at.selectbox(key="dataset_sample").select(ids[(index + 1) % len(ids)])
        sample_times.append(timed_run(at))
        at.slider(key="dataset_opacity").set_value(round(0.05 + 0.05 * (index % 18), 2))  # new values: no cache hit
        opacity_times.append(timed_run(at))
    for what, times in (
        ("Dataset re-render: another sample", sample_times),
        ("Dataset re-render: overlay opacity", opacity_times),
    ):
        rows.append(
            Row(
                what + " (median)",
                statistics.median(times),
                RERENDER_TARGET_S,
                f"max {max(times):.3f} s over {len(times)}",
            )
        )
    return rows


def bench_camvid_stats(root: Path, cache_dir: Path) -> list[Row]:
    from seglab.analysis.stats import compute_stats
    from seglab.data.folder import CamVidDataset

    start = time.perf_counter()
    stats = compute_stats(CamVidDataset(root, split="train"), cache_dir=cache_dir)
    first = time.perf_counter() - start
    start = time.perf_counter()
    cached = compute_stats(CamVidDataset(root, split="train"), cache_dir=cache_dir)
    again = time.perf_counter() - start
    assert cached.fingerprint == stats.fingerprint
    images = f"{len(stats.ids)} images"
    return [
        Row("CamVid train statistics, first (no cache)", first, STATS_FIRST_TARGET_S, images),
        Row("CamVid train statistics, cached", again, STATS_CACHED_TARGET_S, images + ", fresh dataset object"),
    ]


def _render_label_quality(spec, checkpoint: Path, page: str = PAGES["Label quality"]):
    """A new session opening ``page`` on ``spec`` with ``checkpoint``: the AppTest and its seconds."""
    from streamlit.testing.v1 import AppTest

    from pages import ui

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state[ui.SPEC_KEY] = spec.to_dict()
    at.session_state[ui.CHECKPOINT_KEY] = str(checkpoint)
    at.run()
    at.switch_page(page)
    return at, timed_run(at)


def _restart_server(*, empty_disk_cache: bool = False) -> None:
    """Memory caches cleared (a restarted server), and the disk cache too when asked (a model nobody evaluated)."""
    import streamlit as st

    from pages.loaders import _label_quality_store

    _label_quality_store().wait_all()
    if empty_disk_cache:
        shutil.rmtree(Path(os.environ["SEGLAB_CACHE_DIR"]), ignore_errors=True)
    st.cache_resource.clear()
    st.cache_data.clear()


def _progressive_render(spec, checkpoint: Path) -> tuple[float, float, str]:
    """A model nobody evaluated (empty caches): seconds to the first useful render (a partial ranking or the
    complete page), seconds until the complete page is rendered (waiting for the job, then one rerun, as the
    page's refresh does), and what the first render showed."""
    from pages.loaders import _label_quality_store

    _restart_server(empty_disk_cache=True)
    start = time.perf_counter()
    at, first = _render_label_quality(spec, checkpoint)
    progress = at.get("progress")
    shown = progress[0].proto.text.split(":")[0] if progress else "complete at once"
    if progress:
        _label_quality_store().wait_all()
        timed_run(at)
        if at.get("progress"):
            raise SystemExit("the page still shows progress after its job ended")
    return first, time.perf_counter() - start, shown


def bench_label_quality(name: str, spec, train_config, foreign: Path | None, scratch: Path, target: float) -> list[Row]:
    """Label quality on ``spec`` (a validation split): after a training run (``seglab train``'s evaluation of
    best.pt gathers the report), for a model nobody evaluated (``foreign``, else that run's best.pt with empty
    caches: first useful render and complete, separately), warm, after a restart."""
    import torch

    from seglab.analysis.label_quality.cache import best_checkpoint_gatherers
    from seglab.data.spec import build_dataset
    from seglab.engine.trainer import train

    run = scratch / "runs" / f"{name.split()[0].lower()}-tiny"
    events: list[dict] = []
    train(
        train_config, out_dir=run, callbacks=[events.append], eval_consumer=best_checkpoint_gatherers(run / "best.pt")
    )
    evals = [event["eval_seconds"] for event in events if event["type"] == "eval"]
    _restart_server()
    at, after_training = _render_label_quality(spec, run / "best.pt")
    warm = timed_run(at)
    _restart_server()
    _, restarted = _render_label_quality(spec, run / "best.pt")
    model = foreign or run / "best.pt"
    first_useful, complete, shown = _progressive_render(spec, model)
    images = f"{len(build_dataset(spec))} images, torch threads {torch.get_num_threads()}"
    return [
        Row(
            f"Label quality after training, {name}",
            after_training,
            target,
            f"{images}; report gathered in the evaluation that wrote best.pt "
            f"({len(evals)} evaluations, {sum(evals):.1f} s in all)",
        ),
        Row(f"Label quality warm rerun, {name}", warm, target, "same session"),
        Row(f"Label quality after a restart, {name}", restarted, target, "report from the disk cache"),
        Row(
            f"Label quality first useful render, {name}",
            first_useful,
            target,
            f"model nobody evaluated ({model.parent.name}/{model.name}), empty caches; showed: {shown}",
        ),
        Row(
            f"Label quality COMPLETE (cold), {name}",
            complete,
            None,
            f"the same model nobody evaluated: every image scored and the full page rendered; first useful / "
            f"complete = {first_useful / complete:.0%}",
        ),
    ]


def bench_camvid_label_quality(root: Path, scratch: Path) -> list[Row]:
    from seglab.analysis.label_quality import score_dataset
    from seglab.analysis.label_quality.cache import LabelQualityGatherer
    from seglab.data.spec import DataSpec, build_dataset
    from seglab.engine.checkpoint import load_checkpoint
    from seglab.engine.config import TrainConfig
    from seglab.engine.evaluation import evaluate_checkpoint
    from seglab.engine.predict import _size_batches
    from seglab.sources.checkpoint_source import CheckpointSource

    camvid = DataSpec(kind="camvid", root=str(root), split="val")
    config = TrainConfig(
        model="tiny_unet", crop_size=256, batch_size=8, time_budget_s=20, data=camvid.with_split("train")
    )
    rows = bench_label_quality("CamVid val", camvid, config, None, scratch, LABEL_QUALITY_CAMVID_TARGET_S)
    run = scratch / "runs" / "camvid-tiny"
    data = build_dataset(camvid)
    source = CheckpointSource(run / "best.pt")
    start = time.perf_counter()
    for chunk in _size_batches(data, list(range(len(data))), 8):  # what no scoring can avoid: read and predict
        source.predict_batch([data.ids[index] for index in chunk], [data.load(index)[0] for index in chunk])
    floor = time.perf_counter() - start
    start = time.perf_counter()
    score_dataset(source, data)
    scoring = time.perf_counter() - start
    model = load_checkpoint(run / "best.pt").build_model("cpu")
    start = time.perf_counter()
    score_dataset(model, data, batch_size=1)
    one_by_one = time.perf_counter() - start
    # A class opens Inspect first: its evaluation scores the labels in the same model pass.
    _restart_server(empty_disk_cache=True)
    at, inspect_first = _render_label_quality(camvid, run / "best.pt", PAGES["Inspect"])
    at.switch_page(PAGES["Label quality"])
    after_inspect = timed_run(at)
    checkpoint = run / "best.pt"
    start = time.perf_counter()
    evaluate_checkpoint(checkpoint, data, use_cache=False)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_checkpoint(checkpoint, data, use_cache=False, consumer=LabelQualityGatherer(scratch / "lq.json", data))
    gathering = time.perf_counter() - start
    return rows + [
        Row(
            "  reading + predicting the split (floor)",
            floor,
            None,
            f"of a complete cold render; score_dataset {scoring:.2f} s, one image at a time {one_by_one:.2f} s "
            f"(the former path)",
        ),
        Row(
            "Label quality after Inspect, CamVid val",
            after_inspect,
            LABEL_QUALITY_CAMVID_TARGET_S,
            f"scored in Inspect's evaluation pass (Inspect first render {inspect_first:.2f} s); an evaluation "
            f"{plain:.2f} s alone, {gathering:.2f} s gathering label quality ({gathering / plain:.2f}x)",
        ),
    ]


def bench_shapes_label_quality(scratch: Path) -> list[Row]:
    from seglab.data.spec import DataSpec
    from seglab.engine.config import TrainConfig

    shapes = DataSpec(split="val")  # the app's default data: 100 images of 128x128
    demo = ROOT / "checkpoints" / "shapes-ce" / "best.pt"  # trained elsewhere: never evaluated in this scratch cache
    config = TrainConfig(model="tiny_unet", time_budget_s=10, data=shapes.with_split("train"))
    foreign = demo if demo.is_file() else None
    return bench_label_quality("Shapes val", shapes, config, foreign, scratch, PAGE_TARGET_S)


def default_camvid() -> Path:
    for candidate in (Path("/work/shared/data/camvid"), ROOT.parent / "shared" / "data" / "camvid"):
        if (candidate / "train").is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="re-renders timed per Dataset change (default: 5)")
    parser.add_argument(
        "--camvid", type=Path, default=default_camvid(), help="SegNet CamVid folder (default: %(default)s)"
    )
    parser.add_argument(
        "--only", choices=("pages", "camvid-stats", "label-quality"), help="run one part (default: all of them)"
    )
    args = parser.parse_args()
    from streamlit.logger import set_log_level

    set_log_level("error")  # not "missing ScriptRunContext": the pages run under AppTest, not `streamlit run`

    with tempfile.TemporaryDirectory(prefix="seglab-bench-app-") as scratch:
        scratch = Path(scratch)
        os.environ["SEGLAB_RUNS_DIR"] = str(scratch / "runs")
        os.environ["SEGLAB_CACHE_DIR"] = str(scratch / "cache")  # cold evaluation and statistics caches
        load_before = os.getloadavg()
        if args.only in (None, "pages"):
            print(f"checkpoints: {', '.join(seed_runs(scratch / 'runs'))}")
        rows = bench_pages(args.repeats) if args.only in (None, "pages") else []
        if args.only in (None, "label-quality"):
            rows += bench_shapes_label_quality(scratch)
        if (args.camvid / "train").is_dir():
            if args.only in (None, "camvid-stats"):
                rows += bench_camvid_stats(args.camvid, scratch / "camvid-cache")
            if args.only in (None, "label-quality"):
                rows += bench_camvid_label_quality(args.camvid, scratch)
        else:
            rows.append(
                Row("CamVid train statistics and label quality", None, None, f"skipped: no CamVid at {args.camvid}")
            )
        load_after = os.getloadavg()

    print(
        f"load average (1/5/15 min): before {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after {'/'.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} CPUs"
    )
    print(f"{'measurement':46s} {'seconds':>8s} {'target':>7s} {'':>5s}  note")
    for row in rows:
        print(row.line())
    failed = [
        row.what for row in rows if row.seconds is not None and row.target_s is not None and row.seconds >= row.target_s
    ]
    measured = sum(row.target_s is not None and row.seconds is not None for row in rows)
    print(f"{len(failed)} of {measured} measurements miss their target" + (": " + "; ".join(failed) if failed else ""))


if __name__ == "__main__":
    main()
