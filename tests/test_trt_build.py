"""TensorRT engines: the FP16 graph conversion (checked in ONNX Runtime against FP32 by the FP16 row of
DECISIONS §5), the graph prepared for each TensorRT, and real TensorRT-for-RTX builds of the exported
graphs (function-body path, FP32 and FP16) on this CPU-only machine."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stop_export.cli import export_main
from stop_export.onnx.check import check_clips
from stop_export.trt.builder import BuildOptions, EngineError, TensorRT, build_engine, detect_tensorrt, prepare_graph
from stop_export.trt.fp16 import convert_to_fp16
from stop_train.tolerances import FP16_EMBED_COSINE, FP16_TOP1_AGREEMENT, TOP1_MARGIN_FACTOR


def run(path_or_model, clips):
    data = path_or_model.SerializeToString() if isinstance(path_or_model, onnx.ModelProto) else str(path_or_model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"frames": clips})))


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_fp16_graph_keeps_the_interface_and_the_embedding(exported, mode):
    model = onnx.load(str(exported[mode]))
    half = convert_to_fp16(model)
    onnx.checker.check_model(half, full_check=True)
    onnx.shape_inference.infer_shapes(half, check_type=True, strict_mode=True)
    assert [(v.name, v.type.tensor_type.elem_type) for v in half.graph.output] == [
        (v.name, v.type.tensor_type.elem_type) for v in model.graph.output
    ]
    assert not any(t.data_type == onnx.TensorProto.FLOAT for t in half.graph.initializer)
    kept = {n.op_type for n in half.graph.node} & {"LayerNormalization", "Softmax"}
    assert kept, "the graph has LayerNorm/softmax to keep in FP32"
    clips = check_clips(4, 64, 16, seed=3)
    ref, got = run(exported[mode], clips), run(half, clips)
    a, b = ref["video_embedding"], got["video_embedding"]
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cosine.min() >= FP16_EMBED_COSINE, cosine.min()
    err = np.abs(got["logits"] - ref["logits"]).max()
    top2 = np.sort(ref["logits"], -1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > TOP1_MARGIN_FACTOR * err
    assert clear.sum() >= 8, f"only {clear.sum()} of 16 clips have a clear margin: the check would say little"
    agree = (ref["logits"].argmax(-1) == got["logits"].argmax(-1))[clear].mean()
    assert agree >= FP16_TOP1_AGREEMENT
    for name in ("spatial_mask", "gap_prompt_count"):
        if name in ref:  # flips allowed where margins are small; reported, and rare
            flips = float((ref[name] != got[name]).mean())
            print(f"{mode} {name}: flip rate {flips:.4f}")
            assert flips < 0.05


def _model_with_node(exported) -> onnx.ModelProto:
    return onnx.load(str(exported["dynamic"]))


def test_graph_prepared_for_each_tensorrt(exported):
    model = _model_with_node(exported)

    def node_and_functions(m):
        (node,) = [n for n in m.graph.node if n.domain == "stop"]
        return {a.name for a in node.attribute}, [f.name for f in m.functions]

    jetson = TensorRT(None, "tensorrt", (10, 3, 0))
    newer = TensorRT(None, "tensorrt", (10, 8, 0))
    prepared, how = prepare_graph(model, jetson, use_plugin=True)
    attrs, functions = node_and_functions(prepared)
    assert "plugin_namespace" in attrs and functions == [] and how.startswith("plugin")  # 10.3 inlines functions
    prepared, how = prepare_graph(model, newer, use_plugin=True)
    attrs, functions = node_and_functions(prepared)
    assert "plugin_namespace" in attrs and functions == [
        "TemporalPromptInsert"
    ]  # prefers the plugin, keeps the fallback
    prepared, how = prepare_graph(model, newer, use_plugin=False)
    attrs, functions = node_and_functions(prepared)
    assert "plugin_namespace" not in attrs and functions == ["TemporalPromptInsert"] and how.startswith("function")
    assert TensorRT(None, "tensorrt_rtx", (1, 7, 1)).strongly_typed and not jetson.strongly_typed
    assert TensorRT(None, "tensorrt", (11, 0, 0)).strongly_typed


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_tensorrt_for_rtx_builds_fp32_and_fp16_engines(exported, mode, tmp_path, capsys):
    trt = detect_tensorrt("tensorrt_rtx")  # installed by make test; builds without a GPU
    for fp16 in (False, True):
        engine = tmp_path / f"{mode}-{fp16}.engine"
        section = build_engine(exported[mode], engine, BuildOptions(fp16=fp16, max_batch=4), trt)
        assert engine.stat().st_size > 100_000
        sidecar = json.loads((tmp_path / f"{engine.name}.json").read_text())
        assert sidecar["tensorrt"]["precision"] == ("fp16" if fp16 else "fp32")
        assert sidecar["tensorrt"]["batch"] == [1, 1, 4] and sidecar["labels"][0] == "MovingLeft"
        onnx_meta = json.loads({p.key: p.value for p in onnx.load(str(exported[mode])).metadata_props}["stop"])
        assert len(sidecar["fingerprint"]) == 16 and sidecar["fingerprint"] == onnx_meta["fingerprint"]
        expected = "function body" if mode == "dynamic" else "none"
        assert section["implementation"].startswith(expected) and section["flavour"] == "tensorrt_rtx"


def test_rtx_with_a_plugin_falls_back_to_the_function_body_and_says_so(exported, tmp_path, caplog):
    fake = tmp_path / "libstop_tpi_plugin.so"
    fake.write_bytes(b"")
    trt = detect_tensorrt("tensorrt_rtx")
    section = build_engine(exported["dynamic"], tmp_path / "m.engine", BuildOptions(plugin=str(fake)), trt)
    assert section["implementation"].startswith("function body") and section["plugin_version"] == ""
    assert any("cannot add plugin layers" in r.getMessage() for r in caplog.records)


def test_export_cli_builds_engines_and_bad_profiles_are_one_message(exported, tmp_path, capsys, caplog):
    folder = exported["dynamic"].parent
    out = tmp_path / "m.onnx"
    cache = tmp_path / "cache" / "timing.bin"
    assert (
        export_main(
            [
                str(folder / "model"),
                "--labels",
                str(folder / "labels.txt"),
                "-o",
                str(out),
                "--no-text-encoder",
                "--fp16",
                "--max-batch",
                "2",
                "--workspace",
                "256",
                "--timing-cache",
                str(cache),
            ]
        )
        == 0
    )
    assert (tmp_path / "m-fp16.engine").is_file() and (tmp_path / "m-fp16.engine.json").is_file()
    assert any("keeps no timing cache" in r.getMessage() for r in caplog.records)  # RTX: said, not faked
    with pytest.raises(EngineError, match="min <= opt <= max"):
        build_engine(
            out, tmp_path / "x.engine", BuildOptions(min_batch=4, max_batch=2), detect_tensorrt("tensorrt_rtx")
        )


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_tensorrt_for_rtx_builds_stop_b32(mode, tmp_path):
    """The real-size graph (random weights) builds too: FP32 and FP16, function-body path."""
    onnx_path = tmp_path / f"b32-{mode}.onnx"
    overrides = ["--labels", "ucf101", "--no-text-encoder", "-o", str(onnx_path)]
    source = "stop-b32" if mode == "dynamic" else "stop-official-b32"
    assert export_main([source, *overrides]) == 0
    trt = detect_tensorrt("tensorrt_rtx")
    for fp16 in (False, True):
        section = build_engine(onnx_path, tmp_path / f"{fp16}.engine", BuildOptions(fp16=fp16, max_batch=2), trt)
        print(f"stop-b32 {mode} {'fp16' if fp16 else 'fp32'}: built in {section['build_seconds']} s")
        (tmp_path / f"{fp16}.engine").unlink()  # hundreds of MB each


def test_engine_backend_names_what_differs(exported, tmp_path, capsys):
    from stop_export.cli import recognize_main
    from stop_export.runtime.backends import BackendError
    from stop_export.runtime.trt_backend import check_compatible, read_sidecar

    engine = tmp_path / "m.engine"
    build_engine(exported["dynamic"], engine, BuildOptions(), detect_tensorrt("tensorrt_rtx"))
    meta = read_sidecar(engine)
    check_compatible(meta, "tensorrt_rtx", meta.tensorrt["version"], "", None)  # the machine it was built on
    meta.tensorrt.update(flavour="tensorrt", version="10.3.0", compute_capability="8.7", plugin_version="1")
    with pytest.raises(BackendError) as err:
        check_compatible(meta, "tensorrt", "10.8.0", "8.6", None)
    message = str(err.value)
    assert "built with tensorrt 10.3.0, this machine has tensorrt 10.8.0" in message
    assert "compute capability 8.7, this GPU is 8.6" in message and "plugin v1" in message
    (tmp_path / "m.engine.json").unlink()
    assert recognize_main([str(engine), "--source", "missing.avi"]) == 2
    assert "no sidecar" in capsys.readouterr().err
