"""The Teach tab: teach the loaded model new classes from examples of the open video (a marked time range) or
of the camera (the next N seconds), kept in a label bank (`stop_export.runtime.bank`) that is saved at once
and reloaded with the model; classes and examples are listed and can be removed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from stop_export.runtime.bank import BankError, Example, LabelBank, class_name
from stop_export.runtime.errors import BackendError, RecognizeError
from stop_export.runtime.examples import embed_example, embed_recording, min_example_s, now
from stop_export.runtime.files import pair_lock
from stop_train.atomic import Busy, exclusive

TEACH_ERRORS = (BankError, BackendError, RecognizeError, OSError, ValueError, RuntimeError)


def default_bank_dir() -> Path:
    """Where the app keeps a bank per model (by fingerprint, so an ONNX file and its engines share it)."""
    return (
        Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation))
        / "stop-toolkit"
        / "banks"
    )


class TeachTab(QWidget):
    """`host` is the main window: its `recognizer`, `model_path`, `source`, `source_path` (the open file, '' for
    a camera or stream), `frame_t`, `show_message(text, error)` and `_in_background(work, message)`.

    Scripting surface (tests): `add_range`, `record`, `remove`, `open_bank`; `bank`, `bank_path`."""

    def __init__(self, host, settings: QSettings):
        super().__init__()
        self.host, self.settings = host, settings
        self.bank_dir = default_bank_dir()
        self.bank: LabelBank | None = None
        self.bank_path: Path | None = None
        self._recording: dict | None = None
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("class name, e.g. opening a valve")
        self.text_box = QCheckBox("use the name as a text prompt")
        self.text_box.setChecked(True)
        self.text_box.setToolTip("off: an example-only class (for actions that are hard to name)")
        self.start_box, self.end_box = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.start_box, self.end_box):
            box.setDecimals(2)
            box.setSuffix(" s")
            box.setRange(0.0, 1e6)
        self.mark_start = QPushButton("Mark start")
        self.mark_start.clicked.connect(lambda: self.start_box.setValue(self.host.frame_t or 0.0))
        self.mark_end = QPushButton("Mark end")
        self.mark_end.clicked.connect(lambda: self.end_box.setValue(self.host.frame_t or 0.0))
        self.add_button = QPushButton("Add range")
        self.add_button.clicked.connect(
            lambda: self.add_range(
                self.name_edit.text(), self.start_box.value(), self.end_box.value(), self.text_box.isChecked()
            )
        )
        self.seconds_box = QDoubleSpinBox()
        self.seconds_box.setRange(0.5, 60.0)
        self.seconds_box.setValue(3.0)
        self.seconds_box.setSuffix(" s")
        self.record_button = QPushButton("Record")
        self.record_button.setToolTip("add the next seconds of the camera (or of the playing video) as an example")
        self.record_button.clicked.connect(
            lambda: self.record(self.name_edit.text(), self.seconds_box.value(), self.text_box.isChecked())
        )
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["class / example", "range"])
        self.tree.setColumnWidth(0, 220)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        self.open_button = QPushButton("Open bank…")
        self.open_button.clicked.connect(self._ask_bank)
        self.note = QLabel("")
        self.note.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.text_box)
        grid = QGridLayout()
        grid.addWidget(self.mark_start, 0, 0)
        grid.addWidget(self.start_box, 0, 1)
        grid.addWidget(self.mark_end, 0, 2)
        grid.addWidget(self.end_box, 0, 3)
        grid.addWidget(self.add_button, 0, 4)
        grid.addWidget(QLabel("record next:"), 1, 0)
        grid.addWidget(self.seconds_box, 1, 1)
        grid.addWidget(self.record_button, 1, 2)
        layout.addLayout(grid)
        layout.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addWidget(self.note, 1)
        row.addWidget(self.remove_button)
        row.addWidget(self.open_button)
        layout.addLayout(row)
        self.setEnabled(False)

    # ------------------------------------------------------------------------------------------ the bank
    @property
    def usable(self) -> bool:
        """A bank needs the model's fingerprint (exported models carry one)."""
        rec = self.host.recognizer
        return rec is not None and bool(rec.meta.fingerprint)

    def load_for_model(self) -> None:
        """Called when a model was opened: its bank (the one last opened for this model, else the app's own for
        its fingerprint) is loaded and its classes join the predictions."""
        rec = self.host.recognizer
        self._recording = None
        self.bank, self.bank_path = None, None
        fingerprint = rec.meta.fingerprint if rec is not None else ""
        self.setEnabled(self.usable)
        if not self.usable:
            self.note.setText("teaching needs an exported model (.onnx or .engine) with a fingerprint")
            self._show()
            return
        need = min_example_s(rec.meta.sampling)
        self.seconds_box.setMinimum(max(0.5, math.ceil(need * 2) / 2))  # whole or half seconds, >= one clip
        remembered = self.settings.value(f"bank/{fingerprint}", "")
        path = Path(remembered) if remembered else self.bank_dir / f"{fingerprint}.json"
        try:
            self.bank = LabelBank.open(path, rec.meta, self.host.model_path, create=True)
        except BankError as err:
            self.host.show_message(f"label bank not used: {err}")
            self.bank = LabelBank(fingerprint, self.host.model_path)
            path = self.bank_dir / f"{fingerprint}.json"
        self.bank_path = path
        if self.bank.classes:
            rec.set_bank(self.bank)
        self._show()

    def open_bank(self, path: str | Path) -> bool:
        """Use a bank file (e.g. one made with stop-teach) for this model from now on; refused for another model."""
        rec = self.host.recognizer
        if rec is None:
            self.host.show_message("open a model first")
            return False
        try:
            bank = LabelBank.load(path)
            rec.set_bank(bank)
        except BankError as err:
            self.host.show_message(str(err))
            return False
        self.bank, self.bank_path = bank, LabelBank.paths(Path(path).resolve())[0]
        self.settings.setValue(f"bank/{rec.meta.fingerprint}", str(self.bank_path))
        self._show()
        self.host.show_message(f"label bank {self.bank_path.name}: {len(bank.classes)} class(es)", error=False)
        return True

    def _ask_bank(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a label bank", "", "label banks (*.json)")
        if path:
            self.open_bank(path)

    # ---------------------------------------------------------------------------------------- teaching
    def add_range(self, name: str, start_s: float, end_s: float, text: bool = True) -> bool:
        """Teach `name` the range [start_s, end_s] of the open video file. False (with the reason shown) when
        there is no file open, the range is empty or the name is missing."""
        path = self.host.source_path
        if not self._ready(name):
            return False
        if not path:
            self.host.show_message("a range needs a video file open; for a camera use Record")
            return False
        if not end_s > start_s:
            self.host.show_message(f"mark a range first: it ends ({end_s:.2f} s) before it starts ({start_s:.2f} s)")
            return False
        source, k = str(Path(path).resolve()), self.bank.find(name.strip())
        if k is not None and any(
            (e.source, e.start_s, e.end_s) == (source, round(start_s, 3), round(end_s, 3))
            for e in self.bank.classes[k].examples
        ):
            self.host.show_message(
                f"{start_s:.2f}-{end_s:.2f} s of {Path(path).name} is already an example of {name.strip()!r}"
            )
            return False
        backend = self.host.recognizer.backend
        return self._add(
            name,
            text,
            lambda: embed_example(backend, path, start_s, end_s),
            Example(source, round(start_s, 3), round(end_s, 3), now()),
        )

    def record(self, name: str, seconds: float, text: bool = True) -> bool:
        """Teach `name` the next `seconds` of the playing source (a camera, a stream or a file)."""
        if not self._ready(name):
            return False
        if not self.host.source or self.host.state not in ("playing", "connecting"):
            self.host.show_message("start a camera (or play a video) to record an example")
            return False
        need = min_example_s(self.host.recognizer.meta.sampling)
        if seconds < need:
            self.host.show_message(f"record at least {need:.1f} s: one example fills one clip of the model")
            return False
        self._recording = {"name": name.strip(), "text": text, "seconds": seconds, "times": [], "frames": []}
        self.record_button.setEnabled(False)
        self.note.setText(f"recording {seconds:.1f} s for {name.strip()!r}…")
        return True

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def on_frame(self, frame: np.ndarray, t: float) -> None:
        """Each displayed frame (the window's): collected while recording; the example is added when done."""
        rec = self._recording
        if rec is None:
            return
        if rec["times"] and t <= rec["times"][-1]:  # a seek or a loop: start again from here
            rec["times"], rec["frames"] = [], []
        rec["times"].append(t)
        rec["frames"].append(_small(frame, self.host.recognizer.preprocess.size))
        if t - rec["times"][0] < rec["seconds"]:
            self.note.setText(f"recording {t - rec['times'][0]:.1f} / {rec['seconds']:.1f} s for {rec['name']!r}…")
            return
        self._recording = None
        self.record_button.setEnabled(True)
        backend = self.host.recognizer.backend
        times, frames = np.asarray(rec["times"]), rec["frames"]
        self._add(
            rec["name"],
            rec["text"],
            lambda: embed_recording(backend, times, frames),
            Example(self.host.source, round(float(times[0]), 3), round(float(times[-1]), 3), now()),
        )

    def cancel_recording(self, why: str = "recording stopped with the source: nothing was added") -> None:
        if self._recording is not None:
            self._recording = None
            self.record_button.setEnabled(True)
            self.note.setText(why)

    def remove(self, name: str, example: int | None = None) -> bool:
        """Remove class `name` or its `example`-th example (0-based); saved at once."""
        try:
            self._change(lambda bank: bank.remove(name, example))
        except (BankError, OSError, Busy, AttributeError) as err:
            self.host.show_message(str(err) if self.bank is not None else "open a model first")
            return False
        self.host.recognizer.set_bank(self.bank)
        self._show()
        gone = self.bank.find(name) is None
        what = f"example {example + 1} of {name!r}" if example is not None else repr(name)
        self.host.show_message(
            f"removed {what}"
            + (" and the class (it had no text and no example left)" if gone and example is not None else ""),
            error=False,
        )
        return True

    def _remove_selected(self) -> None:
        item = self.tree.currentItem()
        if item is None:
            self.host.show_message("select a class or an example to remove")
            return
        name, example = item.data(0, Qt.ItemDataRole.UserRole)
        self.remove(name, example)

    def _ready(self, name: str) -> bool:
        if self.host.recognizer is None or self.bank is None:
            self.host.show_message("open an exported model first")
            return False
        try:
            class_name(name)
        except BankError as err:
            self.host.show_message(str(err) if name.strip() else "name the class first")
            return False
        if self._recording is not None:
            self.host.show_message("a recording is under way")
            return False
        return True

    def _add(self, name: str, text: bool, embed, example: Example) -> bool:
        name = name.strip()
        rec, bank = self.host.recognizer, self.bank
        new_text = text and bank.find(name) is None
        prompt = rec.prompts([name])[0] if new_text else ""

        def work():
            return embed(), rec.embed_labels([name])[0] if new_text else None

        try:
            emb, text_emb = self.host._in_background(work, f"embedding an example of {name!r}…")
        except TEACH_ERRORS as err:
            self.host.show_message(f"cannot teach {name!r}: {err}")
            return False
        if rec is not self.host.recognizer or bank is not self.bank:
            return False  # the model changed meanwhile
        try:
            bank = self._change(lambda b: b.add_clips(name, [emb], [example], prompt, text_emb))
        except (BankError, OSError, Busy) as err:
            self.host.show_message(f"{name!r} was not taught: the bank {self.bank_path} cannot be changed: {err}")
            return False
        rec.set_bank(bank)
        self._show()
        count = len(bank.classes[bank.find(name)].examples)
        self.host.show_message(f"taught {name!r}: {count} example{'' if count == 1 else 's'}", error=False)
        return True

    def _change(self, apply) -> LabelBank:
        """`apply(bank)` to the bank as it is on disk now (a stop-teach may have changed it since the app opened
        it), under the bank's lock (`stop-teach` holds the same), then saved; it becomes the tab's bank. Raises
        Busy while a stop-teach is changing it, BankError, OSError."""
        lock = pair_lock(self.bank_path)
        with exclusive(
            lock, busy=f"a stop-teach is changing {self.bank_path.name} now (lock {lock}): try again when it is done"
        ):
            bank = LabelBank.open(self.bank_path, self.host.recognizer.meta, self.host.model_path, create=True)
            apply(bank)
            bank.tuned = None  # tuned for the classes it had
            bank.save(self.bank_path)
        self.bank = bank
        return bank

    def _show(self) -> None:
        self.tree.clear()
        bank = self.bank
        if bank is None:
            return
        for cls in bank.classes:
            kind = "" if cls.text else " (example-only)"
            top = QTreeWidgetItem(
                [f"{cls.name}{kind}", f"{len(cls.examples)} example{'' if len(cls.examples) == 1 else 's'}"]
            )
            top.setData(0, Qt.ItemDataRole.UserRole, (cls.name, None))
            for i, ex in enumerate(cls.examples):
                child = QTreeWidgetItem([Path(ex.source).name or ex.source, f"{ex.start_s:.2f}-{ex.end_s:.2f} s"])
                child.setToolTip(0, ex.source)
                child.setData(0, Qt.ItemDataRole.UserRole, (cls.name, i))
                top.addChild(child)
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        where = f"bank: {self.bank_path}" if self.bank_path else ""
        rec = self.host.recognizer
        scored = f"; scored by {rec.scoring}" if rec is not None and rec.bank is bank else ""
        self.note.setText(
            f"{len(bank.classes)} taught class(es); {where}{scored}"
            if bank.classes
            else "no taught classes yet: name one, mark a range (or record), add"
        )
        self.note.setToolTip("\n".join(rec.notes) if rec is not None else "")


def _small(frame: np.ndarray, size: int) -> np.ndarray:
    """A frame with its short side brought to `size` (what pre-processing would do first): a recording keeps
    seconds of frames without holding them at camera resolution."""
    from stop_train.video.preprocess import resize_short_side

    return resize_short_side(frame[None], size)[0]
