"""The main window: sources, model and backend, the live view with STOP's overlays, events, labels."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThread, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow,
                               QPlainTextEdit, QPushButton, QSlider, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from stop_export.runtime.backends import BackendError, available_ort_providers
from stop_export.runtime.events import EventCfg, EventDetector
from stop_export.runtime.recognizer import Recognizer
from stop_export.schema import MetadataError

from .pipeline import CaptureWorker, FrameHub, InferenceWorker, Window
from .widgets import TemporalPlot, TopK, VideoView

BACKENDS = ("auto", "cpu", "cuda", "openvino", "tensorrt", "torch", "torch-bf16")


class MainWindow(QMainWindow):
    """`open_model`, `open_source` and `export_events` are also the app's scripting surface (tests, CLI)."""

    windowShown = Signal(object)  # a prediction was displayed (Window)

    def __init__(self, predict_every_s: float = 0.5, settings: QSettings | None = None, plugin: str | None = None):
        super().__init__()
        self.plugin = plugin  # TemporalPromptInsert plugin library for engines built with it (None: $STOP_TPI_PLUGIN)
        self.setWindowTitle("STOP live recognizer")
        self.settings = settings or QSettings("stop-toolkit", "stop-gui")
        self.predict_every_s = predict_every_s
        self.event_cfg = EventCfg()  # smoothing, hysteresis thresholds, minimum duration
        self.recognizer: Recognizer | None = None
        self.hub: FrameHub | None = None
        self.threads: list[tuple[QThread, object]] = []
        self.capture: CaptureWorker | None = None
        self.inference: InferenceWorker | None = None
        self.events: EventDetector | None = None
        self.event_rows: list[dict] = []
        self.source = ""
        self.latencies: list[tuple[float, float]] = []  # (inference s, end-to-end s) per shown window
        self._frames_seen, self._fps_since, self._fps = 0, time.monotonic(), 0.0
        self._build()
        self._restore()

    # ------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        self.video = VideoView()
        self.topk = TopK(5)
        self.plot = TemporalPlot()
        self.heatmap_box = QCheckBox("spatial mask heatmap")
        self.heatmap_box.setChecked(True)
        self.heatmap_box.toggled.connect(self._toggle_heatmap)
        self.heatmap_note = QLabel("")
        self.heatmap_note.setWordWrap(True)
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.loop_box = QCheckBox("loop")
        self.loop_box.toggled.connect(self._set_loop)
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setEnabled(False)
        self.seek.sliderReleased.connect(lambda: self.capture and self.capture.seek(self.seek.value() / 10.0))
        self.banner = QLabel("")  # messages: failed sources, model problems (never a modal box)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["label", "start s", "end s", "peak"])
        self.labels_edit = QPlainTextEdit()
        self.labels_edit.setPlaceholderText("one label per line")
        self.relabel_button = QPushButton("Re-embed labels")
        self.relabel_button.clicked.connect(lambda: self.apply_labels(self.labels_edit.toPlainText().splitlines()))
        self.relabel_note = QLabel("")
        self.relabel_note.setWordWrap(True)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.banner)
        lv.addWidget(self.video, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.seek, 1)
        controls.addWidget(self.loop_box)
        lv.addLayout(controls)
        right = QWidget()
        rv = QVBoxLayout(right)
        row = QHBoxLayout()
        row.addWidget(QLabel("backend"))
        row.addWidget(self.backend_box, 1)
        rv.addLayout(row)
        rv.addWidget(self.topk)
        rv.addWidget(self.heatmap_box)
        rv.addWidget(self.heatmap_note)
        rv.addWidget(self.plot)
        rv.addWidget(QLabel("events"))
        rv.addWidget(self.table, 1)
        rv.addWidget(QLabel("labels (open vocabulary)"))
        rv.addWidget(self.labels_edit)
        rv.addWidget(self.relabel_button)
        rv.addWidget(self.relabel_note)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        self.setCentralWidget(split)

        self.status_fps, self.status_inf, self.status_e2e, self.status_backend = (QLabel("-") for _ in range(4))
        for w in (self.status_fps, self.status_inf, self.status_e2e, self.status_backend):
            self.statusBar().addPermanentWidget(w)
        bar = self.addToolBar("main")
        for text, key, slot in (
            ("Open video", QKeySequence.StandardKey.Open, self._ask_file),
            ("Camera", "Ctrl+K", self._ask_camera),
            ("Stream URL", "Ctrl+U", self._ask_url),
            ("Model", "Ctrl+M", self._ask_model),
            ("Play/Pause", "Space", self.toggle_pause),
            ("Export events", "Ctrl+E", self._ask_export),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            bar.addAction(action)
        self.heatmap_box.setShortcut(QKeySequence("H"))
        self._paused = False

    def _restore(self) -> None:
        self.backend_box.setCurrentText(str(self.settings.value("backend", "auto")))
        self.loop_box.setChecked(self.settings.value("loop", "false") in (True, "true"))
        self.heatmap_box.setChecked(self.settings.value("heatmap", "true") in (True, "true"))

    def _save(self) -> None:
        self.settings.setValue("backend", self.backend_box.currentText())
        self.settings.setValue("loop", self.loop_box.isChecked())
        self.settings.setValue("heatmap", self.heatmap_box.isChecked())
        if self.recognizer is not None:
            self.settings.setValue("model", str(getattr(self.recognizer.backend, "path", "")))
        if self.source:
            self.settings.setValue("source", self.source)

    def show_message(self, text: str) -> None:
        self.banner.setText(text)
        self.statusBar().showMessage(text, 10000)

    # -------------------------------------------------------------------------------------------- model
    def open_model(self, path: str, backend: str | None = None) -> bool:
        """Load a model; on failure the reason is shown and False returned."""
        if backend:
            self.backend_box.setCurrentText(backend)
        try:
            rec = Recognizer.open(path, self.backend_box.currentText(), plugin=self.plugin)
        except (BackendError, MetadataError, FileNotFoundError, ValueError, OSError) as err:
            self.show_message(f"cannot use model {Path(path).name}: {err}")
            return False
        self.stop_pipeline()
        self.recognizer = rec
        self.banner.setText("")
        meta = rec.meta
        self.labels_edit.setPlainText("\n".join(rec.labels))
        device = ", ".join(available_ort_providers()) if rec.backend.name.startswith("onnxruntime") else ""
        self.status_backend.setText(f"{rec.backend.name}{f' ({device})' if device else ''}")
        lattice = meta.model.mask_layout == "lattice"
        self.heatmap_box.setEnabled(not lattice)
        self.heatmap_note.setText("heatmap off: this model's mask uses the published lattice layout (bug B1), "
                                  "whose cells are not image regions" if lattice else "")
        text_ok = bool(meta.text_encoder) and (Path(path).parent / meta.text_encoder).is_file() and \
            not rec.backend.name.startswith("pytorch")
        self.relabel_button.setEnabled(text_ok)
        self.relabel_note.setText("" if text_ok else "re-labelling needs the exported text encoder beside the model "
                                  "(stop-export writes it); this model has none")
        self.video.heatmap = self.heatmap_box.isChecked() and not lattice
        if self.source:
            self.open_source(self.source)
        return True

    def apply_labels(self, labels: list[str]) -> bool:
        labels = [x.strip() for x in labels if x.strip()]
        if self.recognizer is None or not labels:
            self.show_message("load a model and give at least one label")
            return False
        try:
            self.recognizer.set_labels(labels)
        except (BackendError, FileNotFoundError) as err:
            self.show_message(str(err))
            return False
        self.events = EventDetector(labels, self.event_cfg)
        self.show_message(f"{len(labels)} labels embedded")
        return True

    # ------------------------------------------------------------------------------------------ sources
    def open_source(self, source: str, realtime: bool = True) -> None:
        """Start recognising `source` (file, camera index or URL) with the loaded model."""
        self.stop_pipeline()
        self.source = source
        if self.recognizer is None:
            self.show_message("open a model to start recognising")
            return
        self.hub = FrameHub(self.recognizer.clip_buffer(self.predict_every_s))
        self.events = EventDetector(self.recognizer.labels, self.event_cfg)
        self.capture = CaptureWorker(self.hub, source, loop=self.loop_box.isChecked(), realtime=realtime)
        self.capture.frameReady.connect(self._on_frame)
        self.capture.status.connect(self.show_message)
        self.capture.opened.connect(self._on_opened)
        self.inference = InferenceWorker(self.hub, self.recognizer)
        self.inference.result.connect(self._on_result)
        self.inference.error.connect(self.show_message)
        self.banner.setText("")
        for worker in (self.capture, self.inference):
            thread = QThread(self)
            worker.moveToThread(thread)
            thread.started.connect(worker.run)
            worker.finished.connect(thread.quit)
            self.threads.append((thread, worker))
            thread.start()

    def stop_pipeline(self) -> None:
        for thread, worker in self.threads:
            worker.stop()
        for thread, _ in self.threads:
            thread.quit()
            thread.wait(10000)
        self.threads.clear()
        self.capture = self.inference = None

    def toggle_pause(self) -> None:
        if self.capture is not None:
            self._paused = not self._paused
            self.capture.set_paused(self._paused)

    def _set_loop(self, on: bool) -> None:
        if self.capture is not None:
            self.capture.loop = on

    # ------------------------------------------------------------------------------------------ updates
    def _on_opened(self, duration_s: float) -> None:
        self.seek.setEnabled(duration_s > 0)
        if duration_s > 0:
            self.seek.setRange(0, int(duration_s * 10))

    def _on_frame(self) -> None:
        if self.hub is None or self.capture is None:
            return
        latest = self.hub.take_latest()
        self.capture.frame_taken()
        if latest is None:
            return
        frame, stream_t, _ = latest
        self.video.set_frame(frame)
        if self.seek.isEnabled() and not self.seek.isSliderDown():
            self.seek.setValue(int(stream_t * 10))
        self._frames_seen += 1
        now = time.monotonic()
        if now - self._fps_since >= 1.0:
            self._fps = self._frames_seen / (now - self._fps_since)
            self._frames_seen, self._fps_since = 0, now
            self.status_fps.setText(f"source {self._fps:.1f} fps")

    def _on_result(self, w: Window) -> None:
        self.topk.show_scores(w.scores, w.labels)
        outs = w.outputs
        if "spatial_mask" in outs:
            self.video.set_mask(outs["spatial_mask"][-1])
        if "gap_variation" in outs:
            self.plot.show_values("variation per gap (prompt counts below)", outs["gap_variation"],
                                  outs.get("gap_prompt_count"))
        elif "frame_weight" in outs:
            self.plot.show_values("frame weights", outs["frame_weight"])
        if self.events is not None and len(w.labels) == len(self.events.labels):
            for event in self.events.update(w.stream_t, w.scores):
                self._add_event(event.to_dict())
        self.video.repaint()
        e2e = time.monotonic() - w.captured_at
        self.latencies.append((w.inference_s, e2e))
        self.status_inf.setText(f"inference {w.inference_s * 1000:.0f} ms")
        self.status_e2e.setText(f"end-to-end {e2e * 1000:.0f} ms")
        self.windowShown.emit(w)

    def _add_event(self, record: dict) -> None:
        self.event_rows.append(record)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, key in enumerate(("label", "start_s", "end_s", "peak")):
            value = record[key]
            self.table.setItem(row, col, QTableWidgetItem(f"{value:.2f}" if isinstance(value, float) else str(value)))

    def _toggle_heatmap(self, on: bool) -> None:
        self.video.heatmap = on
        self.video.update()

    def finish_events(self) -> None:
        """Close the open events (end of a file, or on demand) into the table."""
        if self.events is not None and self.hub is not None:
            for event in self.events.finish():
                self._add_event(event.to_dict())

    def export_events(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.event_rows, indent=2) + "\n", encoding="utf-8")
        else:
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=["label", "start_s", "end_s", "peak"])
                writer.writeheader()
                writer.writerows(self.event_rows)
        return path

    # ----------------------------------------------------------------------------------------- dialogs
    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm);;All (*)")
        if path:
            self.open_source(path)

    def _ask_camera(self) -> None:
        import cv2

        found = [str(i) for i in range(5) if cv2.VideoCapture(i).isOpened()]
        if not found:
            self.show_message("no camera found (indices 0-4)")
            return
        index, ok = QInputDialog.getItem(self, "Camera", "index", found, 0, False)
        if ok:
            self.open_source(index)

    def _ask_url(self) -> None:
        url, ok = QInputDialog.getText(self, "Stream", "RTSP/HTTP URL")
        if ok and url:
            self.open_source(url)

    def _ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.onnx *.engine);;All (*)")
        if path:
            self.open_model(path)

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export events", "events.csv", "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export_events(path)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.stop_pipeline()
        self._save()
        super().closeEvent(event)
