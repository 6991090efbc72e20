"""FP16 copy of an exported graph for strongly typed TensorRT (TensorRT 11, TensorRT for RTX: no FP16
builder flag): float tensors become float16, while the numerically sensitive ops (LayerNorm, softmax,
reductions, normalisation) run in FP32 between casts. The graph's inputs and outputs keep their types.

The `TemporalPromptInsert` node takes its FP16 inputs as they are: its function body and the plugin
compute in FP32 inside.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ops kept in FP32 (inputs cast up, outputs cast down)
KEEP_FP32 = {
    "LayerNormalization",
    "Softmax",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceL2",
    "ReduceSumSquare",
    "Pow",
    "Sqrt",
    "Exp",
    "Erf",
    "TopK",
    "CumSum",
}
# ops whose attribute `to` / value creates a float tensor
FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16


def _to_half(tensor: onnx.TensorProto) -> onnx.TensorProto:
    # clip to the float16 range: large fill values (attention masks) become -65504 rather than -inf
    limit = float(np.finfo(np.float16).max)
    array = np.clip(numpy_helper.to_array(tensor), -limit, limit).astype(np.float16)
    return numpy_helper.from_array(array, tensor.name)


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A new model: float32 initializers, constants and casts -> float16, FP32 islands around KEEP_FP32 ops,
    casts at the graph inputs/outputs so the interface is unchanged."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == FLOAT:
            graph.initializer[i].CopyFrom(_to_half(init))
    nodes: list[onnx.NodeProto] = []
    counter = 0

    def fresh(base: str) -> str:
        nonlocal counter
        counter += 1
        return f"{base}__fp16_{counter}"

    renamed: dict[str, str] = {}
    original: dict[str, str] = {}  # renamed value -> its name in the float32 graph (for the type lookup)
    for name in (v.name for v in graph.input if v.type.tensor_type.elem_type == FLOAT):
        half = fresh(name)  # graph inputs stay float32: cast them once to float16
        nodes.append(helper.make_node("Cast", [name], [half], to=HALF, name=fresh("cast_in")))
        renamed[name] = half
        original[half] = name
    for node in graph.node:
        node.input[:] = [renamed.get(x, x) for x in node.input]
        _constants_to_half(node, types)
        if node.op_type in KEEP_FP32:
            nodes.extend(_fp32_island(node, lambda x: types.get(original.get(x, x)), types, fresh))
        else:
            nodes.append(node)
    _cast_outputs(graph, nodes, fresh)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # stale float32 annotations
    return model


def _constants_to_half(node: onnx.NodeProto, types: dict[str, int]) -> None:
    """In place: a Cast to float32 casts to float16; a float32 Constant or ConstantOfShape value becomes float16."""
    if node.op_type == "Cast" and helper.get_attribute_value(_attr(node, "to")) == FLOAT:
        _attr(node, "to").i = HALF
    elif node.op_type == "Constant":
        for a in node.attribute:
            if a.name == "value" and a.t.data_type == FLOAT:
                a.t.CopyFrom(_to_half(a.t))
            elif a.name == "value_float":
                value = a.f
                node.ClearField("attribute")
                node.attribute.append(
                    helper.make_attribute("value", numpy_helper.from_array(np.array(value, dtype=np.float16)))
                )
                break
    elif node.op_type == "ConstantOfShape":
        value = next((a for a in node.attribute if a.name == "value"), None)
        if value is None and types.get(node.output[0]) == FLOAT:  # no value: float32 zeros
            node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.zeros(1, np.float16))))
        elif value is not None and value.t.data_type == FLOAT:
            value.t.CopyFrom(_to_half(value.t))


def _fp32_island(node: onnx.NodeProto, input_type, types: dict[str, int], fresh) -> list[onnx.NodeProto]:
    """`node` run in float32: casts up of its float inputs (`input_type(name)`: the value's float32-graph type),
    the node, casts down of its float outputs."""
    ups, ins = [], []
    for x in node.input:
        if x and input_type(x) == FLOAT:
            up = fresh(x)
            ups.append(helper.make_node("Cast", [x], [up], to=FLOAT, name=fresh("up")))
            x = up
        ins.append(x)
    node.input[:] = ins
    downs = []
    for k, out in enumerate(node.output):
        if types.get(out) == FLOAT:
            inner = fresh(out)
            node.output[k] = inner
            downs.append(helper.make_node("Cast", [inner], [out], to=HALF, name=fresh("down")))
    return [*ups, node, *downs]


def _cast_outputs(graph: onnx.GraphProto, nodes: list[onnx.NodeProto], fresh) -> None:
    """In place: every float32 graph output is computed under a new name and cast back to float32."""
    for name, value in {v.name: v for v in graph.output}.items():
        if value.type.tensor_type.elem_type == FLOAT:
            inner = fresh(name)
            for node in nodes:
                node.output[:] = [inner if o == name else o for o in node.output]
                node.input[:] = [inner if i == name else i for i in node.input]
            nodes.append(helper.make_node("Cast", [inner], [name], to=FLOAT, name=fresh("cast_out")))


def _attr(node: onnx.NodeProto, name: str) -> onnx.AttributeProto:
    return next(a for a in node.attribute if a.name == name)
