"""Export a STOP video classifier (and its text encoder) to ONNX, as DECISIONS §3 defines the graph."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import stop_train
from stop_train.atomic import atomic_write
from stop_train.model import STOP
from stop_train.model.deploy import (
    ExportError,
    ExportSource,
    TextEncoder,
    VideoClassifier,
    build_metadata,
    label_embeddings,
)
from stop_train.op_spec import OP_DOMAIN, OP_TYPE
from stop_train.schema import INPUT_NAME, METADATA_KEY, TEXT_INPUT, TEXT_OUTPUT, Metadata

from .function import attach_function, translation_table

log = logging.getLogger(__name__)

OPSET = 18  # <= 20 for TensorRT 10.3 (JetPack 6); 18 is the exporter's native opset
MAX_BATCH = 4096


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_shapes) -> onnx.ModelProto:
    program = torch.onnx.export(
        module,
        args,
        dynamo=True,
        opset_version=OPSET,
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=dynamic_shapes,
        custom_translation_table=translation_table(),
        optimize=True,
        verify=False,
        verbose=False,
    )
    proto = program.model_proto
    attach_function(proto)
    return proto


def export_video(src: ExportSource, path: str | Path, metadata: Metadata | None = None) -> onnx.ModelProto:
    """Write the video classifier to `path`; returns the checked model proto."""
    model, cfg = src.model.eval(), src.model.cfg
    text = label_embeddings(src)
    wrapper = VideoClassifier(model, text, src.preprocess).eval()
    example = torch.from_numpy(
        np.random.default_rng(0).integers(
            0, 256, (2, cfg.frames, src.preprocess.size, src.preprocess.size, 3), dtype=np.uint8
        )
    )
    meta = metadata or build_metadata(src)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with torch.no_grad():
        proto = _export(wrapper, (example,), Path(path), [INPUT_NAME], list(meta.outputs), {"frames": {0: batch}})
    _name_batch(proto, "batch")
    nodes = [n for n in proto.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_TYPE]
    expected = 1 if cfg.mode == "dynamic" else 0
    if len(nodes) != expected or (expected and not any(f.name == OP_TYPE for f in proto.functions)):
        raise ExportError(f"the exported graph has {len(nodes)} {OP_TYPE} node(s), expected {expected}")
    return _finish(proto, Path(path), meta)


def export_text(model: STOP, path: str | Path, metadata: Metadata) -> onnx.ModelProto:
    """Write the text encoder: token_ids (K, n) int64 -> text_embedding (K, E), K dynamic."""
    ids = model.tokenize(["a video of a person jumping.", "x."])
    k = torch.export.Dim("labels", min=1, max=MAX_BATCH)
    with torch.no_grad():
        proto = _export(
            TextEncoder(model.eval()).eval(), (ids,), Path(path), [TEXT_INPUT], [TEXT_OUTPUT], {"token_ids": {0: k}}
        )
    _name_batch(proto, "labels")
    return _finish(proto, Path(path), metadata)


def _name_batch(proto: onnx.ModelProto, name: str) -> None:
    """Give the dynamic first dimension of every graph input and output one readable name."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = name


def _finish(proto: onnx.ModelProto, path: Path, meta: Metadata) -> onnx.ModelProto:
    del proto.metadata_props[:]
    proto.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    proto.producer_name, proto.producer_version = "stop-toolkit", stop_train.__version__
    onnx.checker.check_model(proto, full_check=True)
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    atomic_write(path, lambda f: onnx.save(proto, f))  # one rename: a failed export leaves the previous file
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return proto
