"""`python -m stop_train.demo`: build a model with random weights, run it on a generated clip, print what it computed.

The class scores mean nothing (the weights are random); the run shows the whole forward path (spatial mask,
inter-frame prompt counts, embeddings, label scoring) end to end. `stop-train` trains a model.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def demo_clip(frames: int):
    """A generated synthetic-motion scene (MovingLeft), uint8 RGB (T, H, W, 3) at the generator's size."""
    from .data.synthetic import SyntheticSpec, render_scene

    return render_scene("MovingLeft", SyntheticSpec(frames=frames), np.random.default_rng(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stop_train.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="model preset (default: tiny)")
    parser.add_argument("--mode", choices=("dynamic", "official"), default=None, help="override the preset's mode")
    args = parser.parse_args(argv)

    import torch

    from .config import load_config
    from .data.synthetic import CLASSES
    from .model import create_model
    from .video import PreprocessCfg, normalize_frames, prepare_clip

    torch.manual_seed(0)
    overrides = {"mode": args.mode} if args.mode else {}
    if args.mode == "official":
        overrides.update(mask_layout="lattice", text_postfix_prompts=load_config(args.preset).text_prefix_prompts)
    model = create_model(args.preset, **overrides).eval()
    cfg = model.cfg
    size = cfg.vision.image_size
    pre = PreprocessCfg.for_model(cfg)
    video = torch.from_numpy(normalize_frames(prepare_clip(demo_clip(cfg.frames), pre), pre))[None]

    start = time.perf_counter()
    with torch.inference_mode():
        emb, aux = model.encode_video(video, return_aux=True)
        probs = model.get_logits(emb, model.encode_labels(CLASSES)).softmax(dim=-1)[0]
    elapsed = time.perf_counter() - start

    print(
        f"model   : preset {args.preset}, mode {cfg.mode}, T={cfg.frames}, {size}px, ViT width {cfg.vision.width} "
        f"x {cfg.vision.layers} layers (random weights: the scores mean nothing; `stop-train` trains one)"
    )
    print(
        f"clip    : generated synthetic-motion scene (MovingLeft), {cfg.frames} frames, resized and cropped to {size}x{size}"
    )
    print(f"mask    : {int(aux['spatial_mask'][0, 0].sum())} of {cfg.num_patches} cells kept per frame")
    if cfg.mode == "dynamic":
        print(
            f"gaps    : variation {[round(v, 4) for v in aux['gap_variation'][0].tolist()]}, "
            f"prompts inserted {aux['gap_prompt_count'][0].tolist()} (at most {cfg.prompts_per_gap} per gap)"
        )
    else:
        print(f"frames  : weights {[round(v, 3) for v in aux['frame_weight'][0].tolist()]}")
    print(f"video   : embedding {tuple(emb.shape)}, |e| = {emb.norm().item():.3f}")
    for label, p in sorted(zip(CLASSES, probs.tolist()), key=lambda x: -x[1]):
        print(f"  {p:6.3f}  {label}")
    print(f"time    : {elapsed * 1000:.0f} ms on CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
