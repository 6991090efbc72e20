"""`python -m stop_train.demo`: build a model, run it on a generated clip and print what it computed.

Until training lands the weights are random, so the class scores are not meaningful; the run shows the
whole forward path (spatial mask, inter-frame prompt counts, embeddings, label scoring) end to end.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

DEMO_LABELS = ["MovingLeft", "MovingRight", "MovingUp", "MovingDown", "StandingStill"]


def moving_square_clip(frames: int, size: int, step: int = 0, seed: int = 0) -> np.ndarray:
    """uint8 RGB (T, size, size, 3): a bright square crossing a fixed random texture, `step` px per frame."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    side = max(2, size // 6)
    clip = np.repeat(background[None], frames, axis=0)
    for t in range(frames):  # I/O-style generation, not a model hot path
        x0 = (size // 4 + t * step) % (size - side)
        y0 = size // 2 - side // 2
        clip[t, y0:y0 + side, x0:x0 + side] = (255, 220, 0)
    return clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stop_train.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="model preset (default: tiny)")
    parser.add_argument("--mode", choices=("dynamic", "official"), default=None, help="override the preset's mode")
    args = parser.parse_args(argv)

    import torch

    from .config import load_config
    from .model import create_model
    from .video import PreprocessCfg, normalize_frames

    torch.manual_seed(0)
    overrides = {"mode": args.mode} if args.mode else {}
    if args.mode == "official":
        overrides.update(mask_layout="lattice", text_postfix_prompts=load_config(args.preset).text_prefix_prompts)
    model = create_model(args.preset, **overrides).eval()
    cfg = model.cfg
    size = cfg.vision.image_size
    clip = moving_square_clip(cfg.frames, size, step=max(1, size // (2 * cfg.frames)))
    video = torch.from_numpy(normalize_frames(clip, PreprocessCfg.for_model(cfg)))[None]

    start = time.perf_counter()
    with torch.inference_mode():
        emb, aux = model.encode_video(video, return_aux=True)
        probs = model.get_logits(emb, model.encode_labels(DEMO_LABELS)).softmax(dim=-1)[0]
    elapsed = time.perf_counter() - start

    print(f"model   : preset {args.preset}, mode {cfg.mode}, T={cfg.frames}, {size}px, ViT width {cfg.vision.width} "
          f"x {cfg.vision.layers} layers (random weights: scores are not meaningful until training lands)")
    print(f"clip    : generated moving square, {cfg.frames} frames of {size}x{size}")
    print(f"mask    : {int(aux['spatial_mask'][0, 0].sum())} of {cfg.num_patches} cells kept per frame")
    if cfg.mode == "dynamic":
        print(f"gaps    : variation {[round(v, 4) for v in aux['gap_variation'][0].tolist()]}, "
              f"prompts inserted {aux['gap_prompt_count'][0].tolist()} (at most {cfg.prompts_per_gap} per gap)")
    else:
        print(f"frames  : weights {[round(v, 3) for v in aux['frame_weight'][0].tolist()]}")
    print(f"video   : embedding {tuple(emb.shape)}, |e| = {emb.norm().item():.3f}")
    for label, p in sorted(zip(DEMO_LABELS, probs.tolist()), key=lambda x: -x[1]):
        print(f"  {p:6.3f}  {label}")
    print(f"time    : {elapsed * 1000:.0f} ms on CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
