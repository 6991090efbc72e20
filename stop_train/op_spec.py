"""The `TemporalPromptInsert` op's identity, shared by the model, the ONNX exporter, the TensorRT builder and
the runtime without importing any of them (torch-free, onnx-free; DECISIONS §9)."""

OP_DOMAIN = "stop"  # ONNX domain of the node, and the plugin's namespace
OP_TYPE = "TemporalPromptInsert"  # ONNX op type, model-local function name and TensorRT plugin name
OP_VERSION = 1  # of the op's semantics (attributes prompts_per_gap, num_patches, variation_tol)
