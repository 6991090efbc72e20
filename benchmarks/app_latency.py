"""End-to-end latency of the app's pipeline, headless (offscreen Qt), on a generated 30 fps video.

    .venv/bin/python benchmarks/app_latency.py [--model MODEL.onnx] [--seconds 120] [--predict-every 0.25]

End-to-end = from the capture of a window's newest frame to the repaint of that window's prediction in the
main window. Prints it beside the standalone model latency measured in the same run, memory and latency at
the start and the end of the run, then two overloaded runs (predictions asked for faster than the model
runs): as a camera or stream is handled, windows must be dropped rather than queued; as a file is handled
(every window kept, so the events equal stop-recognize's), playback must slow down instead.
Target (the GUI issue): median end-to-end <= model latency + 30 ms, with no growth over the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tiny_model import model_or_tiny  # noqa: E402

from stop_export.runtime.recognizer import Recognizer  # noqa: E402
from stop_gui.window import MainWindow  # noqa: E402
from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def model_latency(model: str, backend: str, runs: int = 30) -> float:
    rec = Recognizer.open(model, backend)
    clip = np.random.default_rng(0).integers(0, 256, (1, *rec.meta.input_shape), dtype=np.uint8)
    rec.predict(clip)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rec.predict(clip)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(
    app, model: str, backend: str, video: Path, seconds: float, every: float, every_window: bool | None = None
) -> dict:
    window = MainWindow(predict_every_s=every)
    window.show()
    window.loop_box.setChecked(True)
    assert window.open_model(model, backend), window.banner.text()
    rss0 = rss_mb()
    window.open_source(str(video), every_window=every_window)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        app.processEvents()
        time.sleep(0.002)
    rss1 = rss_mb()
    shown = list(window.latencies)
    due = window.inference.windows if window.inference else 0
    frames, waited = (window.hub.frames_in, window.hub.waited_s) if window.hub else (0, 0.0)
    window.close()
    e2e = [e for _, e in shown]
    third = max(1, len(e2e) // 3)
    return {
        "shown": len(shown),
        "inferred": due,
        "expected": seconds / every,
        "rss": (rss0, rss1),
        "frames": frames,
        "waited_s": waited,
        "e2e_median": statistics.median(e2e),
        "e2e_p90": sorted(e2e)[int(0.9 * (len(e2e) - 1))],
        "inference_median": statistics.median(i for i, _ in shown),
        "e2e_first": statistics.median(e2e[:third]),
        "e2e_last": statistics.median(e2e[-third:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported .onnx (default: the tiny preset, random weights, exported now)")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--predict-every", type=float, default=0.25)
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stop-app-latency-"))
    model = model_or_tiny(args.model, work)
    video = work / "scene.avi"
    write_video(
        video,
        render_scene("MovingLeft", SyntheticSpec(frames=300, width=320, height=240, fps=30), np.random.default_rng(0)),
        fps=30,
    )
    app = QApplication.instance() or QApplication([])
    before = model_latency(model, args.backend)
    normal = run(app, model, args.backend, video, args.seconds, args.predict_every)
    after = model_latency(model, args.backend)
    model_s = statistics.median([before, after])
    print(f"model {Path(model).name}, backend {args.backend}, 30 fps 320x240 video, {os.cpu_count()} CPUs")
    print(f"standalone model latency: {before * 1000:.1f} ms before, {after * 1000:.1f} ms after the run")
    for name, r, every, seconds in (("normal", normal, args.predict_every, args.seconds),):
        print(
            f"[{name}] predict every {every} s for {seconds:.0f} s: {r['shown']} windows shown of "
            f"{r['expected']:.0f} asked (each loop of the video first fills (T-1) intervals of history); "
            f"inference in the app {r['inference_median'] * 1000:.1f} ms (median)"
        )
        print(
            f"  end-to-end median {r['e2e_median'] * 1000:.1f} ms, p90 {r['e2e_p90'] * 1000:.1f} ms; "
            f"first third {r['e2e_first'] * 1000:.1f} ms, last third {r['e2e_last'] * 1000:.1f} ms"
        )
        print(f"  memory {r['rss'][0]:.0f} MB -> {r['rss'][1]:.0f} MB")
        target = model_s + 0.030
        verdict = "meets" if r["e2e_median"] <= target else "misses"
        print(f"  target median <= model + 30 ms = {target * 1000:.1f} ms: {verdict}")
    every = max(0.001, model_s / 4)
    over = run(app, model, args.backend, video, args.overload_seconds, every, every_window=False)
    print(
        f"[overloaded] predict every {every * 1000:.1f} ms (model {model_s * 1000:.1f} ms) for "
        f"{args.overload_seconds:.0f} s: {over['inferred']} windows inferred of {over['expected']:.0f} asked "
        f"({max(0.0, 1 - over['inferred'] / over['expected']) * 100:.0f} % dropped); end-to-end median "
        f"{over['e2e_median'] * 1000:.1f} ms, first third {over['e2e_first'] * 1000:.1f} ms, last third "
        f"{over['e2e_last'] * 1000:.1f} ms (no queue: it does not grow)"
    )
    kept = run(app, model, args.backend, video, args.overload_seconds, every, every_window=True)
    print(
        f"[overloaded, as a file] every window kept: {kept['inferred']} windows in {args.overload_seconds:.0f} s; "
        f"playback at {kept['frames'] / (30 * args.overload_seconds):.2f}x real time (capture waited "
        f"{kept['waited_s']:.1f} s for the model); end-to-end median {kept['e2e_median'] * 1000:.1f} ms, first "
        f"third {kept['e2e_first'] * 1000:.1f} ms, last third {kept['e2e_last'] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
