"""Model configuration: dataclasses whose fields are the keys of `models/presets/*.json`.

Torch-free on purpose: the runtime and the app read configs from ONNX metadata without PyTorch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

MODES = ("dynamic", "official")
PROMPT_GENERATORS = ("transformer", "linear")
MASK_LAYOUTS = ("patch", "lattice")
VIDEO_FEATURES = (
    "global_prompt0",  # first global prompt token (published default)
    "average_global_prompt",  # mean of the global prompt tokens
    "average_frame_cls_token",  # mean of the per-frame CLS tokens
    "average_global_prompt_and_frame_cls_token",  # mean of both groups
)


@dataclass
class VisionCfg:
    image_size: int = 224  # input side in pixels (square)
    patch_size: int = 32  # ViT patch side in pixels
    width: int = 768  # token width D
    layers: int = 12  # transformer blocks
    head_width: int = 64  # heads = width // head_width (open_clip convention)
    mlp_ratio: float = 4.0  # MLP hidden = width * mlp_ratio

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def heads(self) -> int:
        return self.width // self.head_width


@dataclass
class TextCfg:
    context_length: int = 77  # positional-embedding rows of the CLIP text tower
    vocab_size: int = 49408  # BPE vocabulary
    width: int = 512  # token width
    heads: int = 8  # attention heads
    layers: int = 12  # transformer blocks
    mlp_ratio: float = 4.0  # MLP hidden = width * mlp_ratio
    max_tokens: int = 32  # tokens per label prompt incl. start/end (published max_words)


@dataclass
class ModelConfig:
    mode: str = "dynamic"  # 'dynamic' (paper: prompts between frames) or 'official' (published code)
    frames: int = 8  # T, frames per clip; baked into the prompt generator
    clip_model: str = "ViT-B-32"  # open_clip model name used to resolve pretrained tags
    embed_dim: int = 512  # joint video/text embedding width E
    quick_gelu: bool = True  # QuickGELU activations (OpenAI weights)
    vision: VisionCfg = field(default_factory=VisionCfg)
    text: TextCfg = field(default_factory=TextCfg)
    freeze_backbone: bool = True  # freeze every CLIP weight (published setting)

    global_prompts: int = 4  # G, global visual prompts (input layer only)
    local_prompts: int = 4  # L, local prompts inside every frame group
    text_prefix_prompts: int = 4  # deep text prompts after the start token
    text_postfix_prompts: int = 4  # deep text prompts after the last token (dead under the causal mask)
    prompt_layers: int = 12  # depth of the deep prompts, independent of the visual depth
    prompt_generator: str = "transformer"  # DGL shared latent space: 'transformer' or 'linear'

    spatial_topk: int = 6  # cells the spatial mask keeps per frame (published `eta`)
    mask_layout: str = "patch"  # 'patch' (real ViT patches) or 'lattice' (published pixel lattice, bug B1)
    spatial_scale: float = 0.05  # spatial prompt scale (doubled on masked cells)
    spatial_dropout: float = 0.5  # dropout inside the spatial prompter
    temporal_scale: float = 0.05  # scale of the inter-frame prompts

    prompts_per_gap: int = 4  # P, most inter-frame prompts one gap can receive (dynamic)
    variation_tol: float = 1e-4  # absolute tolerance on the frame variation (dynamic)

    adapter_dim: int = 32  # hidden width of the parallel adapters ('LoRA' in the published code); 0 = off
    adapter_scale: float = 0.1  # adapter output scale
    video_feature: str = "global_prompt0"  # which tokens become the video embedding
    # logit scale of random CLIP weights (pretrained weights bring their own, 100 for CLIP). 100 also for random
    # weights by default; a small model trained from scratch learns faster with open_clip's 1/0.07.
    init_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if isinstance(self.vision, dict):
            self.vision = _from_dict(VisionCfg, self.vision, "vision")
        if isinstance(self.text, dict):
            self.text = _from_dict(TextCfg, self.text, "text")
        self.validate()

    def validate(self) -> None:
        """Raise ValueError on inconsistent settings."""
        _choice("mode", self.mode, MODES)
        _choice("prompt_generator", self.prompt_generator, PROMPT_GENERATORS)
        _choice("mask_layout", self.mask_layout, MASK_LAYOUTS)
        _choice("video_feature", self.video_feature, VIDEO_FEATURES)
        v = self.vision
        if v.image_size % v.patch_size:
            raise ConfigError(f"vision.image_size {v.image_size} is not a multiple of patch_size {v.patch_size}")
        if v.width % v.head_width:
            raise ConfigError(f"vision.width {v.width} is not a multiple of head_width {v.head_width}")
        if self.frames < 2:
            raise ConfigError(f"frames must be >= 2, got {self.frames}")
        if not 0 < self.spatial_topk < v.grid**2:
            raise ConfigError(f"spatial_topk must lie in [1, {v.grid**2 - 1}] for a {v.grid}x{v.grid} grid")
        if self.init_logit_scale <= 0:
            raise ConfigError(f"init_logit_scale must be > 0, got {self.init_logit_scale}")
        if self.prompt_layers < 1:
            raise ConfigError("prompt_layers must be >= 1")
        if self.text.max_tokens > self.text.context_length:
            raise ConfigError("text.max_tokens exceeds text.context_length")
        if self.mode == "dynamic" and self.prompts_per_gap < 0:
            raise ConfigError("prompts_per_gap must be >= 0")
        if self.mode == "dynamic" and self.mask_layout != "patch":
            raise ConfigError(
                "dynamic mode pools real ViT patches: mask_layout must be 'patch' (lattice is the published bug B1)"
            )
        if self.mode == "dynamic" and self.text_postfix_prompts:
            raise ConfigError("dynamic mode uses prefix text prompts only: set text_postfix_prompts=0")
        if self.prompt_generator == "linear" and (
            self.text_prefix_prompts != self.local_prompts or self.text_postfix_prompts not in (0, self.local_prompts)
        ):
            raise ConfigError(
                "the linear prompt generator projects the L local prompts: it needs text_prefix_prompts == "
                "local_prompts and text_postfix_prompts in (0, local_prompts)"
            )

    @property
    def num_patches(self) -> int:
        return self.vision.grid**2

    @property
    def frame_tokens(self) -> int:
        """F = 1 + L + N tokens per frame group."""
        return 1 + self.local_prompts + self.num_patches

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model config")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")


def _from_dict(cls, data: dict[str, Any], what: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}")
    prefix = "" if what == "model config" else what + "."
    data = {k: _typed(prefix + k, fields[k].type, v) for k, v in data.items()}
    return cls(**data)


_TYPES = {"int": (int,), "float": (float, int), "bool": (bool,), "str": (str,)}


def _typed(name: str, kind: str, value: Any) -> Any:
    """`value` checked against the field's type ('int', 'float', 'bool', 'str'; sections pass through);
    an int for a float field becomes a float. Raises ValueError naming the field."""
    allowed = _TYPES.get(str(kind))
    if allowed is None:
        return value
    if isinstance(value, bool) and kind != "bool" or not isinstance(value, allowed):
        raise ConfigError(f"{name}={value!r} is not {'an' if kind == 'int' else 'a'} {kind}")
    return float(value) if kind == "float" else value


def flatten_overrides(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """`(key, value)` overrides -> one value per field, by dotted name.

    A section given as a dict (`vision={'image_size': 288}`) becomes its dotted fields (`vision.image_size`).
    The same field given twice with different values (`frames=12` and `frames=16`, or `vision.image_size`
    against `vision={...}`) raises ValueError naming both; given twice with one value, it counts once.
    """
    flat: dict[str, Any] = {}
    given: dict[str, str] = {}  # field -> how it was given, for the error

    def put(key: str, value: Any, origin: str) -> None:
        if isinstance(value, dict):
            for sub, v in value.items():
                put(f"{key}.{sub}", v, origin)
            return
        if key in flat and flat[key] != value:
            raise ConfigError(
                f"model config field {key} is given twice with different values: {given[key]} and {origin}"
            )
        flat[key], given[key] = value, origin

    for key, value in pairs:
        put(key, value, f"{key}={json.dumps(value)}")
    return flat


def apply_overrides(cfg: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """Return a copy of `cfg` with `overrides` applied.

    Keys are field names; nested fields are given as `vision.image_size` or as a dict
    (`vision={'image_size': 288}`). Unknown keys raise ValueError listing the valid ones, and so does one
    field given both ways with different values (`flatten_overrides`).
    """
    data = cfg.to_dict()
    for key, value in flatten_overrides(overrides.items()).items():
        parts = key.split(".")
        target = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(target.get(part), dict):
                raise ConfigError(f"unknown override {key!r}: {'.'.join(parts[: i + 1])} is not a section")
            target = target[part]
        _check_keys(target, {parts[-1]: value}, ".".join(parts[:-1]) or "model config")
        if isinstance(target[parts[-1]], dict):
            raise ConfigError(f"override {key!r} names a section: give its fields ({key}.FIELD=VALUE)")
        target[parts[-1]] = value
    return ModelConfig.from_dict(data)


def _check_keys(section: dict[str, Any], new: dict[str, Any], what: str) -> None:
    unknown = sorted(set(new) - set(section))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(section))}")


def presets_dir() -> Path:
    """The folder of preset JSON files (inside the installed package, or the source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "models" / "presets", here.parent / "models" / "presets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no presets folder at {here / 'models' / 'presets'} or {here.parent / 'models' / 'presets'}"
    )


