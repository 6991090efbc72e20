"""Live streams that drop: a generated MPEG-TS served over HTTP on 127.0.0.1 by a server that cuts the first
connection short and then comes back or stays down. `stop-recognize` reports the loss, retries and exits
non-zero when it gives up; the app's capture worker reports the loss and recovers when the stream returns."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from videofiles import encode

from stop_train.video.source import ReconnectPolicy

FRAMES = 90  # 3 s at 30 fps


class StreamServer:
    """Serves one TS file; each connection follows the next step of `plan`: 'partial' (the first half of the
    bytes, then the connection closes), 'full', or 'down' (503). The last step repeats."""

    def __init__(self, data: bytes, plan: list[str]):
        self.data, self.plan, self.served = data, list(plan), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                step = server.plan.pop(0) if len(server.plan) > 1 else server.plan[0]
                server.served.append(step)
                if step == "down":
                    self.send_error(503, "stream down")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.send_header("Connection", "close")
                self.end_headers()
                body = server.data if step == "full" else server.data[: len(server.data) // 2]
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/live.ts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def ts_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "live.ts"
    encode(path, FRAMES, size=(64, 64), out_args=["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "15", "-f", "mpegts"])
    return path.read_bytes()


def test_recognize_reports_the_loss_retries_and_gives_up(exported, ts_bytes, capsys):
    from stop_export.cli import recognize_main

    with StreamServer(ts_bytes, ["partial", "down"]) as server:
        code = recognize_main(
            [
                str(exported["dynamic"]),
                "--source",
                server.url,
                "--json",
                "--reconnect",
                "1",
                "--frame-interval",
                "0.1",
                "--predict-every",
                "0.2",
            ]
        )
    out, err = capsys.readouterr()
    assert code == 3, err
    assert server.served == ["partial", "down"]  # one reconnect attempt, then it gave up
    lines = err.strip().splitlines()
    assert any(f"lost {server.url} at" in line and "retrying in 1 s" in line for line in lines), err
    assert "gave up after 1 reconnect attempt" in lines[-1] and "Traceback" not in err
    assert '"type": "window"' in out  # it recognised what arrived before the loss ...
    assert '"type": "video"' not in out  # ... and does not summarise the stream as if it were complete


def test_app_capture_shows_the_loss_and_recovers(ts_bytes, qtbot):
    from stop_gui.pipeline import CaptureWorker

    class Hub:  # counts frames between restarts (a restart = the source was reopened)
        def __init__(self):
            self.runs = [[]]

        def push(self, frame, t, captured_at):
            self.runs[-1].append(t)
            return 0.0

        def restart(self):
            if self.runs[-1]:
                self.runs.append([])

    hub, messages = Hub(), []
    with StreamServer(ts_bytes, ["partial", "full", "down"]) as server:
        worker = CaptureWorker(hub, server.url, policy=ReconnectPolicy(attempts=1, first_delay_s=0.1))
        worker.status.connect(lambda text, problem: messages.append(text))
        worker.failed.connect(messages.append)
        worker.run()  # synchronously: ends when the policy gives up on 'down'
    lost = [m for m in messages if m.startswith(f"lost {server.url} at") and "retrying in" in m]
    assert len(lost) == 2, messages  # after the partial connection and after the full one
    assert any(m.startswith(f"{server.url}: receiving again at") for m in messages), messages  # clears the banner
    assert len(hub.runs) == 2 and 0 < len(hub.runs[0]) < len(hub.runs[1]) == FRAMES  # recovered: all 90 frames
    assert all(b > a for run in hub.runs for a, b in zip(run, run[1:]))  # times increase within each run
    assert hub.runs[1][0] > hub.runs[0][-1]  # and across the reconnect
    assert "gave up" in messages[-1]


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_stream_that_never_answers_times_out_with_a_reason(silent_url, scheme):
    import time

    from stop_train.video.source import SourceError, StreamSource

    start = time.monotonic()
    with pytest.raises(SourceError, match="no answer within 1 s"):  # RTSP's demuxer calls it bad data
        StreamSource(silent_url.replace("http", scheme, 1), timeout_s=1.0)
    assert time.monotonic() - start < 5


def test_ctrl_c_while_a_stream_is_opening_ends_recognition(exported, silent_url):
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "  # as in a terminal
        "from stop_export.cli import recognize_main; "
        f"sys.exit(recognize_main([{str(exported['dynamic'])!r}, '--source', {silent_url!r}]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # the model is loaded and FFmpeg waits for the server (5 s timeout)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not end stop-recognize while FFmpeg was waiting for a stream")
    assert proc.returncode == 130, err
    assert "retrying" not in err and "Traceback" not in err


def test_clip_buffer_keeps_no_history_across_a_gap_or_a_reconnect():
    import numpy as np

    from stop_export.runtime.buffer import ClipBuffer
    from stop_train.video import PreprocessCfg

    buffer = ClipBuffer(frames=4, frame_interval_s=0.1, predict_every_s=0.1, preprocess=PreprocessCfg(size=8))
    frame = np.zeros((8, 8, 3), np.uint8)
    for i in range(10):
        buffer.push(frame, i / 30)
    assert buffer.ready
    buffer.push(frame, 5.0)  # back after a loss longer than a clip: the old frames are gone
    assert not buffer.ready and buffer.latest == 5.0
    for i in range(1, 10):
        buffer.push(frame, 5.0 + i / 30)
    assert buffer.ready
    buffer.clear()  # what stop-recognize does when a source is reopened
    assert not buffer.ready and buffer.latest is None and not buffer.due()
