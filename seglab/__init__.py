"""seglab: an interactive visual debugging lab for semantic segmentation.

The library is usable without the Streamlit app. The handful of names a Python user needs are here::

    import seglab

    seglab.train(seglab.TrainConfig(epochs=2), out_dir="checkpoints/mine")  # the built-in Shapes data
    val = seglab.build_dataset(seglab.DataSpec(kind="shapes", split="val"))
    print(seglab.evaluate_checkpoint("checkpoints/mine/best.pt", val).metrics.miou)

Everything else lives in the layer packages (see ARCHITECTURE.md): :mod:`seglab.data`, :mod:`seglab.models`,
:mod:`seglab.losses`, :mod:`seglab.metrics`, :mod:`seglab.engine`, :mod:`seglab.analysis`, :mod:`seglab.viz`,
:mod:`seglab.sources`, :mod:`seglab.cli`. The names below are imported on first use, so ``import seglab``
stays instant (torch loads only when something needs it) and has no process-wide side effect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_PUBLIC = {
    "DataSpec": "seglab.data.spec",
    "build_dataset": "seglab.data.spec",
    "LabelMap": "seglab.data.label_map",
    "SegmentationDataset": "seglab.data.base",
    "build_model": "seglab.models.registry",
    "available_models": "seglab.models.registry",
    "build_criterion": "seglab.losses.criterion",
    "ConfusionMatrix": "seglab.metrics.confusion",
    "SegmentationMetrics": "seglab.metrics.confusion",
    "TrainConfig": "seglab.engine.config",
    "Trainer": "seglab.engine.trainer",
    "train": "seglab.engine.trainer",
    "Checkpoint": "seglab.engine.checkpoint",
    "load_checkpoint": "seglab.engine.checkpoint",
    "predict": "seglab.engine.predict",
    "predict_probabilities": "seglab.engine.predict",
    "predict_dataset": "seglab.engine.predict",
    "evaluate_checkpoint": "seglab.engine.evaluation",
    "evaluate_source": "seglab.engine.evaluation",
    "SeglabError": "seglab.errors",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from seglab.data.base import SegmentationDataset
    from seglab.data.label_map import LabelMap
    from seglab.data.spec import DataSpec, build_dataset
    from seglab.engine.checkpoint import Checkpoint, load_checkpoint
    from seglab.engine.config import TrainConfig
    from seglab.engine.evaluation import evaluate_checkpoint, evaluate_source
    from seglab.engine.predict import predict, predict_dataset, predict_probabilities
    from seglab.engine.trainer import Trainer, train
    from seglab.errors import SeglabError
    from seglab.losses.criterion import build_criterion
    from seglab.metrics.confusion import ConfusionMatrix, SegmentationMetrics
    from seglab.models.registry import available_models, build_model


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'seglab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
