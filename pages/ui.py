"""Streamlit glue shared by every page: cached loaders, cross-page state, the shared sidebar.

Pages import this module and the ``seglab`` library; nothing here does tensor math or file
parsing. Caches are keyed on JSON strings, file paths + mtimes and dataset fingerprints, never on
arrays. Cross-page choices (dataset, split, checkpoint, sample) live in ``st.session_state`` and are
mirrored in the URL query parameters so a view can be shared and reloaded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from seglab.data.shapes import ShapesConfig
from seglab.data.spec import DataSpec, build_dataset
from seglab.errors import SeglabError

_log = logging.getLogger("seglab.app")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEGLAB_DATA_ROOT", PROJECT_ROOT.parent / "shared" / "data"))
METRIC_DEFINITION = (
    "mIoU here is dataset-accumulated (MMSegmentation IoUMetric): one confusion matrix summed over the whole split, "
    "void pixels dropped, mean over the classes present in ground truth or prediction."
)

SPEC_KEY = "seglab_data_spec"
SPLIT_KEY = "seglab_split"
CHECKPOINT_KEY = "seglab_checkpoint"
SAMPLE_KEY = "seglab_sample"


def runs_dir() -> Path:
    """Where run folders live: ``$SEGLAB_RUNS_DIR`` or ``checkpoints/`` next to app.py (read on every call)."""
    return Path(os.environ.get("SEGLAB_RUNS_DIR", PROJECT_ROOT / "checkpoints"))


# -- cross-page state ------------------------------------------------------------------------
def current_spec() -> DataSpec:
    """The data source chosen on Home (or in the URL), defaulting to built-in Shapes."""
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = _spec_from_query().to_dict()
    return DataSpec.from_dict(st.session_state[SPEC_KEY])


def set_spec(spec: DataSpec) -> None:
    st.session_state[SPEC_KEY] = spec.to_dict()
    _write_query()


def current_split() -> str:
    return st.session_state.get(SPLIT_KEY) or st.query_params.get("split") or "val"


def current_checkpoint() -> str | None:
    """Path of the checkpoint chosen in the sidebar (a file under the runs folder)."""
    return st.session_state.get(CHECKPOINT_KEY) or _checkpoint_from_query()


_QUERY_PATH_FIELDS = ("root", "images", "masks", "list_file", "label_map")


def _spec_from_query() -> DataSpec:
    """The data source a shared link names; a link that no longer fits falls back to Shapes."""
    params = st.query_params
    kind = params.get("data", "shapes")
    try:
        if kind == "shapes":
            return DataSpec(shapes=ShapesConfig.from_query(params.get("shapes")))
        paths = {name: params.get(name) for name in _QUERY_PATH_FIELDS}
        return DataSpec(kind=kind, mask_format=params.get("mask_format", "auto"), **paths)
    except (SeglabError, ValueError, TypeError):
        return DataSpec()


def _checkpoint_from_query() -> str | None:
    run = st.query_params.get("run")
    if not run:
        return None
    path = runs_dir() / Path(run).name / "best.pt"
    return str(path) if path.is_file() else None


def _write_query() -> None:
    spec = current_spec()
    params = {"data": spec.kind, "split": current_split()}
    for name in _QUERY_PATH_FIELDS:
        if getattr(spec, name):
            params[name] = getattr(spec, name)
    if spec.kind == "shapes" and (changed := spec.shapes.to_query()):
        params["shapes"] = changed
    if spec.kind != "shapes" and spec.mask_format != "auto":
        params["mask_format"] = spec.mask_format
    checkpoint = current_checkpoint()
    if checkpoint:
        params["run"] = Path(checkpoint).parent.name
    st.query_params.from_dict(params)


# -- cached loaders --------------------------------------------------------------------------
def spec_key(spec: DataSpec) -> str:
    """A hashable cache key for a DataSpec."""
    return json.dumps(spec.to_dict(), sort_keys=True)


@st.cache_resource(max_entries=8, show_spinner="Loading dataset...")
def _dataset(key: str):
    return build_dataset(DataSpec.from_dict(json.loads(key)))


def dataset(spec: DataSpec):
    """The dataset a spec describes (shared across sessions; raises SeglabError on bad paths)."""
    return _dataset(spec_key(spec))


@st.cache_data(max_entries=16, show_spinner="Computing class statistics (cached on disk afterwards)...")
def _stats(key: str, fingerprint: str):
    from seglab.stats import compute_stats

    return compute_stats(_dataset(key))


def stats(spec: DataSpec):
    """Dataset statistics, keyed by the dataset fingerprint so edited data is recomputed."""
    data = dataset(spec)
    return _stats(spec_key(spec), data.fingerprint())


@st.cache_resource(max_entries=6, show_spinner="Loading checkpoint...")
def _checkpoint(path: str, mtime_ns: int):
    from seglab.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    return checkpoint, checkpoint.build_model("cpu")


def checkpoint_and_model(path: str | os.PathLike):
    """``(Checkpoint, model in eval mode)`` for a file, reloaded when the file changes."""
    path = Path(path)
    return _checkpoint(str(path), path.stat().st_mtime_ns)


@st.cache_resource(max_entries=8, show_spinner="Evaluating checkpoint on the split (cached on disk afterwards)...")
def _evaluation(path: str, mtime_ns: int, key: str):
    from seglab.evaluation import evaluate_checkpoint

    return evaluate_checkpoint(path, _dataset(key))


def evaluation(path: str | os.PathLike, spec: DataSpec):
    """Per-image predictions and metrics of a checkpoint on a split (memory, then disk cache)."""
    path = Path(path)
    return _evaluation(str(path), path.stat().st_mtime_ns, spec_key(spec))


def checkpoint_options() -> dict[str, str]:
    """``{label: path}`` of every run's best (else last) checkpoint, newest first."""
    from seglab.runs import list_runs

    options = {}
    for run in list_runs(runs_dir()):
        if run.checkpoint is not None:
            score = f" · mIoU {run.best_metric:.3f}" if run.best_metric is not None else ""
            options[f"{run.name}{score}"] = str(run.checkpoint)
    return options