def list_presets() -> list[str]:
    """Names of the shipped presets (file stems), sorted."""
    return sorted(p.stem for p in presets_dir().glob("*.json"))


def load_preset(preset_or_path: str | Path) -> tuple[ModelConfig, str]:
    """A preset name (see `list_presets()`) or a JSON file -> (its ModelConfig, its default CLIP weights).

    The file holds ModelConfig fields, plus optionally `pretrained` (an open_clip tag, a file, or 'none':
    what a new run starts from unless told otherwise; 'none' when absent). A run's or a model folder's
    `config.json` works too (its `model` section is read). Raises ValueError for an unknown preset or key.
    """
    path = Path(preset_or_path).expanduser()
    if not (path.suffix == ".json" and path.is_file()):
        names = list_presets()
        if str(preset_or_path) not in names:
            hint = f"; no file {path}" if path.suffix == ".json" else ""
            raise ConfigError(f"unknown preset {str(preset_or_path)!r}{hint}; presets: {', '.join(names)}")
        path = presets_dir() / f"{preset_or_path}.json"
    with open(path, encoding="utf-8-sig") as f:
        data = json.load(f)
    if isinstance(data.get("model"), dict) and "train" in data:  # a run's config.json
        data = data["model"]
    data = dict(data)
    pretrained = str(data.pop("pretrained", "none"))
    try:
        return ModelConfig.from_dict(data), pretrained
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None


def load_config(preset_or_path: str | Path) -> ModelConfig:
    """A preset name (see `list_presets()`) or a path to a JSON file holding ModelConfig fields."""
    return load_preset(preset_or_path)[0]
