"""The ONNX form of `TemporalPromptInsert` (DECISIONS §3.1): a `stop` domain node whose model-local
function body uses standard ops only, so stock ONNX Runtime runs the file; TensorRT can instead map the
node to the plugin of the same name.

The body mirrors `stop_train.model.insert_op.temporal_prompt_insert_reference` step by step, in FP32
inside whatever the I/O dtype. It is also the `custom_translation_table` entry that makes the PyTorch
exporter emit the node.
"""

from typing import TypeVar

import onnx
import onnxscript
from onnx.defs import OpSchema
from onnxscript import BOOL, FLOAT16, INT32
from onnxscript import FLOAT as FLOAT32
from onnxscript import opset18 as op

from stop_train.op_spec import OP_DOMAIN, OP_TYPE, OP_VERSION

OPSET = onnxscript.values.Opset(OP_DOMAIN, OP_VERSION)
FLOAT, TO_INT32, TO_BOOL = 1, 6, 9  # onnx.TensorProto element types, for Cast
TFloat = TypeVar("TFloat", bound=FLOAT32 | FLOAT16)  # the I/O precision of the tokens


@onnxscript.script(OPSET, default_opset=op)
def TemporalPromptInsert(
    frame_tokens: TFloat, gap_prompts: TFloat, prompts_per_gap: int, num_patches: int, variation_tol: float
) -> tuple[TFloat, BOOL, FLOAT32, INT32]:
    """frame_tokens (B, T, F, D), gap_prompts (B, T-1, P, D) -> tokens (B, T*F + (T-1)*P, D),
    key_mask (B, S) bool, gap_variation (B, T-1) float32, gap_prompt_count (B, T-1) int32."""
    first = op.Constant(value_ints=[0])
    second = op.Constant(value_ints=[1])
    last = op.Constant(value_ints=[-1])
    end = op.Constant(value_ints=[9223372036854775807])
    axis1 = op.Constant(value_ints=[1])
    axis2 = op.Constant(value_ints=[2])
    p = op.Reshape(op.Constant(value_int=prompts_per_gap), last)  # (1,) int64
    n = op.Reshape(op.Constant(value_int=num_patches), last)
    tol = op.Constant(value_float=variation_tol)
    eps = op.Constant(value_float=1e-8)

    # 1. variation between neighbouring frames: mean over patches of 1 - cos (FP32)
    patches = op.Cast(op.Slice(frame_tokens, op.Neg(n), end, axis2), to=FLOAT)  # (B, T, N, D)
    a = op.Slice(patches, first, last, axis1)
    b = op.Slice(patches, second, end, axis1)
    a = a / op.Max(op.Sqrt(op.ReduceSum(a * a, last, keepdims=1)), eps)
    b = b / op.Max(op.Sqrt(op.ReduceSum(b * b, last, keepdims=1)), eps)
    cos = op.ReduceSum(a * b, last, keepdims=0)  # (B, T-1, N)
    gap_variation = op.Sub(op.Constant(value_float=1.0), op.ReduceMean(cos, last, keepdims=0))  # (B, T-1)

    # 2. per-video min-max normalisation, guarded for videos whose gaps all change alike
    vmin = op.ReduceMin(gap_variation, last, keepdims=1)
    vrange = op.ReduceMax(gap_variation, last, keepdims=1) - vmin
    spread = op.Greater(vrange, tol)
    scaled = (gap_variation - vmin) / op.Where(spread, vrange, op.Constant(value_float=1.0))
    flat = op.Cast(op.Greater(gap_variation, tol), to=FLOAT)
    weight = op.Where(spread, scaled, flat)

    # 3. counts n_i = ceil(P * W_i) in [0, P]
    pf = op.Cast(p, to=FLOAT)
    counts = op.Clip(op.Ceil(weight * pf), op.Constant(value_float=0.0), op.Reshape(pf, op.Constant(value_ints=[])))
    gap_prompt_count = op.Cast(counts, to=TO_INT32)
    slots = op.Cast(
        op.Range(op.Constant(value_int=0), op.Reshape(p, op.Constant(value_ints=[])), op.Constant(value_int=1)),
        to=FLOAT,
    )  # (P,)
    active = op.Cast(op.Less(slots, op.Unsqueeze(counts, last)), to=FLOAT)  # (B, T-1, P)

    # 5. insertion: frame 0, gap 0, frame 1, ..., frame T-1 (inactive slots zeroed), and the key mask
    gap_shape = op.Shape(gap_prompts)  # (B, T-1, P, D)
    batch = op.Shape(gap_prompts, start=0, end=1)
    pad = op.Expand(
        op.CastLike(op.Constant(value_float=0.0), gap_prompts),
        op.Concat(batch, second, op.Shape(gap_prompts, start=2), axis=0),
    )
    gaps = op.Concat(gap_prompts * op.CastLike(op.Unsqueeze(active, last), gap_prompts), pad, axis=1)  # (B, T, P, D)
    chunks = op.Concat(frame_tokens, gaps, axis=2)  # (B, T, F+P, D)
    rows = op.Reshape(chunks, op.Concat(op.Constant(value_ints=[0, -1]), op.Shape(frame_tokens, start=3), axis=0))
    length = op.Shape(rows, start=1, end=2) - p  # T*(F+P) - P
    tokens = op.Slice(rows, first, length, axis1)

    ones = op.Expand(op.Constant(value_float=1.0), op.Shape(frame_tokens, start=0, end=3))  # (B, T, F)
    mask_pad = op.Expand(
        op.Constant(value_float=0.0),
        op.Concat(batch, second, op.Slice(gap_shape, axis2, op.Constant(value_ints=[3])), axis=0),
    )
    mask = op.Concat(ones, op.Concat(active, mask_pad, axis=1), axis=2)  # (B, T, F+P)
    mask = op.Reshape(mask, op.Constant(value_ints=[0, -1]))
    key_mask = op.Cast(op.Slice(mask, first, length, axis1), to=TO_BOOL)
    return tokens, key_mask, gap_variation, gap_prompt_count