# -- errors ---------------------------------------------------------------------------------
@contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a SeglabError (or any unexpected error) as st.error and let the rest of the page run."""
    try:
        yield
    except SeglabError as error:
        st.error(f"**{what}**: {error}", icon=":material/error:")
    except StreamlitAPIException:
        raise  # a page layout bug: let it surface in tests instead of posing as a data problem
    except Exception as error:  # an odd file or checkpoint must not take the rest of the page down
        _log.exception("%s failed", what)
        st.error(f"**{what}** failed: {type(error).__name__}: {error}. The details are in the server log.",
                 icon=":material/error:")  # fmt: skip


# -- the shared sidebar -----------------------------------------------------------------------
def sidebar() -> None:
    """Dataset summary, split and checkpoint pickers: drawn by app.py for every page."""
    spec = current_spec()
    with st.sidebar:
        st.caption(f"Data: **{spec.describe().split(' [')[0]}**")
        splits = ["train", "val", "test"] if spec.kind in ("shapes", "camvid") else ["train", "val", "trainval"]
        if spec.kind == "folder":
            splits = [spec.split or "custom"]
        split = current_split()
        st.selectbox("Split", splits, index=splits.index(split) if split in splits else 0, key=SPLIT_KEY,
                     on_change=_write_query, help="Which split the Dataset, Inspect, Compare and Leaderboard pages show")  # fmt: skip
        options = checkpoint_options()
        labels = list(options)
        chosen = current_checkpoint()
        index = next((i for i, label in enumerate(labels) if options[label] == chosen), 0)
        if labels:
            label = st.selectbox("Checkpoint", labels, index=index, help="Run folders under checkpoints/ (best.pt)")
            if options[label] != st.session_state.get(CHECKPOINT_KEY):
                st.session_state[CHECKPOINT_KEY] = options[label]
                _write_query()
        else:
            st.caption("No checkpoints yet: train one on the Train page.")


# -- gallery thumbnails -------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _small_samples(key: str, fingerprint: str, indices: tuple[int, ...], max_side: int):
    from seglab.gallery import downscale_sample

    data = _dataset(key)
    return [downscale_sample(*data.load(index), max_side) for index in indices]


@st.cache_data(max_entries=32, show_spinner=False)
def _thumbnails(key: str, fingerprint: str, indices: tuple[int, ...], opacity: float, outlines: bool, max_side: int):
    from seglab.gallery import encode_png, thumbnail

    label_map = _dataset(key).label_map
    return [encode_png(thumbnail(image, mask, label_map, opacity=opacity, outlines=outlines, max_side=max_side))
            for image, mask in _small_samples(key, fingerprint, indices, max_side)]  # fmt: skip


def thumbnails(spec: DataSpec, indices, *, opacity: float, outlines: bool, max_side: int = 192) -> list[bytes]:
    """PNG overlay thumbnails of samples ``indices`` for ``st.image``. Cached per page and display
    setting; the loaded, downscaled samples are cached apart, so a new opacity only redraws overlays."""
    key = spec_key(spec)
    fingerprint = _dataset(key).fingerprint()
    return _thumbnails(key, fingerprint, tuple(int(index) for index in indices), float(opacity), bool(outlines), int(max_side))


# -- Inspect page: chosen sample, confusion-cell galleries, uploaded images ---------------------------
def current_sample() -> str | None:
    """Sample id chosen on the Inspect page (or from the URL's ``sample``)."""
    return st.session_state.get(SAMPLE_KEY) or st.query_params.get("sample")


def set_sample(sample_id: str) -> None:
    st.session_state[SAMPLE_KEY] = sample_id
    if "data" not in st.query_params:  # a page switch clears the URL: put the data source and split back
        _write_query()
    st.query_params["sample"] = sample_id


@st.cache_data(max_entries=16, show_spinner="Finding the images holding these pixels...")
def _cell_gallery(path: str, mtime_ns: int, key: str, gt_class: int, pred_class: int, region: str, width: int):
    from seglab.failures import cell_gallery

    return cell_gallery(_evaluation(path, mtime_ns, key), _dataset(key), gt_class, pred_class, region=region, width=width)


def cell_gallery(path: str | os.PathLike, spec: DataSpec, gt_class: int, pred_class: int, region: str, width: int):
    """``(CellRanking, thumbnails)`` of one confusion-matrix cell on a split (see seglab.failures.cell_gallery)."""
    path = Path(path)
    return _cell_gallery(str(path), path.stat().st_mtime_ns, spec_key(spec), int(gt_class), int(pred_class), region, int(width))


# -- confusion cell -> images (Inspect and Compare) ---------------------------------------------
NORMALIZATIONS = {"none": "pixel counts", "recall": "recall (rows sum to 1)", "precision": "precision (columns sum to 1)"}
REGION_LABELS = {"all": "all pixels", "boundary": "boundary band", "interior": "object interiors"}


def largest_confusion(confusion, names: list[str]) -> tuple[int, int]:
    """(ground truth, prediction) of the largest off-diagonal cell, the gallery's first view."""
    from seglab.failures import top_confusions

    largest = top_confusions(confusion, names, k=1)
    return (largest[0].gt_class, largest[0].pred_class) if largest else (0, 0)


def clicked_cell(event, names: list[str], key: str, default: tuple[int, int]) -> tuple[int, int]:
    """The cell chosen on a clickable confusion figure: a new click wins, else the last choice under ``key``."""
    points = event.selection.points if event else []
    clicked = (names.index(points[0]["y"]), names.index(points[0]["x"])) if points else None
    cell = st.session_state.get(key) or default
    if clicked and clicked != st.session_state.get(key + "_seen"):
        cell = clicked
        # A click moves the class pickers of cell_gallery_view too (their state lives under these keys).
        st.session_state[f"{key}_gt"], st.session_state[f"{key}_pred"] = clicked
    st.session_state[key + "_seen"] = clicked
    return cell if max(cell) < len(names) else (0, 0)


def last_clicked_chart(events: dict, key: str) -> str:
    """Of several clickable charts (name -> plotly_chart event), the one clicked last; the first until then.

    Streamlit keeps each chart's selection across reruns, so the chart whose selection changed since
    the previous run is the new click.
    """
    clicked = None
    for name, event in events.items():
        points = str(event.selection.points) if event and event.selection.points else ""
        if points and points != st.session_state.get(f"{key}_{name}"):
            clicked = name
        st.session_state[f"{key}_{name}"] = points
    chosen = clicked or st.session_state.get(key)
    chosen = chosen if chosen in events else next(iter(events))
    st.session_state[key] = chosen
    return chosen


def cell_gallery_view(path: str, spec: DataSpec, names: list[str], cell: tuple[int, int], key: str, *, open_button: bool) -> None:
    """The images holding most pixels of one confusion cell, those pixels in yellow on the error map."""
    from seglab.failures import REGIONS

    for widget_key, class_id in ((f"{key}_gt", cell[0]), (f"{key}_pred", cell[1])):
        if st.session_state.get(widget_key) not in range(len(names)):  # first view, or another dataset's classes
            st.session_state[widget_key] = class_id
    left, middle, right = st.columns(3)
    gt_class = left.selectbox("Ground-truth class", range(len(names)), format_func=names.__getitem__, key=f"{key}_gt")
    pred_class = middle.selectbox("Predicted class", range(len(names)), format_func=names.__getitem__, key=f"{key}_pred")
    st.session_state[key] = (gt_class, pred_class)
    width = right.slider("Boundary band N (px)", 1, 5, 2, help="Pixels within N px of a ground-truth class edge", key=f"{key}_band")
    region = st.radio("Pixels", REGIONS, format_func=REGION_LABELS.get, horizontal=True, key=f"{key}_region",
                      help="Boundary errors call for sharper decoders or cleaner edges; whole-object misses for data and context")  # fmt: skip
    with guard("Ranking the images of this cell"):
        ranking, pictures = cell_gallery(path, spec, gt_class, pred_class, region, width)
        cell_name = f"{names[gt_class]} predicted as {names[pred_class]}"
        if not ranking.total_pixels:
            st.info(f"No pixel of {cell_name} in this split.")
            return
        st.markdown(
            f"**{ranking.total_pixels:,} px of {cell_name}**: {ranking.boundary_pixels:,} "
            f"({ranking.boundary_share:.0%}) within {width} px of a ground-truth edge, {ranking.interior_pixels:,} "
            f"({1 - ranking.boundary_share:.0%}) farther inside. {len(ranking.hits)} images hold such pixels "
            f"({REGION_LABELS[region]}); the first {len(pictures)} below, those pixels in yellow on the error map."
        )
        for start in range(0, len(pictures), 4):
            for column, hit, picture in zip(st.columns(4), ranking.hits[start : start + 4], pictures[start : start + 4]):
                column.image(picture, caption=f"{hit.sample_id}: {hit.pixels:,} px ({hit.boundary_pixels:,} boundary)", width="stretch")
                if open_button and column.button("Inspect", key=f"{key}_open_{hit.sample_id}", help="Show this image in the first tab"):
                    set_sample(hit.sample_id)
                    st.rerun()


@st.cache_data(max_entries=4, show_spinner="Predicting the uploaded image...")
def _upload_prediction(path: str, mtime_ns: int, data: bytes, max_pixels: int):
    from seglab.data.io import read_image_bytes
    from seglab.predict import predict

    image = read_image_bytes(data, max_pixels=max_pixels)
    return image, predict(_checkpoint(path, mtime_ns)[1], image)


def upload_prediction(path: str | os.PathLike, data: bytes, max_pixels: int):
    """``(image, Prediction)`` for an uploaded PNG/JPEG (validated; DatasetError on a bad file)."""
    path = Path(path)
    return _upload_prediction(str(path), path.stat().st_mtime_ns, data, int(max_pixels))


# -- Compare page: pixels fixed and broken by checkpoint B vs A ---------------------------------
@st.cache_data(max_entries=8, show_spinner="Counting the pixels B fixed and broke...")
def _pixel_diff(path_a: str, mtime_a: int, path_b: str, mtime_b: int, key: str):
    from seglab.compare import pixel_diff

    data = _dataset(key)
    evaluation_a, evaluation_b = _evaluation(path_a, mtime_a, key), _evaluation(path_b, mtime_b, key)
    targets = (data.load(result.index)[1] for result in evaluation_a.results)
    return pixel_diff(evaluation_a, evaluation_b, targets, data.ignore_index)


def pixel_diff(path_a: str | os.PathLike, path_b: str | os.PathLike, spec: DataSpec):
    """``seglab.compare.PixelDiff`` of checkpoint B vs A on a split (cached per file versions and data)."""
    path_a, path_b = Path(path_a), Path(path_b)
    return _pixel_diff(str(path_a), path_a.stat().st_mtime_ns, str(path_b), path_b.stat().st_mtime_ns, spec_key(spec))


# -- deep links on a fresh server ------------------------------------------------------------------
def _leave_legacy_page_mode() -> None:
    """Make a deep link (e.g. /compare) on a freshly started server go through app.py.

    Streamlit decides per process whether a ``pages/`` folder means its legacy automatic pages,
    and only learns otherwise once app.py has called ``st.navigation``. Until then a request for
    /compare runs pages/compare.py alone, without the shared sidebar. Every page imports this
    module, so flipping the flag here and rerunning sends that first request through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_legacy_page_mode()


# -- Loss inspector: logits of a few images, computed once per checkpoint version and image set -------
@st.cache_data(max_entries=4, show_spinner="Running the checkpoint on the chosen images...")
def _loss_inputs(path: str, mtime_ns: int, key: str, sample_ids: tuple[str, ...]):
    from seglab.checkpoint import check_compatible
    from seglab.predict import predict_logits

    data = _dataset(key)
    checkpoint, model = _checkpoint(path, mtime_ns)
    check_compatible(checkpoint, data.label_map)
    samples = [data.load(data.index_of(sample_id)) for sample_id in sample_ids]
    return [image for image, _ in samples], [mask for _, mask in samples], [predict_logits(model, image).numpy() for image, _ in samples]


def loss_inputs(path: str | os.PathLike, spec: DataSpec, sample_ids):
    """``(images, masks, logits)`` of samples ``sample_ids``: logits (K, H, W) float32, the model run once per file version."""
    path = Path(path)
    return _loss_inputs(str(path), path.stat().st_mtime_ns, spec_key(spec), tuple(str(sample_id) for sample_id in sample_ids))


# -- Label quality: confident-learning scores of a split, kept per checkpoint version, data and band ------
@st.cache_resource(show_spinner=False)
def _label_quality_store() -> tuple[dict, threading.Lock]:
    # A plain dict, not st.cache_data: the page shows a progress bar while a split is scored. Shared by
    # every browser tab, hence the lock around reading and evicting.
    return {}, threading.Lock()


def label_quality(path: str | os.PathLike, spec: DataSpec, band: int, progress=None):
    """``seglab.label_quality.LabelQualityReport`` of a checkpoint on a split, computed once (the 4 latest
    are kept); ``progress(done, total)`` is called only while computing."""
    from seglab.checkpoint import check_compatible
    from seglab.label_quality import score_dataset

    path = Path(path)
    mtime_ns, key = path.stat().st_mtime_ns, spec_key(spec)
    data = _dataset(key)
    (store, lock), store_key = _label_quality_store(), (str(path), mtime_ns, key, data.fingerprint(), int(band))
    with lock:
        report = store.get(store_key)
    if report is None:  # scored outside the lock: another tab scoring another split need not wait
        checkpoint, model = _checkpoint(str(path), mtime_ns)
        check_compatible(checkpoint, data.label_map)
        report = score_dataset(model, data, band=int(band), progress=progress)
        with lock:
            store[store_key] = report
            while len(store) > 4:
                store.pop(next(iter(store)))
    return report


@st.cache_data(max_entries=8, show_spinner="Predicting this image...")
def _image_probabilities(path: str, mtime_ns: int, key: str, index: int):
    from seglab.predict import predict

    return predict(_checkpoint(path, mtime_ns)[1], _dataset(key).load(index)[0], return_probabilities=True)


def image_probabilities(path: str | os.PathLike, spec: DataSpec, index: int):
    """``seglab.predict.Prediction`` with (K, H, W) probabilities of sample ``index`` (cached per file version)."""
    path = Path(path)
    return _image_probabilities(str(path), path.stat().st_mtime_ns, spec_key(spec), int(index))


@st.cache_data(max_entries=4, show_spinner="Checking the ranking against the labels Shapes corrupted...")
def _shapes_validation(path: str, mtime_ns: int, key: str, band: int):
    from seglab.label_quality import validate_on_shapes

    return validate_on_shapes(label_quality(path, DataSpec.from_dict(json.loads(key)), band), _dataset(key))


def shapes_validation(path: str | os.PathLike, spec: DataSpec, band: int):
    """``seglab.label_quality.ShapesValidation`` of the label-quality ranking on a noisy Shapes split."""
    path = Path(path)
    return _shapes_validation(str(path), path.stat().st_mtime_ns, spec_key(spec), int(band))
