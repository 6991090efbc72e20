"""TensorRT engines from an exported ONNX file (`stop-export --engine` / `--fp16`).

Detects the TensorRT at hand and takes its path:
- TensorRT 10 (Jetson, JetPack 6): the FP16 builder flag, with LayerNorm, softmax and reductions held in
  FP32 by layer precision constraints. Before 10.7 the ONNX parser always inlines model-local functions,
  so with the plugin the graph is handed over without the function: the node can only become the plugin.
- TensorRT 11 and TensorRT for RTX (strongly typed, no FP16 flag): the graph is converted to FP16 first
  (`fp16.convert_to_fp16`, the same ops kept in FP32).
- TensorRT for RTX has no plugin layers (its network API has no call to add one, and its parser aborts
  after creating our plugin): its engines always use the node's function body, and say so.
The engine is written with a JSON sidecar (DECISIONS §3): the model's metadata plus the TensorRT version,
compute capability, precision, batch profile, and which implementation the node got.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import helper

from stop_train.atomic import atomic_write_bytes, atomic_write_json
from stop_train.op_spec import OP_DOMAIN, OP_TYPE
from stop_train.schema import METADATA_KEY, Metadata

from ..runtime.platform import (
    PLUGIN_VERSION,
    SIDECAR_SUFFIX,
    EngineError,
    TensorRT,
    compute_capability,
    detect_tensorrt,
)
from .fp16 import KEEP_FP32, convert_to_fp16

log = logging.getLogger(__name__)


def prepare_graph(model: onnx.ModelProto, trt: TensorRT, use_plugin: bool) -> tuple[onnx.ModelProto, str]:
    """The graph handed to this TensorRT's parser, and which implementation the node will get."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    nodes = [n for n in model.graph.node if n.domain == OP_DOMAIN and n.op_type == OP_TYPE]
    if not nodes:
        return model, "none (official mode: standard ops only)"
    for node in nodes:
        kept = [a for a in node.attribute if a.name != "plugin_namespace"]
        del node.attribute[:]
        node.attribute.extend(kept)
        if use_plugin:
            node.attribute.append(helper.make_attribute("plugin_namespace", OP_DOMAIN))
    if not use_plugin:
        return model, "function body (standard ops)"
    if trt.inlines_functions:  # the only way to reach the plugin: no function to inline
        kept_functions = [f for f in model.functions if not (f.domain == OP_DOMAIN and f.name == OP_TYPE)]
        del model.functions[:]
        model.functions.extend(kept_functions)
    return model, f"plugin {OP_TYPE} v{PLUGIN_VERSION}"


@dataclass
class BuildOptions:
    fp16: bool = False
    plugin: str | None = None  # path of libstop_tpi_plugin.so; None = function body
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8
    workspace_mb: int = 0  # 0 = TensorRT's default
    timing_cache: str | None = None  # file read before and written after the build


def build_engine(
    onnx_path: str | Path, engine_path: str | Path, options: BuildOptions | None = None, trt: TensorRT | None = None
) -> dict:
    """Build and write the engine and its sidecar; returns the sidecar's `tensorrt` section. Raises EngineError
    naming what failed (the batch profile, the plugin library, the parser, the build)."""
    options = options or BuildOptions()
    trt = trt or detect_tensorrt()
    t = trt.module
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    model = onnx.load(str(onnx_path))
    meta = Metadata.from_json({p.key: p.value for p in model.metadata_props}.get(METADATA_KEY), str(onnx_path))
    if not options.min_batch <= options.opt_batch <= options.max_batch:
        raise EngineError(
            f"batch profile needs min <= opt <= max, got {options.min_batch}/{options.opt_batch}/{options.max_batch}"
        )
    logger = t.Logger(t.Logger.WARNING)
    use_plugin = _load_plugin(trt, options.plugin, logger)
    prepared, implementation = prepare_graph(model, trt, use_plugin)
    precision = "fp16" if options.fp16 else "fp32"
    if options.fp16 and trt.strongly_typed:
        prepared = convert_to_fp16(prepared)
    builder = t.Builder(logger)
    network = _parse(trt, builder, logger, prepared, onnx_path.name, use_plugin)
    config, cache = _config(trt, builder, network, options)
    start = time.time()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{trt.describe()} failed to build the engine (see the TensorRT messages above)")
    if cache is not None and options.timing_cache:
        Path(options.timing_cache).parent.mkdir(parents=True, exist_ok=True)
        Path(options.timing_cache).write_bytes(memoryview(config.get_timing_cache().serialize()))
    atomic_write_bytes(engine_path, memoryview(serialized))
    section = {
        "flavour": trt.flavour,
        "version": ".".join(map(str, trt.version)),
        "precision": precision,
        "compute_capability": compute_capability(),
        "plugin_version": PLUGIN_VERSION if use_plugin else "",
        "implementation": implementation,
        "batch": [options.min_batch, options.opt_batch, options.max_batch],
        "onnx": onnx_path.name,
        "build_seconds": round(time.time() - start, 1),
    }
    meta.tensorrt = section
    atomic_write_json(engine_path.with_name(engine_path.name + SIDECAR_SUFFIX), json.loads(meta.to_json()))
    log.info(
        "%s: %s engine %s (%.1f MB), TemporalPromptInsert -> %s",
        trt.describe(),
        precision,
        engine_path,
        engine_path.stat().st_size / 1e6,
        implementation,
    )
    return section


