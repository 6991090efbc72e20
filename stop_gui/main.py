"""`stop-gui`: the live desktop recognizer.

    stop-gui [--model MODEL.onnx|MODEL.engine|RUN_DIR] [--source FILE|CAMERA_INDEX|URL] [--backend auto]
             [--predict-every 0.5] [--screenshot out.png --quit-after 8]
"""
from __future__ import annotations

import argparse
import sys


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-gui", description="Recognise actions live with a STOP model.")
    p.add_argument("--model", help="exported .onnx, TensorRT .engine (with its sidecar), or a run directory (PyTorch)")
    p.add_argument("--source", help="video file, camera index or RTSP/HTTP URL: starts recognising at once")
    p.add_argument("--backend", default=None, help="auto, cpu, cuda, openvino, tensorrt, torch (default: last used)")
    p.add_argument("--plugin", metavar="LIB", help="libstop_tpi_plugin.so for an engine built with the plugin "
                   "(default: $STOP_TPI_PLUGIN)")
    p.add_argument("--predict-every", type=_positive, default=0.5, metavar="SECONDS")
    p.add_argument("--loop", action="store_true", help="loop a video file")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window before quitting")
    p.add_argument("--quit-after", type=float, default=0.0, metavar="SECONDS", help="quit after this long (0: never)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print("stop-gui needs PySide6: pip install 'stop-toolkit[gui]'", file=sys.stderr)
        return 2
    from .display import display_problem

    problem = display_problem()
    if problem:
        print(f"stop-gui: {problem}", file=sys.stderr)
        return 2
    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(predict_every_s=args.predict_every, plugin=args.plugin)
    window.resize(1200, 720)
    window.show()
    if args.loop:
        window.loop_box.setChecked(True)
    model_ok = window.open_model(args.model, args.backend) if args.model else True
    if args.source and model_ok:  # after a failed model the window keeps showing why
        window.open_source(args.source)
    if args.quit_after > 0:
        def finish():
            if args.screenshot:
                window.grab().save(args.screenshot)
            window.close()
            app.quit()

        QTimer.singleShot(int(args.quit_after * 1000), finish)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
