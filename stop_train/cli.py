"""`stop-train` command line. Training itself is not built yet; `stop-train convert` is."""
from __future__ import annotations

import argparse
import logging
import sys

COMMANDS = ("convert",)


def _convert(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stop-train convert",
        description="Convert a checkpoint of the published STOP code into a model folder "
        "(model.safetensors + config.json, official mode).",
    )
    parser.add_argument("checkpoint", help="published checkpoint (.pth/.bin via torch.load(weights_only=True), or .safetensors)")
    parser.add_argument("output", help="folder to write")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames T the checkpoint was trained with (required for the linear prompt generator)")
    parser.add_argument("--text-prompts", type=int, default=8, help="published text_prompt_length (default 8)")
    args = parser.parse_args(argv)
    try:
        from .model.convert import convert_checkpoint
        from .model.factory import save_model

        model = convert_checkpoint(args.checkpoint, frames=args.frames, text_prompts=args.text_prompts)
        folder = save_model(model, args.output)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"stop-train convert: error: {err}", file=sys.stderr)
        return 1
    cfg = model.cfg
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"wrote {folder}: official mode, T={cfg.frames}, {cfg.prompt_generator} prompt generator, "
          f"ViT {cfg.vision.width}w/{cfg.vision.layers}L/{cfg.vision.patch_size}px @ {cfg.vision.image_size}, "
          f"{trainable:,} trainable parameters")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "convert":
        return _convert(argv[1:])
    print("stop-train: training is not built yet; available now: stop-train convert", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
