"""The main window: sources, model and backend, the live view with STOP's overlays, events, labels."""

from __future__ import annotations

import csv
import errno
import io
import threading
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QSettings, QStandardPaths, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from stop_export.runtime.backends import BACKEND_NAMES, BackendError, available_ort_providers
from stop_export.runtime.events import Event, EventCfg
from stop_export.runtime.recognizer import Recognizer
from stop_export.runtime.search import SearchIndex, SearchIndexError, fmt_time
from stop_export.runtime.text import TextEncoder
from stop_train.atomic import atomic_write_json, atomic_write_text
from stop_train.schema import MetadataError
from stop_train.video.source import SourceError, SourceSpec

from .pipeline import Boundary, CaptureWorker, FrameHub, InferenceWorker, Pipeline, Window
from .search import VideoEmbedder, cache_file, cached_index, find
from .teach import TeachTab
from .widgets import SeekSlider, TemporalPlot, TopK, VideoView

BACKENDS = BACKEND_NAMES
EVENT_COLUMNS = ("label", "start_s", "end_s", "peak", "source")
EXPORT_FILTERS = {"CSV (*.csv)": "csv", "JSON (*.json)": "json"}
ERROR_STYLE, NOTE_STYLE = "color: #b00020", "color: palette(window-text)"
# Anything that stops a model from opening: its own errors, a file ONNX Runtime or TensorRT refuses
# (RuntimeError subclasses), a backend whose library is missing (ImportError).
MODEL_ERRORS = (BackendError, MetadataError, OSError, ValueError, RuntimeError, ImportError)


def clock(seconds: float) -> str:
    """'m:ss.s' for the time readout."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def export_path(path: str | Path, fmt: str) -> tuple[Path, str]:
    """(file, format) an export writes: a name ending in .csv or .json keeps its format, any other name gets
    `fmt` and its extension appended."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "json"):
        return path, suffix
    return path.with_name(f"{path.name}.{fmt}"), fmt


class _Done(QObject):
    finished = Signal()


def source_name(source: str) -> str:
    """What the events table shows for a source: a file's name, else the camera or URL as given."""
    try:
        spec = SourceSpec.parse(source)
    except SourceError:
        return source
    return str(spec) if spec.live else Path(source).name


