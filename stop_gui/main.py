"""`stop-gui`: the live desktop recognizer.

    stop-gui [--model MODEL.onnx|MODEL.engine|RUN_DIR] [--source FILE|CAMERA_INDEX|URL] [--backend auto]
             [--predict-every 0.5] [--on 0.6 --off 0.4 --smoothing 0.5 --min-duration 1]
             [--size 1280x720] [--screenshot out.png --quit-after 8]

Exit codes: 0 after a normal close; 1 when `--quit-after` ends a run whose model or source failed, or whose
camera or stream never delivered a frame (the reason is printed), or the screenshot cannot be written; 2 for
usage errors and a display Qt cannot use.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from stop_export.cli_args import add_event_arguments, event_cfg, in_range, non_negative
from stop_export.runtime.backends import BACKEND_NAMES


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 1280x720, got {text!r}")
    return int(match[1]), int(match[2])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-gui", description="Recognise actions live with a STOP model.")
    p.add_argument("--model", help="exported .onnx, TensorRT .engine (with its sidecar), or a run directory (PyTorch)")
    p.add_argument("--source", help="video file, camera index or RTSP/HTTP URL: starts recognising at once")
    p.add_argument("--backend", default=None, choices=BACKEND_NAMES, help="default: the last one that worked")
    p.add_argument(
        "--plugin",
        metavar="LIB",
        help="libstop_tpi_plugin.so for an engine built with the plugin (default: $STOP_TPI_PLUGIN)",
    )
    p.add_argument(
        "--bank",
        metavar="BANK.json",
        help="a label bank from stop-teach for this model (default: the one the app keeps for it; see the Teach tab)",
    )
    p.add_argument(
        "--predict-every",
        type=in_range(float, 0, low_open=True),
        default=0.5,
        metavar="SECONDS",
        help="seconds between predictions (default %(default)s)",
    )
    add_event_arguments(p)
    p.add_argument(
        "--loop", action=argparse.BooleanOptionalAction, default=None, help="loop a video file (default: as last time)"
    )
    p.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="window size (default 1280x720)")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window before quitting")
    p.add_argument(
        "--quit-after",
        type=non_negative(float),
        default=0.0,
        metavar="SECONDS",
        help="quit after this long (0: never); exits 1 if the model or source failed",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    events = event_cfg(parser, args)
    if args.screenshot:
        shot = Path(args.screenshot)
        if not args.quit_after:
            parser.error("--screenshot is taken when --quit-after ends the run: give --quit-after SECONDS too")
        if shot.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
            parser.error(f"--screenshot {shot}: name a .png, .jpg or .bmp file")
        if not shot.parent.is_dir() or not os.access(shot.parent, os.W_OK):
            parser.error(f"--screenshot {shot}: cannot write in {shot.parent} (no such folder, or no permission)")
    try:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print("stop-gui needs PySide6: pip install 'stop-toolkit[gui]'", file=sys.stderr)
        return 2
    from .display import HEADLESS, display_problem

    problem = display_problem()
    if problem:
        print(f"stop-gui: {problem}", file=sys.stderr)
        return 2
    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(predict_every_s=args.predict_every, plugin=args.plugin, events=events)
    width, height = args.size
    if app.platformName() not in HEADLESS:  # a 1366x600 laptop gets a window it can use, not one off-screen
        screen = app.primaryScreen().availableGeometry()
        frame = 40  # room for the window manager's title bar
        width, height = min(width, screen.width()), min(height, screen.height() - frame)
        window.move(
            screen.x() + (screen.width() - width) // 2, screen.y() + max(0, (screen.height() - frame - height) // 2)
        )
    window.resize(width, height)
    window.show()
    if args.loop is not None:
        window.loop_box.setChecked(args.loop)
    model_ok = window.open_model(args.model, args.backend) if args.model else True
    if args.bank and model_ok:
        model_ok = window.teach.open_bank(args.bank)
        if not model_ok:  # the banner says why; an automated run (--quit-after) fails with it, as stop-recognize does
            window.failure = window.failure or f"--bank {args.bank}: {window.banner.text()}"
    if args.source and model_ok:  # after a failed model the window keeps showing why
        window.open_source(args.source)
    outcome = {"code": 0}
    if args.quit_after > 0:

        def finish():
            if args.screenshot and not window.grab().save(args.screenshot):
                print(
                    f"stop-gui: cannot write the screenshot {args.screenshot} (a folder that does not exist, "
                    "no permission, or not a .png/.jpg name)",
                    file=sys.stderr,
                )
                outcome["code"] = 1
            failure = window.automation_failure()
            if failure:
                print(f"stop-gui: {failure}", file=sys.stderr)
                outcome["code"] = 1
            window.close()
            app.quit()

        QTimer.singleShot(int(args.quit_after * 1000), finish)
    code = app.exec()
    return code or outcome["code"]


def cli() -> None:
    """The `stop-gui` command: `main`, then `leave`."""
    leave(main())


def leave(code: int) -> NoReturn:
    """Exit with `code`. A capture worker still inside FFmpeg's open or read of a stream that does not answer
    (it ends at FFmpeg's 5 s timeout; `pipeline.Pipeline.stop`) races the interpreter's teardown in native
    code: quitting mid-connect crashed with SIGSEGV in 3 of 12 runs. With such a thread alive the process
    leaves without the teardown; by then the window has saved its settings, and the output is flushed here."""
    pipeline = sys.modules.get("stop_gui.pipeline")  # not imported: no worker ever ran
    if pipeline is not None and pipeline.live_workers():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    cli()
