"""Prediction sources: models and prediction folders seglab did not train, behind one interface.

>>> source, description = open_source("model.onnx")            # or a .pt, a TorchScript file, a folder
>>> evaluation = evaluate_source(source, dataset, mapping=description.mapping)   # seglab.engine.evaluation

Kinds: :class:`CheckpointSource` (seglab ``.pt``), :class:`ModelFileSource` (TorchScript, ONNX),
:class:`HuggingFaceSource` (transformers folder), :class:`PredictionFolderSource` (PNG/npy/npz per
sample). :mod:`seglab.sources.mapping` maps a source's classes to a dataset's; description files
(:mod:`seglab.sources.description`) record kind, preprocessing, classes and mapping.
"""

from importlib import import_module
from typing import Any

# Names resolve on first use (PEP 562): the model worker (``python -m seglab.sources.worker``) imports
# this package, and an ONNX worker should not pay for importing torch and the checkpoint code.
_EXPORTS = {
    "DEFAULT_LIMITS": "base",
    "PredictionSource": "base",
    "SourceLimits": "base",
    "SourcePrediction": "base",
    "SourceCheck": "check",
    "check_source": "check",
    "CatalogEntry": "catalog",
    "SourceForm": "catalog",
    "allowed_roots": "catalog",
    "list_sources": "catalog",
    "register_source": "catalog",
    "validate_form": "catalog",
    "CheckpointSource": "checkpoint_source",
    "SourceDescription": "description",
    "describe_target": "description",
    "description_path": "description",
    "load_description": "description",
    "open_source": "description",
    "save_description": "description",
    "PredictionFolderSource": "folder_source",
    "write_prediction_png": "folder_source",
    "ClassMapping": "mapping",
    "MappedPrediction": "mapping",
    "MappedSource": "mapped",
    "resolve_mapping": "mapping",
    "unassigned_label": "mapping",
    "HuggingFaceSource": "model_file",
    "ModelFileSource": "model_file",
    "Preprocessing": "preprocessing",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seglab.sources' has no attribute {name!r}")
    return getattr(import_module(f"seglab.sources.{_EXPORTS[name]}"), name)


__all__ = [
    "DEFAULT_LIMITS",
    "CatalogEntry",
    "SourceForm",
    "allowed_roots",
    "list_sources",
    "register_source",
    "validate_form",
    "CheckpointSource",
    "ClassMapping",
    "HuggingFaceSource",
    "MappedPrediction",
    "MappedSource",
    "ModelFileSource",
    "PredictionFolderSource",
    "PredictionSource",
    "Preprocessing",
    "SourceCheck",
    "SourceDescription",
    "SourceLimits",
    "SourcePrediction",
    "check_source",
    "describe_target",
    "description_path",
    "load_description",
    "open_source",
    "resolve_mapping",
    "save_description",
    "unassigned_label",
    "write_prediction_png",
]