def _load_plugin(trt: TensorRT, plugin: str | None, logger) -> bool:
    """Whether the build uses the plugin: a library was given and this TensorRT can add plugin layers (else a
    warning: the function body). Loads the library. Raises EngineError when it is missing or will not load."""
    if plugin is None:
        return False
    if not trt.supports_plugins:
        log.warning("%s cannot add plugin layers: using the TemporalPromptInsert function body", trt.describe())
        return False
    t = trt.module
    if not Path(plugin).is_file():
        raise EngineError(f"no plugin library at {plugin} (stop-export --build-plugin makes it)")
    t.init_libnvinfer_plugins(logger, "")
    if t.get_plugin_registry().load_library(str(plugin)) is None:
        raise EngineError(f"TensorRT could not load the plugin library {plugin}")
    return True


def _parse(trt: TensorRT, builder, logger, prepared, name: str, use_plugin: bool):
    """The network parsed from the prepared graph. Raises EngineError for a parser error, or when the plugin was
    asked for and no plugin layer came out."""
    t = trt.module
    network = builder.create_network(0)
    parser = t.OnnxParser(network, logger)
    if not parser.parse(prepared.SerializeToString()):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
        raise EngineError(f"{trt.describe()} cannot parse {name}: {errors}")
    layers = (network.get_layer(i) for i in range(network.num_layers))
    if use_plugin and not any(str(layer.type).endswith("PLUGIN_V3") for layer in layers):
        raise EngineError("the parser did not map TemporalPromptInsert to the plugin (no plugin layer in the network)")
    return network


def _config(trt: TensorRT, builder, network, options: BuildOptions):
    """(the builder config: precision flags, workspace, the batch profile; the timing cache loaded into it, or
    None)."""
    t = trt.module
    config = builder.create_builder_config()
    if options.fp16 and not trt.strongly_typed:
        config.set_flag(t.BuilderFlag.FP16)
        config.set_flag(t.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        _keep_fp32_layers(t, network)
    if options.workspace_mb:
        config.set_memory_pool_limit(t.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    cache = None
    if options.timing_cache and trt.flavour == "tensorrt_rtx":
        log.warning(
            "TensorRT for RTX keeps no timing cache (its timing-cache calls are no-ops): --timing-cache ignored"
        )
    elif options.timing_cache:
        cache = _load_timing_cache(config, options.timing_cache)
    profile = builder.create_optimization_profile()
    inp = network.get_input(0)
    per_video = tuple(inp.shape)[1:]
    profile.set_shape(
        inp.name, (options.min_batch, *per_video), (options.opt_batch, *per_video), (options.max_batch, *per_video)
    )
    config.add_optimization_profile(profile)
    return config, cache


def _keep_fp32_layers(t, network) -> None:
    """TensorRT 10 with the FP16 flag: LayerNorm, softmax and reductions stay FP32."""
    kinds = {t.LayerType.NORMALIZATION, t.LayerType.SOFTMAX, t.LayerType.REDUCE}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in kinds or layer.type == t.LayerType.UNARY and "exp" in layer.name.lower():
            layer.precision = t.float32
            for k in range(layer.num_outputs):
                layer.set_output_type(k, t.float32)


def _load_timing_cache(config, path: str):
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    try:
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, ignore_mismatch=False)
        return cache
    except (AttributeError, TypeError):
        log.info("this TensorRT has no timing cache API: --timing-cache ignored")
        return None


__all__ = ["BuildOptions", "EngineError", "KEEP_FP32", "TensorRT", "build_engine", "detect_tensorrt", "prepare_graph"]
