"""`stop-export --check`: PyTorch and ONNX Runtime on the same generated clips, compared by DECISIONS §5."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stop_train.tolerances import GOLDEN_REL_ERR, TOP1_MARGIN_FACTOR, relative_error

FLOAT_OUTPUTS = ("logits", "video_embedding", "gap_variation", "frame_weight", "frame_embedding")
EXACT_OUTPUTS = ("spatial_mask", "gap_prompt_count")


@dataclass
class CheckReport:
    errors: dict[str, float] = field(default_factory=dict)  # relative error per float output
    mismatches: dict[str, int] = field(default_factory=dict)  # differing elements per mask/count output
    top1_checked: int = 0  # clips whose top-2 margin exceeds TOP1_MARGIN_FACTOR x the logits error
    top1_disagree: int = 0
    clips: int = 0
    scored: bool = True  # the graph has logits (a retrieval graph has none: no top-1 to compare)

    @property
    def ok(self) -> bool:
        return (
            all(e < GOLDEN_REL_ERR for e in self.errors.values())
            and not any(self.mismatches.values())
            and self.top1_disagree == 0
        )

    def lines(self) -> list[str]:
        out = [f"{name:18s} relative error {err:.2e} (limit {GOLDEN_REL_ERR:.0e})" for name, err in self.errors.items()]
        out += [f"{name:18s} {n} differing element(s)" for name, n in self.mismatches.items()]
        if self.scored:
            out.append(
                f"top-1 agreement   {self.top1_checked - self.top1_disagree}/{self.top1_checked} clips with a "
                f"top-2 margin > {TOP1_MARGIN_FACTOR:g}x the logits error ({self.clips} clips in all)"
            )
        out.append("PASS" if self.ok else "FAIL")
        return out


def check_clips(frames: int, size: int, count: int, seed: int = 0) -> np.ndarray:
    """uint8 (count, T, S, S, 3): half moving synthetic scenes, half noise (away from ties in the counts)."""
    from stop_train.data.synthetic import PAIRS, SyntheticSpec, render_scene
    from stop_train.video import PreprocessCfg, prepare_clip, segment_indices

    rng = np.random.default_rng(seed)
    spec = SyntheticSpec(frames=max(frames * 3, 12))
    clips = []
    for i in range(count):
        if i % 2 == 0:
            forward, backward = PAIRS[(i // 2) % len(PAIRS)]
            video = render_scene(forward, spec, rng)
            video = video[::-1] if (i // 2) % 2 else video
            clips.append(
                prepare_clip(np.ascontiguousarray(video[segment_indices(len(video), frames)]), PreprocessCfg(size=size))
            )
        else:
            clips.append(rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8))
    return np.stack(clips)


def compare(reference: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> CheckReport:
    """Compare backend outputs (by name) against the reference ones."""
    report = CheckReport(clips=len(reference["video_embedding"]), scored="logits" in reference)
    for name, ref in reference.items():
        if name not in actual:
            raise KeyError(f"output {name!r} missing from the compared backend")
        if name in FLOAT_OUTPUTS:
            report.errors[name] = relative_error(actual[name], ref)
        elif name in EXACT_OUTPUTS:
            report.mismatches[name] = int(np.sum(np.asarray(actual[name]) != np.asarray(ref)))
    if not report.scored:  # a retrieval model: embeddings only
        return report
    ref_logits = np.asarray(reference["logits"], dtype=np.float64)
    err = np.abs(np.asarray(actual["logits"], dtype=np.float64) - ref_logits).max()
    top2 = np.sort(ref_logits, axis=-1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > TOP1_MARGIN_FACTOR * err
    agree = ref_logits.argmax(-1) == np.asarray(actual["logits"]).argmax(-1)
    report.top1_checked = int(decisive.sum())
    report.top1_disagree = int((decisive & ~agree).sum())
    return report
