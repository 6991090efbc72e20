"""ONNX export: the graph of DECISIONS §3, the TemporalPromptInsert node and its function, PyTorch vs ONNX
Runtime within §5, metadata, the text encoder and the torch-free tokenizer."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import SYNTHETIC_LABELS
from onnx import TensorProto, helper

from stop_export.cli import export_main
from stop_export.onnx.check import check_clips, compare
from stop_export.onnx.function import TemporalPromptInsert
from stop_export.runtime.backends import OrtBackend
from stop_export.runtime.recognizer import Recognizer
from stop_export.runtime.tokenizer import ClipTokenizer
from stop_train.labels import LABEL_SETS, label_texts, load_labels
from stop_train.model.deploy import VideoClassifier, resolve_source
from stop_train.model.insert_op import temporal_prompt_insert_reference
from stop_train.schema import DYNAMIC_OUTPUTS, FRAME_OUTPUT, METADATA_KEY, OFFICIAL_OUTPUTS, Metadata, MetadataError
from stop_train.tolerances import BATCH_REL_ERR, GOLDEN_REL_ERR, relative_error


def torch_outputs(path, clips: np.ndarray) -> dict[str, np.ndarray]:
    """The same export source, run in PyTorch."""
    src = resolve_source(path.parent / "model", labels=str(path.parent / "labels.txt"))
    with torch.no_grad():
        module = VideoClassifier(src.model, src.model.encode_labels(src.labels, src.template), src.preprocess).eval()
        outs = module(torch.from_numpy(clips))
    names = (DYNAMIC_OUTPUTS if src.model.cfg.mode == "dynamic" else OFFICIAL_OUTPUTS) + (FRAME_OUTPUT,)
    assert len(outs) == len(names)
    return {n: o.numpy() for n, o in zip(names, outs)}


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_graph_interface_node_and_function(exported, mode):
    model = onnx.load(str(exported[mode]))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 20
    (inp,) = model.graph.input
    assert inp.name == "frames" and inp.type.tensor_type.elem_type == TensorProto.UINT8
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [4, 64, 64, 3]
    names = [o.name for o in model.graph.output]
    assert names == [*(DYNAMIC_OUTPUTS if mode == "dynamic" else OFFICIAL_OUTPUTS), FRAME_OUTPUT]
    (frames,) = [o for o in model.graph.output if o.name == FRAME_OUTPUT]
    assert [d.dim_value for d in frames.type.tensor_type.shape.dim[1:]] == [4, 32]  # (B, T, E)
    custom = [n for n in model.graph.node if n.domain == "stop"]
    if mode == "dynamic":
        assert len(custom) == 1 and custom[0].op_type == "TemporalPromptInsert"
        attrs = {a.name: helper.get_attribute_value(a) for a in custom[0].attribute}
        assert attrs == {"prompts_per_gap": 2, "num_patches": 16, "variation_tol": pytest.approx(1e-4)}
        (fn,) = [f for f in model.functions if f.name == "TemporalPromptInsert"]
        assert fn.domain == "stop" and all(n.domain in ("", "ai.onnx") for n in fn.node)
    else:
        assert not custom and not model.functions
    meta = Metadata.from_json({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert meta.labels == SYNTHETIC_LABELS and meta.mode == mode and meta.frames == 4 and meta.size == 64
    assert meta.text_encoder == f"tiny-{mode}.text.onnx" and (exported[mode].parent / meta.tokenizer).is_file()
    assert meta.frame_embedding  # conftest gives the dynamic model class statistics, as a trained checkpoint has them
    assert meta.statistics == ("tiny-dynamic.stats.npz" if mode == "dynamic" else "")
    assert not meta.statistics or (exported[mode].parent / meta.statistics).is_file()


@pytest.mark.parametrize("mode", ["dynamic", "official"])
@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_pytorch(exported, mode, batch):
    clips = check_clips(4, 64, batch, seed=batch)
    report = compare(torch_outputs(exported[mode], clips), OrtBackend(exported[mode]).run(clips))
    assert report.ok, report.lines()
    assert set(report.errors) >= {"logits", "video_embedding"}
    assert ("gap_prompt_count" in report.mismatches) == (mode == "dynamic")


def test_batch_independence(exported):
    backend = OrtBackend(exported["dynamic"])
    clips = check_clips(4, 64, 3, seed=5)
    together = backend.run(clips)
    for i in range(3):
        alone = backend.run(clips[i : i + 1])
        assert relative_error(alone["video_embedding"], together["video_embedding"][i : i + 1]) < BATCH_REL_ERR
        assert (alone["gap_prompt_count"] == together["gap_prompt_count"][i : i + 1]).all()
        assert (alone["spatial_mask"] == together["spatial_mask"][i : i + 1]).all()


def _insert_model(p: int, elem: int) -> onnx.ModelProto:
    node = helper.make_node(
        "TemporalPromptInsert",
        ["x", "g"],
        ["tokens", "mask", "var", "count"],
        domain="stop",
        prompts_per_gap=p,
        num_patches=5,
        variation_tol=1e-4,
    )
    inputs = [
        helper.make_tensor_value_info("x", elem, ["B", "T", "F", "D"]),
        helper.make_tensor_value_info("g", elem, ["B", "G", "P", "D"]),
    ]
    outputs = [
        helper.make_tensor_value_info("tokens", elem, ["B", "S", "D"]),
        helper.make_tensor_value_info("mask", TensorProto.BOOL, ["B", "S"]),
        helper.make_tensor_value_info("var", TensorProto.FLOAT, ["B", "G"]),
        helper.make_tensor_value_info("count", TensorProto.INT32, ["B", "G"]),
    ]
    graph = helper.make_graph([node], "insert", inputs, outputs)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("stop", 1)],
        functions=[TemporalPromptInsert.to_function_proto()],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("p", [0, 1, 4])
@pytest.mark.parametrize("frames", [2, 5])
def test_function_body_equals_reference_op(dtype, p, frames):
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.FLOAT16
    model = _insert_model(p, elem)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(p)
    x = rng.standard_normal((3, frames, 8, 16)).astype(dtype)
    x[1, -1] = x[1, 0]  # a repeated frame: zero variation in one gap
    x[2] = x[2, :1]  # a still video: every gap alike
    g = rng.standard_normal((3, frames - 1, p, 16)).astype(dtype)
    got = session.run(None, {"x": x, "g": g})
    ref = temporal_prompt_insert_reference(torch.from_numpy(x), torch.from_numpy(g), p, 5, 1e-4)
    for name, a, b in zip(("tokens", "mask", "var", "count"), got, ref):
        b = b.numpy()
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name == "var":
            assert relative_error(a, b) < GOLDEN_REL_ERR
        else:
            assert (a == b).all(), name


def test_metadata_rejects_newer_schema_and_missing_fields_and_reads_schema_1():
    from stop_train.config import load_config
    from stop_train.video import PreprocessCfg, SamplingCfg

    cfg = load_config("tiny")
    meta = Metadata(
        labels=["a"],
        template="{label}",
        logit_scale=100.0,
        model=cfg,
        preprocess=PreprocessCfg.for_model(cfg),
        sampling=SamplingCfg(frames=cfg.frames),
        toolkit_version="0",
    )
    assert Metadata.from_json(meta.to_json()) == meta and (meta.frames, meta.size, meta.mode) == (4, 64, "dynamic")
    stored = json.loads(meta.to_json())
    assert "frames" not in stored and "size" not in stored  # T and S live once, in the configs
    newer = stored | {"schema_version": 99}
    with pytest.raises(MetadataError, match="schema 99"):
        Metadata.from_json(json.dumps(newer))
    with pytest.raises(MetadataError, match="lacks labels"):
        Metadata.from_json(json.dumps({k: v for k, v in stored.items() if k != "labels"}))
    with pytest.raises(MetadataError, match="no STOP metadata"):
        Metadata.from_json(None)
    # a schema-1 document, as stop-export wrote them until 2026-11-30: frames/size/mode beside untyped dicts
    v1 = stored | {
        "schema_version": 1,
        "frames": 4,
        "size": 64,
        "mode": "dynamic",
        "preprocess": {
            "mean": list(meta.preprocess.mean),
            "std": list(meta.preprocess.std),
            "resize": "short side, bicubic",
            "crop": "square, centre",
            "input": "uint8 RGB",
        },
    }
    v1.pop("fingerprint")
    old = Metadata.from_json(json.dumps(v1))
    assert (old.model, old.preprocess, old.sampling, old.fingerprint) == (
        meta.model,
        meta.preprocess,
        meta.sampling,
        "",
    )
    with pytest.raises(MetadataError, match="frames 8 vs 4"):
        Metadata.from_json(json.dumps(v1 | {"frames": 8}))
    with pytest.raises(MetadataError, match="sampling takes 8 frames"):
        Metadata.from_json(json.dumps(stored | {"sampling": {"frames": 8}}))
    # files exported before the frame embeddings and class statistics: neither; a statistics name is a file name
    assert (old.frame_embedding, old.statistics, old.outputs[-1]) == (False, "", "gap_prompt_count")
    with_frames = Metadata.from_json(json.dumps(stored | {"frame_embedding": True, "statistics": "m.stats.npz"}))
    assert with_frames.outputs[-1] == "frame_embedding" and with_frames.statistics == "m.stats.npz"
    for bad in ("../m.stats.npz", "/etc/m.npz", ".."):
        with pytest.raises(MetadataError, match="named as a file beside the model"):
            Metadata.from_json(json.dumps(stored | {"statistics": bad}))


@pytest.mark.parametrize("name", LABEL_SETS)
def test_tokenizer_matches_open_clip(name):
    from open_clip.tokenizer import default_bpe, tokenize

    ours = ClipTokenizer(default_bpe())
    texts = label_texts(load_labels(name), "a video of a person {label}.") + ["Café &amp; naïve   TEXT!! 42"]
    for length in (16, 32, 77):
        assert (ours(texts, length) == tokenize(texts, context_length=length).numpy()).all()


def test_relabel_through_text_encoder_matches_pytorch(exported):
    rec = Recognizer.open(exported["dynamic"], backend="cpu")
    new = ["ApplyEyeMakeup", "Biking", "jumping jacks"]
    rec.set_labels(new)
    clips = check_clips(4, 64, 2, seed=7)
    got = rec.predict(clips)
    folder = exported["dynamic"].parent
    src = resolve_source(folder / "model", labels=str(folder / "labels.txt"))
    with torch.no_grad():
        text = src.model.encode_labels(new, src.template)
        module = VideoClassifier(src.model, text, src.preprocess).eval()
        logits = module(torch.from_numpy(clips))[0].double().softmax(-1).numpy()
    assert rec.labels == new and relative_error(got.scores, logits) < GOLDEN_REL_ERR


def test_export_cli_check_passes_and_missing_labels_is_one_message(tmp_path, capsys):
    torch.manual_seed(0)
    assert (
        export_main(
            [
                "tiny",
                "--labels",
                "ucf101",
                "-o",
                str(tmp_path / "m.onnx"),
                "--no-text-encoder",
                "--check",
                "--check-clips",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "PASS" in out and "relative error" in out
    assert export_main(["tiny", "-o", str(tmp_path / "n.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--labels" in err[0]


def test_export_of_a_training_run(tmp_path):
    """A run directory brings its own labels, template and sampling (median interval) into the metadata."""
    from stop_train.cli import main as stop_train
    from stop_train.data.synthetic import SyntheticSpec, write_synthetic_motion

    data = write_synthetic_motion(
        tmp_path / "data", SyntheticSpec(groups=3, clips_per_group=1, frames=12, width=48, height=32)
    )
    run = tmp_path / "run"
    assert (
        stop_train(
            [
                "--dataset",
                "synthetic-motion",
                "--data-root",
                str(data),
                "--preset",
                "tiny",
                "--pretrained",
                "none",
                "--max-steps",
                "1",
                "--batch-size",
                "2",
                "--workers",
                "0",
                "--run-dir",
                str(run),
                "--val-fraction",
                "0.34",
            ]
        )
        == 0
    )
    assert export_main([str(run), "--no-text-encoder"]) == 0
    meta = OrtBackend(run / "export" / "model.onnx").metadata
    assert meta.labels == (run / "labels.txt").read_text().split()
    assert meta.sampling.frame_interval_s == pytest.approx(12 / 4 / 25)  # 12 frames at 25 fps, T = 4

    # the library call behind the command, on a checkpoint folder inside the run: the ONNX file goes into the
    # run's export folder (it went into the checkpoint folder before), and the result names what was written
    from stop_export.pipeline import ExportOptions, export

    said = []
    result = export(str(run / "checkpoints" / "last"), ExportOptions(text_encoder=False, check_clips=2), said.append)
    assert result.onnx == run / "export" / "model-last.onnx" and result.check.ok and result.engines == []
    assert result.files == [result.onnx]  # no text encoder asked for; --max-steps stopped before statistics
    assert all(f.is_file() for f in result.files) and not list((run / "checkpoints").rglob("*.onnx"))
    assert any(line.startswith("check: PyTorch vs ONNX Runtime") for line in said)
    from stop_export.pipeline import default_output
    from stop_train.rundir import RunDir

    chosen = RunDir(run).chosen()  # --checkpoint of another than the chosen one never replaces model.onnx
    other = "best" if chosen == "last" else "last"
    assert default_output(run, chosen) == default_output(run) == run / "export" / "model.onnx"
    assert default_output(run, other) == run / "export" / f"model-{other}.onnx"

    # `--backend torch` on the run needs the training extra and ONNX Runtime's runtime, never onnx or onnxscript
    import subprocess
    import sys

    video = next((data / "UCF-101").rglob("*.avi"))
    code = (
        "import sys\n"
        "sys.modules.update(onnx=None, onnxscript=None)  # as if not installed: import fails, find_spec gives None\n"
        "from stop_export.cli import recognize_main\n"
        f"code = recognize_main([{str(run)!r}, '--backend', 'torch', '--source', {str(video)!r}, '--protocol', 'eval'])\n"
        "assert sys.modules['onnx'] is None and sys.modules['onnxscript'] is None\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "video (eval): " in result.stdout, result.stdout[-2000:]


def test_torch_backend_in_bf16_stays_close_to_fp32(exported):
    from stop_export.runtime.backends import open_backend
    from stop_export.runtime.torch_backend import TorchBackend

    folder = exported["dynamic"].parent
    fp32 = TorchBackend(folder / "model", labels=str(folder / "labels.txt"))
    bf16 = open_backend(folder / "model", "torch-bf16", labels=str(folder / "labels.txt"))
    assert bf16.name.endswith("bf16")
    clips = check_clips(4, 64, 4, seed=9)
    a, b = fp32.run(clips), bf16.run(clips)
    assert b["logits"].dtype == np.float32 and b["video_embedding"].dtype == np.float32
    cosine = (a["video_embedding"] * b["video_embedding"]).sum(-1)
    assert cosine.min() > 0.99  # bf16 rounding only

    # re-labelling and teaching on a run with --backend torch use the model's own text tower, equal to the
    # exported text encoder (a newcomer's `stop-teach add RUN --backend torch` said "no text encoder beside it")
    from stop_export.runtime.recognizer import Recognizer

    labels = ["opening a valve", "MovingLeft"]
    own = Recognizer(fp32).embed_labels(labels)
    onnx_text = Recognizer(open_backend(exported["dynamic"], "cpu")).embed_labels(labels)
    assert own.shape == onnx_text.shape and np.abs(own - onnx_text).max() < 1e-4


def test_the_fingerprint_names_the_weights_not_the_labels(exported):
    import torch

    from stop_export.runtime.recognizer import Recognizer
    from stop_train.model import load_model
    from stop_train.model.factory import model_fingerprint

    model = load_model(exported["dynamic"].parent / "model")
    rec = Recognizer.open(exported["dynamic"], "cpu")
    assert rec.meta.fingerprint == model_fingerprint(model) and len(rec.meta.fingerprint) == 16
    assert Recognizer.open(exported["official"], "cpu").meta.fingerprint != rec.meta.fingerprint
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert model_fingerprint(model) != rec.meta.fingerprint
