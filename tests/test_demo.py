"""`make demo`'s job: the tiny model runs end to end on a generated clip in both modes."""

from __future__ import annotations

import pytest

from stop_train.data.synthetic import CLASSES
from stop_train.demo import main


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_demo_prints_the_forward_path(mode, capsys):
    assert main(["--preset", "tiny", "--mode", mode]) == 0
    out = capsys.readouterr().out
    assert f"mode {mode}" in out and "embedding (1, 32)" in out
    assert ("prompts inserted" in out) == (mode == "dynamic")
    probs = [float(line.split()[0]) for line in out.splitlines() if line.strip().split()[-1] in CLASSES]
    assert len(probs) == len(CLASSES) and abs(sum(probs) - 1) < 0.01
