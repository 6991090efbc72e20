"""The edge runtime (torch-free): everything an edge box runs, from one module.

    from stop_export.runtime import Recognizer, open_backend, open_source, LabelBank, SearchIndex

Frames come from the frame source (`open_source`, `frames_from`), are pre-processed as training did
(`prepare_clip`, `PreprocessCfg`), run through a backend (`open_backend`: ONNX Runtime, TensorRT, or PyTorch
when chosen), and are read by the `Recognizer` (labels, class statistics, label banks, events). Names are
imported on first use, so `import stop_export.runtime` costs nothing and no backend library is loaded until
one is asked for. Every error is a `StopError` (`stop_train.errors`).
"""

from __future__ import annotations

import importlib

_NAMES = {
    "stop_export.runtime.recognizer": ("Recognizer",),
    "stop_export.runtime.backends": ("Backend", "BACKEND_NAMES", "open_backend", "available_ort_providers"),
    "stop_export.runtime.buffer": ("ClipBuffer",),
    "stop_export.runtime.events": ("Event", "EventCfg", "EventDetector"),
    "stop_export.runtime.frames": ("frames_from", "sigint_sets"),
    "stop_export.runtime.bank": ("LabelBank", "BankError"),
    "stop_export.runtime.search": ("SearchIndex", "SearchIndexError", "embed_video"),
    "stop_export.runtime.text": ("TextEncoder", "text_encoder_beside"),
    "stop_export.runtime.tokenizer": ("ClipTokenizer",),
    "stop_export.runtime.errors": ("BackendError", "RecognizeError", "SourceGaveUp"),
    "stop_train.errors": ("StopError",),
    "stop_train.schema": ("Metadata", "MetadataError"),
    "stop_train.labels": ("load_labels",),
    "stop_train.statistics": ("FrameStatistics",),
    "stop_train.video.source": ("open_source", "SourceSpec", "ReconnectPolicy", "SourceError"),
    "stop_train.video": ("PreprocessCfg", "SamplingCfg", "prepare_clip", "normalize_frames"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