def _register_schema() -> None:
    """Declare the node to onnx (inputs, outputs, attributes), so the exporter can emit it as a plain node;
    its body travels as the model-local function instead (`attach_function`)."""
    if onnx.defs.has(OP_TYPE, OP_VERSION, OP_DOMAIN):
        return
    param, attr = OpSchema.FormalParameter, OpSchema.Attribute
    onnx.defs.register_schema(
        OpSchema(
            OP_TYPE,
            OP_DOMAIN,
            OP_VERSION,
            doc="STOP temporal prompt insertion (DECISIONS §3.1)",
            inputs=[param("frame_tokens", "T"), param("gap_prompts", "T")],
            outputs=[
                param("tokens", "T"),
                param("key_mask", "tensor(bool)"),
                param("gap_variation", "tensor(float)"),
                param("gap_prompt_count", "tensor(int32)"),
            ],
            type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "token precision")],
            attributes=[
                attr("prompts_per_gap", OpSchema.AttrType.INT, "P"),
                attr("num_patches", OpSchema.AttrType.INT, "N"),
                attr("variation_tol", OpSchema.AttrType.FLOAT, "absolute tolerance on the variation"),
            ],
        )
    )


def _translate(frame_tokens, gap_prompts, prompts_per_gap: int, num_patches: int, variation_tol: float):
    return onnxscript.values.Opset(OP_DOMAIN, OP_VERSION).TemporalPromptInsert(
        frame_tokens, gap_prompts, prompts_per_gap=prompts_per_gap, num_patches=num_patches, variation_tol=variation_tol
    )


def translation_table() -> dict:
    """`torch.onnx.export(custom_translation_table=...)`: the custom op becomes one `stop` node.

    The node is emitted without its function: the exporter's opset conversion inlines every function, so
    the body is attached afterwards by `attach_function`.
    """
    import torch

    import stop_train.model.insert_op  # noqa: F401  registers torch.ops.stop

    _register_schema()
    return {torch.ops.stop.temporal_prompt_insert.default: _translate}


def attach_function(model: onnx.ModelProto) -> None:
    """Add the model-local function (standard-op body) for the `stop` nodes of `model`."""
    if not any(n.domain == OP_DOMAIN and n.op_type == OP_TYPE for n in model.graph.node):
        return
    if not any(f.domain == OP_DOMAIN and f.name == OP_TYPE for f in model.functions):
        model.functions.append(TemporalPromptInsert.to_function_proto())
