"""CPU the app uses while a video plays and while it is paused (headless, offscreen Qt).

    .venv/bin/python benchmarks/app_idle_cpu.py [--model MODEL.onnx] [--seconds 10] [--predict-every 0.5]

Runs the main window on a generated looping video, first playing, then paused, each for `--seconds`, and
prints the CPU time of the pipeline's worker threads (process time minus the GUI thread's) as % of one core.
With no model given, the tiny preset is exported to a temporary folder first (needs the export extra).
Target (the edge-box issue): paused < 1 % of one core; no thread wakes without work.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tiny_model import model_or_tiny  # noqa: E402

from stop_gui.window import MainWindow  # noqa: E402
from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video  # noqa: E402


def cpu_share(app: QApplication, seconds: float) -> tuple[float, float]:
    """(% of one core used by the pipeline's worker threads, % used by the GUI thread) while the window ran
    for `seconds`. The GUI thread processes events every 10 ms, as an idle Qt loop would wake for timers."""
    wall0, cpu0, gui0 = time.monotonic(), time.process_time(), time.thread_time()
    while time.monotonic() - wall0 < seconds:
        app.processEvents()
        time.sleep(0.01)
    wall, gui = time.monotonic() - wall0, time.thread_time() - gui0
    return 100 * (time.process_time() - cpu0 - gui) / wall, 100 * gui / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx (default: the tiny preset, exported here)")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--predict-every", type=float, default=0.5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stop-idle-"))
    model = model_or_tiny(args.model, tmp)
    video = tmp / "clip.avi"
    write_video(
        video,
        render_scene("MovingLeft", SyntheticSpec(frames=150, width=320, height=240), np.random.default_rng(0)),
        fps=30,
    )
    app = QApplication.instance() or QApplication([])
    window = MainWindow(predict_every_s=args.predict_every)
    window.show()
    window.loop_box.setChecked(True)
    assert window.open_model(model, args.backend), window.banner.text()
    window.open_source(str(video))
    cpu_share(app, 2.0)  # warm-up: model session, first clips
    playing, playing_gui = cpu_share(app, args.seconds)
    windows = window.inference.windows if window.inference else 0
    window.toggle_pause()
    cpu_share(app, 1.0)  # the pause settles (the frame in flight)
    before = window.inference.windows if window.inference else 0
    paused, paused_gui = cpu_share(app, args.seconds)
    after = window.inference.windows if window.inference else 0
    window.stop_pipeline()
    print(
        f"playing: workers {playing:6.2f} % of one core, GUI thread {playing_gui:5.2f} % "
        f"({windows} predictions in {args.seconds:.0f} s, 320x240 @ 30 fps, every {args.predict_every} s)"
    )
    print(
        f"paused : workers {paused:6.2f} % of one core, GUI thread {paused_gui:5.2f} % "
        f"({after - before} predictions while paused)"
    )
    print(f"workers paused / playing: {paused / max(playing, 1e-9):.3f}   target: paused < 1 % of one core")


if __name__ == "__main__":
    main()