class MainWindow(QMainWindow):
    """`open_model`, `open_source`, `toggle_pause`, `seek_to`, `clear_events` and `export_events` are also the
    app's scripting surface (tests, CLI). `failure` holds the last model or source error that stopped
    recognition (None while everything works): `--quit-after` exits non-zero with it."""

    windowShown = Signal(object)  # a prediction was displayed (Window)
    eventsChanged = Signal()  # rows were added, closed or cleared

    def __init__(
        self,
        predict_every_s: float = 0.5,
        settings: QSettings | None = None,
        plugin: str | None = None,
        events: EventCfg = EventCfg(),
    ):
        super().__init__()
        self.plugin = plugin  # TemporalPromptInsert plugin library for engines built with it (None: $STOP_TPI_PLUGIN)
        self.setWindowTitle("STOP live recognizer")
        self.settings = settings or QSettings("stop-toolkit", "stop-gui")
        self.predict_every_s = predict_every_s
        self.event_cfg = events  # smoothing, hysteresis thresholds, minimum duration (stop-recognize's flags)
        self.recognizer: Recognizer | None = None
        self.model_path = ""
        self.working_backend: str | None = None  # the backend the loaded model opened with
        self.pipeline: Pipeline | None = None
        self.event_rows: list[dict] = []  # ended events, as exported
        self.ongoing: list[dict] = []  # open events, shown as the table's last rows
        self._shown_rows = 0  # ended events already in the table
        self.source = ""
        self.source_path = ""
        self.failure: str | None = None
        self.source_problem: str | None = None  # the last problem a live source reported before its first frame
        self._busy = False  # a model is loading (its own thread; the window keeps painting)
        self._closing = False
        self.state = "idle"  # idle, connecting, playing, paused, ended
        self.duration_s = 0.0
        self.frame_t: float | None = None  # stream time of the frame on screen
        self.latencies: list[tuple[float, float]] = []  # (inference s, end-to-end s) per shown window
        self._frames_seen, self._fps_since, self._fps = 0, time.monotonic(), 0.0
        # text search: window embeddings cached per (model fingerprint, video) on disk and in memory
        self.search_cache = (
            Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericCacheLocation))
            / "stop-toolkit"
            / "search"
        )  # not under the application name, which follows argv[0]
        self.search_index: SearchIndex | None = None  # a stop-search index opened for searching (None: this video)
        self.search_hits: list[dict] = []
        self.embedder: VideoEmbedder | None = None  # embedding the open video for search
        self._embedded: dict[tuple[str, str], SearchIndex] = {}
        self._encoder: TextEncoder | None = None
        self._pending_query = ""
        self._seek_after_open: float | None = None
        self._build()
        self._restore()

    # convenience views of the running pipeline (None when stopped)
    @property
    def hub(self) -> FrameHub | None:
        return self.pipeline.hub if self.pipeline else None

    @property
    def capture(self) -> CaptureWorker | None:
        return self.pipeline.capture if self.pipeline else None

    @property
    def inference(self) -> InferenceWorker | None:
        return self.pipeline.inference if self.pipeline else None

    # ------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        self.video = VideoView()
        self.video.setMinimumSize(240, 160)
        self.topk = TopK(5)
        self.plot = TemporalPlot()
        self.plot.setMinimumHeight(70)
        self.heatmap_box = QCheckBox("spatial mask heatmap")
        self.heatmap_box.setChecked(True)
        self.heatmap_box.toggled.connect(self._toggle_heatmap)
        self.heatmap_note = QLabel("")
        self.heatmap_note.setWordWrap(True)
        self.heatmap_note.hide()
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.backend_box.activated.connect(lambda i: self.choose_backend(self.backend_box.itemText(i)))
        self.loop_box = QCheckBox("loop")
        self.loop_box.toggled.connect(self._set_loop)
        self.play_button = QToolButton()
        self.play_button.setText("Replay")
        self.play_button.setFixedWidth(self.play_button.sizeHint().width())  # the seek bar does not jump
        self.play_button.setText("Pause")
        self.play_button.setToolTip("play / pause (Space); after the end: replay")
        self.play_button.clicked.connect(self.toggle_pause)
        self.play_button.setEnabled(False)
        self.seek = SeekSlider()
        self.seek.setMinimumWidth(120)
        self.seek.setEnabled(False)
        self.seek.seekRequested.connect(lambda ms: self.seek_to(ms / 1000))
        self.seek.scrubbed.connect(self._scrub)
        self.time_label = QLabel("-:-- / -:--")
        self.time_label.setFont(QFont("monospace"))
        self.banner = QLabel("")  # messages: failed sources, model problems, confirmations (never a modal box)
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(EVENT_COLUMNS))
        self.table.setHorizontalHeaderLabels(["label", "start s", "end s", "peak", "source"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(40)
        for col, mode in enumerate(
            (
                QHeaderView.ResizeMode.Stretch,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Stretch,
            )
        ):
            header.setSectionResizeMode(col, mode)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear_events)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._ask_export)
        self.events_note = QLabel("")
        self.labels_edit = QPlainTextEdit()
        self.labels_edit.setPlaceholderText("one label per line")
        self.relabel_button = QPushButton("Re-embed labels")
        self.relabel_button.clicked.connect(lambda: self.apply_labels(self.labels_edit.toPlainText().splitlines()))
        self.relabel_note = QLabel("")
        self.relabel_note.setWordWrap(True)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 4, 4)
        lv.addWidget(self.banner)
        lv.addWidget(self.video, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.seek, 1)
        controls.addWidget(self.time_label)
        controls.addWidget(self.loop_box)
        lv.addLayout(controls)

        right = QWidget()
        right.setMinimumWidth(300)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("backend"))
        row.addWidget(self.backend_box, 1)
        rv.addLayout(row)
        rv.addWidget(self.topk)
        rv.addWidget(self.heatmap_box)
        rv.addWidget(self.heatmap_note)
        rv.addWidget(self.plot)
        events_tab = QWidget()
        ev = QVBoxLayout(events_tab)
        ev.setContentsMargins(2, 2, 2, 2)
        ev.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.events_note, 1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.export_button)
        ev.addLayout(buttons)
        labels_tab = QWidget()
        lt = QVBoxLayout(labels_tab)
        lt.setContentsMargins(2, 2, 2, 2)
        lt.addWidget(QLabel("open vocabulary: one label per line"))
        lt.addWidget(self.labels_edit, 1)
        lt.addWidget(self.relabel_button)
        lt.addWidget(self.relabel_note)
        self.tabs = QTabWidget()
        self.tabs.addTab(events_tab, "Events")
        self.tabs.addTab(labels_tab, "Labels")
        self.search_tab = self._build_search_tab()
        self.tabs.addTab(self.search_tab, "Search")
        self.teach = TeachTab(self, self.settings)
        self.tabs.addTab(self.teach, "Teach")
        self.tabs.setMinimumHeight(120)
        rv.addWidget(self.tabs, 1)
        self.split = QSplitter()
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setChildrenCollapsible(False)
        self.setCentralWidget(self.split)

        self.status_fps, self.status_inf, self.status_e2e, self.status_backend = (QLabel("-") for _ in range(4))
        for w in (self.status_fps, self.status_inf, self.status_e2e, self.status_backend):
            self.statusBar().addPermanentWidget(w)
        self.status_backend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = self.addToolBar("main")
        bar.setMovable(False)
        self.toolbar = bar
        self.actions_by_name: dict[str, QAction] = {}
        for text, key, slot in (
            ("Open video", QKeySequence.StandardKey.Open, self._ask_file),
            ("Camera", "Ctrl+K", self._ask_camera),
            ("Stream URL", "Ctrl+U", self._ask_url),
            ("Model", "Ctrl+M", self._ask_model),
            ("Model folder", "Ctrl+Shift+M", self._ask_model_folder),
            ("Play/Pause", "Space", self.toggle_pause),
            ("Export events", "Ctrl+E", self._ask_export),
            ("Search index", "Ctrl+Shift+F", self._ask_index),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            bar.addAction(action)
            self.actions_by_name[text] = action
        find_action = QAction("Find", self)
        find_action.setShortcut(QKeySequence.StandardKey.Find)
        find_action.triggered.connect(self._focus_search)
        self.addAction(find_action)  # Ctrl+F: the search box
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)  # Ctrl+Q, without a toolbar button
        self.heatmap_box.setShortcut(QKeySequence("H"))
        self._paused = False

    def _build_search_tab(self) -> QWidget:
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("find in this video, e.g. a person opening a valve")
        self.search_edit.returnPressed.connect(lambda: self.search(self.search_edit.text()))
        self.search_button = QPushButton("Find")
        self.search_button.clicked.connect(lambda: self.search(self.search_edit.text()))
        self.search_scope = QLabel("searching: the open video")
        self.search_scope.setWordWrap(True)
        self.search_close_index = QToolButton()
        self.search_close_index.setText("this video")
        self.search_close_index.setToolTip("search the open video again instead of the index")
        self.search_close_index.clicked.connect(lambda: self.open_search_index(None))
        self.search_close_index.hide()
        self.search_note = QLabel("")
        self.search_note.setWordWrap(True)
        self.search_list = QListWidget()
        self.search_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.search_list.itemActivated.connect(self._jump_to_hit)
        self.search_list.itemClicked.connect(self._jump_to_hit)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(self.search_edit, 1)
        row.addWidget(self.search_button)
        layout.addLayout(row)
        scope = QHBoxLayout()
        scope.addWidget(self.search_scope, 1)
        scope.addWidget(self.search_close_index)
        layout.addLayout(scope)
        layout.addWidget(self.search_note)
        layout.addWidget(self.search_list, 1)
        return tab

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not getattr(self, "_split_set", False) and self.width() > 0:  # the first real size: 60 % video
            self.split.setSizes([int(self.width() * 0.6), int(self.width() * 0.4)])
            self._split_set = True

    def _restore(self) -> None:
        self.backend_box.setCurrentText(str(self.settings.value("backend", "auto")))
        self.loop_box.setChecked(self.settings.value("loop", "false") in (True, "true"))
        self.heatmap_box.setChecked(self.settings.value("heatmap", "true") in (True, "true"))

    def _save(self) -> None:
        """Loop and heatmap choices; the backend is saved when a model opened with it (`open_model`)."""
        self.settings.setValue("loop", self.loop_box.isChecked())
        self.settings.setValue("heatmap", self.heatmap_box.isChecked())
        if self.source:
            self.settings.setValue("source", self.source)

    def show_message(self, text: str, error: bool = True) -> None:
        """In the banner above the video (and the status bar): problems in the error style, else neutral."""
        self.banner.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.banner.setProperty("error", bool(error and text))
        self.banner.setText(text)
        if text:
            self.statusBar().showMessage(text, 10000)
        else:
            self.statusBar().clearMessage()

    def _fail(self, text: str) -> None:
        self.failure = text
        self.show_message(text, error=True)

    def automation_failure(self) -> str | None:
        """Why an automated run (`--quit-after`) failed: a model or source error, or a camera or stream that
        never delivered a frame while it reported problems (None: it worked)."""
        if self.failure:
            return self.failure
        if self.source and self.recognizer is not None and self.frame_t is None and self.source_problem:
            return f"no frame from {source_name(self.source)}: {self.source_problem}"
        return None

    def _in_background(self, work, message: str):
        """Run `work()` on a thread while the window keeps painting and playing (opening a model can import
        PyTorch or build an ONNX Runtime session for many seconds); returns its result or raises its error.
        The model and source actions are disabled meanwhile."""
        outcome: dict = {}
        done = _Done()
        loop = QEventLoop()
        done.finished.connect(loop.quit, Qt.ConnectionType.QueuedConnection)

        def run() -> None:
            try:
                outcome["value"] = work()
            except BaseException as err:  # noqa: BLE001 - re-raised on the GUI thread below
                outcome["error"] = err
            done.finished.emit()

        self._busy = True
        self.show_message(message, error=False)
        relabel = self.relabel_button.isEnabled()
        for widget in (self.toolbar, self.backend_box, self.relabel_button, self.teach):
            widget.setEnabled(False)
        thread = threading.Thread(target=run, name="stop-gui-open-model", daemon=True)
        thread.start()
        loop.exec()  # until `finished` (queued: delivered here even if the thread ended already)
        thread.join()
        self._busy = False
        for widget in (self.toolbar, self.backend_box):
            widget.setEnabled(True)
        self.relabel_button.setEnabled(relabel)
        self.teach.setEnabled(self.teach.usable)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    # -------------------------------------------------------------------------------------------- model
    def open_model(self, path: str, backend: str | None = None) -> bool:
        """Load a model with `backend` (default: the box's choice, and `auto` when that remembered choice
        cannot open this model: a torch backend remembered from a run directory, then an .onnx). On failure
        the reason is shown, the model and backend in use (if any) stay, and False is returned; on success
        the backend is remembered."""
        if backend is None and self.backend_box.currentText() != "auto":
            remembered = self.backend_box.currentText()
            if self._open_model(path, remembered, quiet=True):
                return True
            opened = self._open_model(path, "auto")
            if opened:
                self.show_message(f"the {remembered} backend cannot open {Path(path).name}: using auto", error=False)
            return opened
        return self._open_model(path, backend or self.backend_box.currentText())

    def _open_model(self, path: str, backend: str, quiet: bool = False) -> bool:
        if backend not in BACKENDS:
            self._fail(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
            self._show_backend(self.working_backend)
            return False
        if self._busy:
            return False
        try:
            rec = self._in_background(
                lambda: Recognizer.open(path, backend, plugin=self.plugin),
                f"opening {path} with the {backend} backend…",
            )
        except MODEL_ERRORS as err:
            if not quiet:
                self._fail(f"cannot use {path} with the {backend} backend: {err}")
            self._show_backend(self.working_backend)
            self.relabel_button.setEnabled(self._text_encoder_ok())
            return False
        if self._closing:
            return False
        self.stop_pipeline()
        self._reset_search(keep_index=False)
        self.recognizer, self.model_path, self.working_backend, self.failure = rec, str(path), backend, None
        self._show_backend(backend)
        self.settings.setValue("backend", backend)
        self.settings.setValue("model", str(path))
        meta = rec.meta
        self.labels_edit.setPlainText("\n".join(rec.labels))  # without the bank's classes: they are not re-embedded
        self.teach.load_for_model()
        self.topk.clear()
        device = ", ".join(available_ort_providers()) if rec.backend.name.startswith("onnxruntime") else ""
        self.status_backend.setText(f"{rec.backend.name}{f' ({device})' if device else ''}")
        lattice = meta.model.mask_layout == "lattice"
        self.heatmap_box.setEnabled(not lattice)
        self.heatmap_note.setText(
            "heatmap off: this model's mask uses the published lattice layout (bug B1), "
            "whose cells are not image regions"
            if lattice
            else ""
        )
        self.heatmap_note.setVisible(lattice)
        text_ok = self._text_encoder_ok()
        self.relabel_button.setEnabled(text_ok)
        self.relabel_note.setText(
            ""
            if text_ok
            else "re-labelling needs the exported text encoder beside the model "
            "(stop-export writes it); this model has none"
        )
        self.video.heatmap = self.heatmap_box.isChecked() and not lattice
        if meta.task == "retrieval":
            self.show_message(f"model {Path(path).name}: {self._retrieval_hint()}, {rec.backend.name}", error=False)
        else:
            self.show_message(f"model {Path(path).name}: {len(rec.labels)} labels, {rec.backend.name}", error=False)
        if self.source:
            self.open_source(self.source)
        return True

    def _retrieval_hint(self) -> str:
        return (
            "a retrieval model: it scores nothing until labels are typed on the Labels tab; the Search tab "
            "(Ctrl+F) finds moments by text"
        )

    def _quiet_banner(self) -> None:
        """Clear the banner, except for what a retrieval model without labels needs said."""
        rec = self.recognizer
        lacking = rec is not None and rec.meta.task == "retrieval" and not rec.labels
        self.show_message(self._retrieval_hint() if lacking else "", error=False)

    def _text_encoder_ok(self) -> bool:
        rec = self.recognizer
        if rec is None or rec.backend.name.startswith("pytorch") or not rec.meta.text_encoder:
            return False
        return (Path(self.model_path).parent / rec.meta.text_encoder).is_file()

    def choose_backend(self, backend: str) -> bool:
        """The backend box's choice: tried at once on the loaded model (kept only if it works)."""
        if not self.model_path:
            self.show_message(f"backend {backend} will be tried when a model is opened", error=False)
            return True
        if backend == self.working_backend:
            return True
        return self.open_model(self.model_path, backend)

    def _show_backend(self, backend: str | None) -> None:
        self.backend_box.blockSignals(True)
        self.backend_box.setCurrentText(backend or str(self.settings.value("backend", "auto")))
        self.backend_box.blockSignals(False)

    def apply_labels(self, labels: list[str]) -> bool:
        """Re-label the model through its text encoder: at least two distinct labels (scores are a softmax
        over them)."""
        labels = [x.strip() for x in labels if x.strip()]
        if self.recognizer is None:
            self.show_message("open a model first")
            return False
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            self.show_message(f"each label once, please: {', '.join(repeated)} appear(s) more than once")
            return False
        if len(labels) < 2:
            self.show_message("give at least two labels, one per line: scores are shared out among them")
            return False
        try:
            self.recognizer.set_labels(labels)
        except MODEL_ERRORS as err:
            self.show_message(str(err))
            return False
        self.topk.clear()
        self.show_message(f"{plural(len(labels), 'label')} embedded", error=False)
        return True

    # ------------------------------------------------------------------------------------------ sources
    def open_source(self, source: str, realtime: bool = True, every_window: bool | None = None) -> None:
        """Start recognising `source` (file, camera index or URL) with the loaded model, playing, from its start.
        `realtime`: pace a file by its frames' times (False: as fast as it decodes). `every_window`: predict
        every window even when the model is slower than `predict_every_s`, holding playback back (default:
        for files, so the events equal stop-recognize's; cameras and streams skip windows instead)."""
        self.stop_pipeline()
        if self.embedder is not None and source != self.source:
            self._cancel_embedding()
        self.source = source
        self.source_path = source  # what rows and exports name: a file's absolute path, else the camera or URL
        if self.search_index is None:
            self._show_hits([])
        self._set_state("idle")
        self.seek.setEnabled(False)
        self.seek.setValue(0)
        self.duration_s, self.frame_t, self.source_problem = 0.0, None, None
        self.time_label.setText("-:-- / -:--")
        for label in (self.status_fps, self.status_inf, self.status_e2e):
            label.setText("-")
        if self.recognizer is None:
            self.show_message("open a model to start recognising", error=False)
            return
        try:
            live = SourceSpec.parse(source).live
        except SourceError as err:
            self._fail(str(err))
            return
        if not live:
            self.source_path = str(Path(source).resolve())
        self.failure = None
        self.loop_box.setEnabled(not live)
        lossless = not live if every_window is None else every_window
        hub = FrameHub(self.recognizer.clip_buffer(self.predict_every_s), lossless=lossless)
        capture = CaptureWorker(hub, source, loop=self.loop_box.isChecked(), realtime=realtime)
        inference = InferenceWorker(hub, self.recognizer, self.event_cfg)
        queued = Qt.ConnectionType.QueuedConnection  # emitted on the workers' threads, handled here
        capture.frameReady.connect(self._on_frame, queued)
        capture.status.connect(self._on_status, queued)
        capture.failed.connect(self._on_source_failed, queued)
        capture.opened.connect(self._on_opened, queued)
        capture.ended.connect(self._on_ended, queued)
        inference.result.connect(self._on_result, queued)
        inference.boundary.connect(self._on_boundary, queued)
        inference.error.connect(self._on_inference_error, queued)
        self.pipeline = Pipeline(hub, capture, inference)
        self._clear_prediction()
        self.video.clear(f"opening {source_name(source)}…")
        self._quiet_banner()
        self._paused = False
        self._set_state("connecting" if live else "playing")
        self.pipeline.start()

    def stop_pipeline(self) -> None:
        """Stop recognising; events still open end at the last frame shown and join the table."""
        self.teach.cancel_recording()
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is None:
            return
        stuck = pipeline.stop()
        if "stop-gui-inference" not in stuck:  # its detector is ours to read now
            self._add_events(pipeline.inference.detector.finish(pipeline.hub.last_t))
        self.ongoing = []
        self._show_events()

    def toggle_pause(self) -> None:
        """Space: pause or resume; after the end of a file, play it again from the start."""
        capture = self.capture
        if capture is None:
            return
        if self.state == "connecting":  # no picture yet: a pause would show nothing, and the retries go on
            self.show_message(f"still connecting to {source_name(self.source)}: nothing to pause yet", error=False)
            return
        if self.state == "ended":
            self._paused = False
            capture.set_paused(False)
            capture.seek(0.0)
            self._set_state("playing")
            self.show_message("", error=False)
            return
        self._paused = not self._paused
        capture.set_paused(self._paused)
        self._set_state("paused" if self._paused else "playing")

    def seek_to(self, seconds: float) -> None:
        """Jump in a file (a click on the seek bar, or its release after a drag); after the end it plays on."""
        if self.capture is None or not self.seek.isEnabled():
            return
        self.capture.seek(seconds)
        self._show_time(seconds)
        if self.state == "ended":
            self._set_state("paused" if self._paused else "playing")
            self.show_message("", error=False)

    def _scrub(self, ms: int) -> None:
        """While the seek bar is dragged: paused, the picture follows; playing, the jump waits for the release."""
        self._show_time(ms / 1000)
        if self.state in ("paused", "ended") and self.capture is not None:
            if self.state == "ended":  # stays where it is dragged to, paused
                self._paused = True
                self.capture.set_paused(True)
                self._set_state("paused")
                self.show_message("", error=False)
            self.capture.seek(ms / 1000)

    def _set_loop(self, on: bool) -> None:
        if self.capture is not None:
            self.capture.loop = on

    def _set_state(self, state: str) -> None:
        self.state = state
        self.video.set_paused(state == "paused")
        self.play_button.setEnabled(state != "idle")
        self.play_button.setText({"paused": "Play", "ended": "Replay"}.get(state, "Pause"))
        if state == "paused":
            self.statusBar().showMessage("paused (Space resumes)")
        elif self.statusBar().currentMessage().startswith(("paused", "end of video")):
            self.statusBar().clearMessage()

    def _show_time(self, t: float) -> None:
        length = clock(self.duration_s) if self.duration_s > 0 else "live"
        self.time_label.setText(f"{clock(t)} / {length}")

    # ------------------------------------------------------------------------------------------ updates
    def _current(self, worker) -> bool:
        """Is this signal from the running pipeline (not one stopped while its signal was queued)?"""
        return self.pipeline is not None and worker in (self.pipeline.capture, self.pipeline.inference)

    def _on_opened(self, duration_s: float) -> None:
        if not self._current(self.sender()):
            return
        self.duration_s = duration_s
        self.seek.setEnabled(duration_s > 0)
        if duration_s > 0:
            self.seek.setRange(0, int(duration_s * 1000))
            self.seek.setPageStep(max(1, int(duration_s * 100)))
        if self.state == "connecting":
            self._set_state("playing")
        self._quiet_banner()  # "connecting…", or a loss now recovered
        self._show_time(0.0)
        self._mark_hits()
        if self._seek_after_open is not None:  # a search hit in another video: jump once it is open
            target, self._seek_after_open = self._seek_after_open, None
            self.seek_to(target)

    def _on_status(self, text: str, problem: bool) -> None:
        if self._current(self.sender()):
            self.show_message(text, error=problem)
            if problem and self.frame_t is None:
                self.source_problem = text

    def _on_source_failed(self, text: str) -> None:
        if not self._current(self.sender()):
            return
        self._fail(text)
        self.video.clear(text)
        self.seek.setEnabled(False)
        self._set_state("idle")

    def _on_ended(self) -> None:
        if not self._current(self.sender()):
            return
        self._set_state("ended")
        self.teach.cancel_recording("the video ended before the recording was complete: nothing was added")
        if self._too_short():
            return
        self.show_message("end of video: Space replays it, or click the seek bar", error=False)

    def _too_short(self) -> bool:
        """At the end of a pass: a file that gave no clip at all says so (as stop-recognize does) and stops. A file
        longer than one clip is not too short, even when a seek near its end left no room for a clip."""
        hub = self.hub
        if hub is None or hub.clips > 0 or self.duration_s >= hub.span:
            return False
        text = (
            f"{source_name(self.source)} ended after {hub.last_t or 0.0:.2f} s, before one clip "
            f"({hub.span:.2f} s) was complete: nothing to recognise (a longer video, or a model with a "
            "smaller frame interval)"
        )
        self.stop_pipeline()
        self._set_state("idle")
        self._fail(text)
        return True

    def _on_inference_error(self, text: str) -> None:
        if self._current(self.sender()):
            self._fail(text)

    def _on_frame(self) -> None:
        capture = self.capture
        if not self._current(self.sender()) or capture is None:
            return
        latest = self.pipeline.hub.take_latest()
        capture.frame_taken()
        if latest is None:
            return
        frame, stream_t, _ = latest
        self.video.set_frame(frame)
        self.frame_t = stream_t
        if self.teach.recording:
            self.teach.on_frame(frame, stream_t)
        if self.seek.isEnabled() and not self.seek.isSliderDown():
            self.seek.blockSignals(True)
            self.seek.setValue(int(stream_t * 1000))
            self.seek.blockSignals(False)
        if not self.seek.isSliderDown():
            self._show_time(stream_t)
        if self.state == "connecting":
            self._set_state("playing")
        self._frames_seen += 1
        now = time.monotonic()
        if now - self._fps_since >= 1.0:
            self._fps = self._frames_seen / (now - self._fps_since)
            self._frames_seen, self._fps_since = 0, now
            self.status_fps.setText(f"source {self._fps:.1f} fps")

    def _on_result(self, w: Window) -> None:
        if not self._current(self.sender()):
            return
        self.topk.show_scores(w.scores, w.labels)
        outs = w.outputs
        if "spatial_mask" in outs:
            self.video.set_mask(outs["spatial_mask"][-1])
        if "gap_variation" in outs:
            self.plot.show_values(
                "variation per gap (prompt counts below)", outs["gap_variation"], outs.get("gap_prompt_count")
            )
        elif "frame_weight" in outs:
            self.plot.show_values("frame weights", outs["frame_weight"])
        self._add_events(w.closed)
        self.ongoing = [self._record(e) for e in w.ongoing]
        self._show_events()
        self.video.repaint()
        e2e = time.monotonic() - w.captured_at
        self.latencies.append((w.inference_s, e2e))
        self.status_inf.setText(f"inference {w.inference_s * 1000:.0f} ms")
        self.status_e2e.setText(f"end-to-end {e2e * 1000:.0f} ms")
        self.windowShown.emit(w)

    def _on_boundary(self, boundary: Boundary, closed: list[Event]) -> None:
        if not self._current(self.sender()):
            return
        self._add_events(closed)
        self.ongoing = []
        self._show_events()
        self._clear_prediction()  # it was about frames before the end or the jump
        if boundary.reason == "loop":
            self._too_short()

    def _clear_prediction(self) -> None:
        self.topk.clear()
        self.video.set_mask(None)
        self.plot.show_values("", [])

    # ------------------------------------------------------------------------------------------- events
    def _record(self, event: Event) -> dict:
        return {**event.to_dict(), "source": self.source_path}

    def _add_events(self, events: list[Event]) -> None:
        self.event_rows.extend(self._record(e) for e in events)

    def _show_events(self) -> None:
        """The table = the ended events, then the ongoing ones (italic, end '…')."""
        table = self.table
        ended = len(self.event_rows)
        shown = self._shown_rows
        table.setRowCount(shown)  # drops the previous ongoing rows
        for record in self.event_rows[shown:]:
            self._insert_row(record, ongoing=False)
        for record in self.ongoing:
            self._insert_row(record, ongoing=True)
        self._shown_rows = ended
        if self.event_rows or self.ongoing:
            table.scrollToBottom()
        self.events_note.setText(f"{ended} ended" + (f", {len(self.ongoing)} ongoing" if self.ongoing else ""))
        self.eventsChanged.emit()

    def _insert_row(self, record: dict, ongoing: bool) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        texts = (
            record["label"],
            f"{record['start_s']:.2f}",
            "…" if ongoing else f"{record['end_s']:.2f}",
            f"{record['peak']:.2f}",
            source_name(record["source"]),
        )
        for col, text in enumerate(texts):
            item = QTableWidgetItem(text)
            item.setToolTip(
                record["source"] if col == 4 else (f"ongoing since {record['start_s']:.2f} s" if ongoing else text)
            )
            if col in (1, 2, 3):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if ongoing:
                font = item.font()
                font.setItalic(True)
                item.setFont(font)
                item.setForeground(QColor(110, 110, 110))
            self.table.setItem(row, col, item)

    def table_rows(self) -> list[list[str]]:
        """The events table as shown (ended rows, then ongoing rows), cell texts per row."""
        return [
            [self.table.item(r, c).text() for c in range(self.table.columnCount())]
            for r in range(self.table.rowCount())
        ]

    def clear_events(self) -> None:
        """Forget the ended events (the ongoing ones stay until they end)."""
        self.event_rows = []
        self._shown_rows = 0
        self._show_events()
        if self.banner.text().startswith("exported"):
            self.show_message("", error=False)

    def export_events(self, path: str | Path, fmt: str = "csv") -> Path:
        """Write the ended events (label, start_s, end_s, peak, source) to `export_path(path, fmt)`.
        Returns the path written (in one rename: a failed export leaves the previous file); raises OSError."""
        path, fmt = export_path(path, fmt)
        if not path.parent.is_dir():  # the writer would create it: a mistyped folder is an error here
            raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
        if fmt == "json":
            return atomic_write_json(path, self.event_rows)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(EVENT_COLUMNS))
        writer.writeheader()
        writer.writerows(self.event_rows)
        return atomic_write_text(path, text.getvalue())

    def _toggle_heatmap(self, on: bool) -> None:
        self.video.heatmap = on
        self.video.update()

    # ----------------------------------------------------------------------------------------- dialogs
    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open video", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.ts);;All (*)"
        )
        if path:
            self.open_source(path)

    def _ask_camera(self) -> None:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its probing warnings are noise
        found = []
        for i in range(5):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(str(i))
            cap.release()
        if not found:
            self.show_message("no camera found (indices 0-4)")
            return
        index, ok = QInputDialog.getItem(self, "Camera", "index", found, 0, False)
        if ok:
            self.open_source(index)

    def _ask_url(self) -> None:
        url, ok = QInputDialog.getText(self, "Stream", "RTSP/HTTP URL")
        if ok and url.strip():
            self.open_source(url.strip())

    def _ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.onnx *.engine config.json);;All (*)")
        if path:  # a run's or model folder's config.json stands for its folder (torch backend)
            self.open_model(str(Path(path).parent) if Path(path).name == "config.json" else path)

    def _ask_model_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a run directory or model folder (torch backend)")
        if path:
            self.open_model(path)

    def _ask_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export events", "events.csv", ";;".join(EXPORT_FILTERS))
        if not path:
            return
        fmt = EXPORT_FILTERS.get(chosen, "csv")
        target, _ = export_path(path, fmt)
        if target != Path(path) and target.exists():  # the dialog asked about the name typed, not this one
            answer = QMessageBox.question(self, "Export events", f"{target} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            written = self.export_events(path, fmt)
        except OSError as err:
            self.show_message(f"cannot export events to {path}: {err.strerror or err}")
            return
        note = f"; {len(self.ongoing)} ongoing not included" if self.ongoing else ""
        self.show_message(f"exported {plural(len(self.event_rows), 'event')} to {written}{note}", error=False)

    # ------------------------------------------------------------------------------------------- search
    def _focus_search(self) -> None:
        self.tabs.setCurrentWidget(self.search_tab)  # by identity: the last tab is Teach since it came
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def _search_encoder(self) -> TextEncoder | None:
        """The model's text encoder (opened once per model); None with the reason shown."""
        if self.recognizer is None:
            self.search_note.setText("open a model first")
            return None
        if not self._text_encoder_ok():
            self.search_note.setText(
                "search needs an exported model (.onnx or .engine) with its text encoder beside it"
            )
            return None
        if not self.recognizer.meta.fingerprint:
            self.search_note.setText("this model was exported before models carried a fingerprint: re-export it")
            return None
        if self._encoder is None:
            try:
                self._encoder = TextEncoder(
                    Path(self.model_path).parent / self.recognizer.meta.text_encoder, self.recognizer.meta.fingerprint
                )
            except MODEL_ERRORS as err:
                self.search_note.setText(str(err))
                return None
        return self._encoder

    def search(self, text: str) -> bool:
        """Find the moments matching `text`: in the open search index, or in the open video file (embedded on a
        thread the first time, with progress, then cached per video and model). Results appear in the Search
        tab and, for the open video, on the seek bar. Returns False when nothing could be searched (the reason
        is shown)."""
        text = text.strip()
        if not text:
            self.search_note.setText("type what to find, e.g. a person opening a valve")
            return False
        encoder = self._search_encoder()
        if encoder is None:
            return False
        if self.search_index is not None:
            self._show_hits(find(self.search_index, encoder, text), text)
            return True
        try:
            live = not self.source or SourceSpec.parse(self.source).live
        except SourceError:
            live = True
        if live:
            self.search_note.setText(
                "open a video file to search it (cameras and streams are not searched; "
                "a stop-search index can be: Search index…)"
            )
            return False
        video = Path(self.source_path)
        key = (self.recognizer.meta.fingerprint, str(video))
        index = self._embedded.get(key)
        if index is None or not index.up_to_date(video):
            index = cached_index(self.search_cache, key[0], video)
        if index is not None:
            self._embedded[key] = index
            self._show_hits(find(index, encoder, text), text)
            return True
        self._pending_query = text
        if self.embedder is None:
            self.embedder = VideoEmbedder(
                self.recognizer.backend, video, self.duration_s, cache_file(self.search_cache, key[0], video)
            )
            queued = Qt.ConnectionType.QueuedConnection
            self.embedder.progress.connect(self._on_embed_progress, queued)
            self.embedder.finished.connect(self._on_embedded, queued)
            self.embedder.failed.connect(self._on_embed_failed, queued)
            self.embedder.start()
        self.search_note.setText(f"reading {video.name} for search (once per video and model)…")
        return True

    def _on_embed_progress(self, fraction: float) -> None:
        if self.sender() is self.embedder:
            self.search_note.setText(f"reading {Path(self.embedder.path).name} for search: {100 * fraction:.0f} %")

    def _on_embedded(self, index: SearchIndex) -> None:
        if self.sender() is not self.embedder:
            return
        path = self.embedder.path
        self.embedder = None
        self._embedded[(index.fingerprint, str(path))] = index
        if self._pending_query and self.search_index is None and str(path) == self.source_path:
            self.search(self._pending_query)

    def _on_embed_failed(self, text: str) -> None:
        if self.sender() is self.embedder:
            self.embedder = None
            self.search_note.setText(text)

    def _cancel_embedding(self) -> None:
        if self.embedder is not None:
            self.embedder.cancel()
            self.embedder = None
            self.search_note.setText("")

    def _reset_search(self, keep_index: bool = True) -> None:
        """A new model: cached embeddings of the old one no longer apply (the disk cache is keyed by model)."""
        self._cancel_embedding()
        self._encoder = None
        if not keep_index:
            self.open_search_index(None)
        self._show_hits([])

    def open_search_index(self, path: str | Path | None) -> bool:
        """Search a `stop-search` index instead of the open video (None: back to the open video). The index must
        have been built with the open model."""
        if path is None:
            self.search_index = None
            self.search_scope.setText("searching: the open video")
            self.search_close_index.hide()
            self._show_hits([])
            return True
        try:
            index = SearchIndex.load(path)
            if self.recognizer is None:
                raise SearchIndexError("open the model the index was built with first")
            index.check_model(self.recognizer.meta, Path(self.model_path).name)
        except SearchIndexError as err:
            self.search_note.setText(str(err))
            return False
        self.search_index = index
        self.search_scope.setText(
            f"searching: index {Path(path).name} ({plural(len(index.videos), 'video')}, "
            f"{plural(len(index.embedding), 'window')})"
        )
        self.search_close_index.show()
        self.search_note.setText("")
        self._show_hits([])
        return True

    def _show_hits(self, hits: list[dict], text: str = "") -> None:
        self.search_hits = hits
        self.search_list.clear()
        several = self.search_index is not None
        for hit in hits:
            for moment in hit["moments"]:
                where = f"{fmt_time(moment['start'])}–{fmt_time(moment['end'])}"
                label = f"{where}  {moment['score']:.3f}" + (f"  {Path(hit['video']).name}" if several else "")
                item = QListWidgetItem(label)
                item.setToolTip(f"{hit['video']}\n{where}, score {moment['score']:.3f}")
                item.setData(Qt.ItemDataRole.UserRole, (hit["video"], moment["start"]))
                self.search_list.addItem(item)
        if text:
            count = sum(len(h["moments"]) for h in hits)
            self.search_note.setText(
                f"{plural(count, 'moment')} for “{text}”" if count else f"nothing found for “{text}”"
            )
        self._mark_hits()

    def _mark_hits(self) -> None:
        """The hits in the open video, as spans on the seek bar."""
        spans = [
            (m["start"], m["end"]) for h in self.search_hits if h["video"] == self.source_path for m in h["moments"]
        ]
        self.seek.set_marks([(int(a * 1000), int(b * 1000)) for a, b in spans])

    def _jump_to_hit(self, item: QListWidgetItem) -> None:
        video, start = item.data(Qt.ItemDataRole.UserRole)
        if video == self.source_path and self.seek.isEnabled():
            self.seek_to(start)
        elif video != self.source_path:
            self._seek_after_open = start
            self.open_source(video)

    def _ask_index(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a stop-search index", "", "stop-search index (*.json)")
        if path:
            self.open_search_index(path)
            self._focus_search()

    def closeEvent(self, event) -> None:  # noqa: N802
        self._closing = True
        self._cancel_embedding()
        self.stop_pipeline()
        self._save()
        super().closeEvent(event)
