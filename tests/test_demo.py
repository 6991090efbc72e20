"""`make demo`'s job: the tiny model runs end to end on a generated clip in both modes."""
from __future__ import annotations

import numpy as np
import pytest

from stop_train.demo import DEMO_LABELS, main, moving_square_clip


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_demo_prints_the_forward_path(mode, capsys):
    assert main(["--preset", "tiny", "--mode", mode]) == 0
    out = capsys.readouterr().out
    assert f"mode {mode}" in out and "embedding (1, 32)" in out
    assert ("prompts inserted" in out) == (mode == "dynamic")
    probs = [float(line.split()[0]) for line in out.splitlines() if line.strip().split()[-1] in DEMO_LABELS]
    assert len(probs) == len(DEMO_LABELS) and abs(sum(probs) - 1) < 0.01


def test_generated_clip_moves():
    clip = moving_square_clip(frames=4, size=32, step=3)
    assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8
    assert not np.array_equal(clip[0], clip[1]) and np.array_equal(clip[0], moving_square_clip(4, 32, 3)[0])
