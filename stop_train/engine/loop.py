"""The training loop: one process or torchrun, resumable, validation-selected best checkpoint, test at the end."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..config import ModelConfig
from ..errors import ConfigError, TrainingError
from ..labels import label_texts
from ..model import create_model, dead_parameters
from ..model.factory import model_fingerprint
from ..model.weights import CheckpointError, load_weights
from ..rundir import LABELS_FILE, RunDir, append_row, read_labels
from ..statistics import STATISTICS_FILE, FrameStatistics, StatisticsError
from .checkpoint import WEIGHTS, link_checkpoint, load_checkpoint, rewrite_state, save_checkpoint, usable, write_json
from .config import TrainConfig
from .data import ClipDataset, collate
from .distributed import all_reduce_mean, barrier, init_distributed
from .evaluation import evaluate, frame_statistics, progress_bar
from .metrics import confusion_matrix
from .optim import build_optimizer, epoch_batches, lr_factor, precision_context, resolve_device
from .report import write_confusion_png
from .retrieval import evaluate_retrieval, gather_batch, symmetric_ce
from .setup import VAL_COLUMNS, RunData, prepare_data, tensorboard_writer, write_run_files, write_skipped

log = logging.getLogger(__name__)


def csv_fields(task: str) -> list[str]:
    """metrics.csv columns of a run of `task`."""
    return ["epoch", "step", "train_loss", "lr", *(f"val_{k}" for k in VAL_COLUMNS[task]), "clips_per_s", "elapsed_s"]


class Trainer:
    """Holds what one run needs; `fit()` trains, `test()` evaluates the chosen checkpoint.

    `model_cfg` is the run's one ModelConfig (`setup.new_run_config` for a new run, `read_run_config` after);
    `start` is 'new' (loads `cfg.pretrained`, writes config.json and labels.txt, once), 'resume' (weights
    come from `restore`) or 'eval' (weights come from `test`; writes only the metrics; only `eval_split` is
    probed).
    """

    def __init__(
        self, cfg: TrainConfig, model_cfg: ModelConfig, run_dir: Path, start: str = "new", eval_split: str | None = None
    ):
        if start not in ("new", "resume", "eval"):
            raise ValueError(f"start must be new, resume or eval, got {start!r}")
        self.cfg, self.model_cfg, self.run_dir = cfg, model_cfg, run_dir
        self.run = RunDir(run_dir)
        self.dist = init_distributed("cuda" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        self.device = resolve_device(cfg.device, self.dist)
        self.main = self.dist.is_main
        torch.manual_seed(cfg.seed + self.dist.rank)
        random.seed(cfg.seed + self.dist.rank)
        self.data: RunData = prepare_data(cfg, model_cfg, run_dir.parent, self.dist, only=eval_split)
        pretrained = cfg.pretrained if start == "new" and cfg.pretrained not in ("", "none") else None
        model = create_model(model_cfg, pretrained=pretrained)
        if model.cfg != model_cfg:  # the run's config was resolved for other weights: say so, never drift
            raise ConfigError(
                f"the weights {pretrained} need a different model config than the run's "
                f"(quick_gelu {model.cfg.quick_gelu} vs {model_cfg.quick_gelu})"
            )
        self.model = model.to(self.device)
        self.net = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            dead = bool(dead_parameters(self.model.cfg))  # parameters that never get a gradient
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=dead
            )
        self.retrieval = cfg.task == "retrieval"
        # recognition: one prompt per class; retrieval: every caption of each split, tokenized once
        self.text_ids = None if self.retrieval else self.model.tokenize(label_texts(self.data.classes, cfg.template))
        self.caption_ids = {s: self.model.tokenize(texts) for s, (texts, _) in self.data.captions.items()}
        self.autocast, self.scaler = precision_context(cfg.precision, self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        per_rank = max(1, -(-len(self.data.train) // self.dist.world))  # ceil
        batches = -(-per_rank // cfg.batch_size)
        self.total_steps = cfg.epochs * -(-batches // cfg.grad_accum)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, cfg.warmup)
        )
        # best_score: the first VAL_COLUMNS figure of the task (val top-1, or text->video R@1)
        self.state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_score": -1.0, "best_epoch": -1}
        if self.main and start != "eval":
            if start == "new":
                write_run_files(cfg, model_cfg, run_dir, self.data)
            write_skipped(run_dir, self.data)
            self.data.writer = tensorboard_writer(run_dir)

    @property
    def chosen(self) -> str:
        """The checkpoint a run reports and exports: `best` by validation, `last` without validation."""
        return self.run.chosen()

    # ------------------------------------------------------------------------------ checkpoints
    def save(self, name: str) -> None:
        if not self.main:
            return
        save_checkpoint(self.run.checkpoints / name, self.model, self.model.cfg, self._trainer_state())

    def _trainer_state(self) -> dict:
        return {
            **self.state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": self.cfg.to_dict(),
        }

    def restore(self, folder: Path) -> None:
        _, state = load_checkpoint(folder, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if "best_score" not in state:  # checkpoints written before retrieval existed
            state["best_score"] = state["best_top1"]
        self.state = {k: state[k] for k in self.state}
        log.info("resumed from %s at epoch %d, step %d", folder, self.state["epoch"], self.state["step"])
        if Path(folder).name == "last" and self.main:
            self._link_best_if_missed(Path(folder))

    def _link_best_if_missed(self, last: Path) -> None:
        """A run stopped (full disk, kill) after `last`'s state recorded that its epoch is the best but before
        it was linked as `best`: link it now, so `best` holds what the state says."""
        if self.state["best_epoch"] < 0 or self.state["best_epoch"] + 1 != self.state["epoch"]:
            return
        best = self.run.checkpoints / "best"
        try:
            _, state = load_checkpoint(best)
            if state.get("epoch") == self.state["epoch"]:
                return
        except (FileNotFoundError, CheckpointError):
            pass
        log.warning(
            "%s is the best epoch (%d) but was not linked as %s when the run stopped: linking it now",
            last,
            self.state["epoch"],
            best,
        )
        link_checkpoint(last, best)

    # ---------------------------------------------------------------------------------- training
    def fit(self) -> None:
        """Train the remaining epochs. Each epoch's weights reach `checkpoints/last` before validation runs,
        so a failure in validation loses no training; a better validation top-1 links them as `best`."""
        cfg = self.cfg
        if self.data.val is None and self.main:
            log.warning(
                "no validation split (--val-fraction %s gave none): training without validation; the "
                "chosen checkpoint is the last epoch's (checkpoints/last)",
                cfg.val_fraction,
            )
        start = time.time()
        while self.state["epoch"] < cfg.epochs:
            epoch = self.state["epoch"]
            loss, clips_per_s, stopped = self._train_epoch(epoch)
            if stopped:
                return
            self.state.update(epoch=epoch + 1, batch_in_epoch=0)
            self.save("last")
            metrics = None
            if self.data.val is not None:
                metrics = self._validate()
                score = metrics[VAL_COLUMNS[cfg.task][0]]
                improved = score > self.state["best_score"]
                if improved:
                    self.state.update(best_score=score, best_epoch=epoch)
                if self.main:  # last's state learns the validation result first (the weights are already there),
                    rewrite_state(self.run.checkpoints / "last", self._trainer_state())
                    if improved:  # then becomes best; a failure in between is repaired on resume (`restore`)
                        link_checkpoint(self.run.checkpoints / "last", self.run.checkpoints / "best")
            self._log_epoch(epoch, loss, metrics, clips_per_s, time.time() - start)
        barrier(self.dist)

    def _validate(self) -> dict[str, float]:
        """The validation figures of the task (VAL_COLUMNS), one view per video."""
        cfg, val = self.cfg, self.data.val
        if self.retrieval:
            return evaluate_retrieval(
                self.model,
                val,
                self.caption_ids["val"],
                self.data.captions["val"][1],
                self.device,
                self.autocast,
                self.dist,
                cfg.batch_size,
                cfg.workers,
            )
        return evaluate(
            self.model, val, self.text_ids, self.device, self.autocast, self.dist, cfg.batch_size, cfg.workers
        )[0]

    def _train_epoch(self, epoch: int) -> tuple[float, float, bool]:
        cfg = self.cfg
        self.data.train.epoch = epoch
        batches = epoch_batches(len(self.data.train), cfg.batch_size, cfg.seed, epoch, self.dist)
        skip = self.state["batch_in_epoch"]
        # the loader gets its own generator: creating it must not consume the global RNG, or a resumed run's
        # dropout masks would differ from an uninterrupted one's
        loader = DataLoader(
            self.data.train,
            batch_sampler=batches[skip:],
            num_workers=cfg.workers,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )
        self.net.train()
        losses, clips, t0 = [], 0, time.time()
        bar = progress_bar(loader, self.main, f"epoch {epoch + 1}/{cfg.epochs}", total=len(batches) - skip)
        for i, batch in enumerate(bar, start=skip):
            if batch is not None:
                x, y, idx = batch
                with self.autocast():
                    if self.retrieval:
                        video, text = self.net(
                            x.to(self.device), self.caption_ids["train"][idx].to(self.device), embeddings=True
                        )
                        loss = symmetric_ce(
                            gather_batch(video, self.dist), gather_batch(text, self.dist), self.model.logit_scale
                        )
                    else:
                        logits = self.net(x.to(self.device), self.text_ids.to(self.device))
                        loss = F.cross_entropy(logits.float(), y.to(self.device), label_smoothing=cfg.label_smoothing)
                if not torch.isfinite(loss.detach()):  # nothing is saved from here: last keeps finite weights
                    kept = (
                        "checkpoints/last keeps the weights saved before it"
                        if (self.run.checkpoints / "last").is_dir()
                        else "no checkpoint was saved"
                    )
                    raise TrainingError(
                        f"the training loss is {loss.item()} at step {self.state['step'] + 1} (epoch "
                        f"{epoch + 1}, batch {i + 1}): training stopped; {kept} (lower --lr, or check "
                        "the data)"
                    )
                self.scaler.scale(loss / cfg.grad_accum).backward()
                losses.append(loss.item())
                clips += len(y)
            self.state["batch_in_epoch"] = i + 1
            if (i + 1) % cfg.grad_accum == 0 or i + 1 == len(batches):
                self._step()
                if self.main and hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}", clips_s=f"{clips / (time.time() - t0):.1f}")
                if cfg.save_every and self.state["step"] % cfg.save_every == 0:
                    self.save("last")
                if cfg.max_steps and self.state["step"] >= cfg.max_steps:
                    self.save("last")
                    return float(np.mean(losses)) if losses else float("nan"), 0.0, True
        loss = all_reduce_mean(float(np.mean(losses)) if losses else float("nan"), self.dist, self.device)
        return loss, clips * self.dist.world / max(1e-9, time.time() - t0), False

    def _step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.state["step"] += 1

    def _log_epoch(self, epoch, loss, metrics, clips_per_s, elapsed) -> None:
        if not self.main:
            return
        val = {f"val_{k}": f"{metrics[k]:.4f}" if metrics else "" for k in VAL_COLUMNS[self.cfg.task]}
        row = {
            "epoch": epoch + 1,
            "step": self.state["step"],
            "train_loss": f"{loss:.4f}",
            "lr": f"{self.scheduler.get_last_lr()[0]:.3e}",
            **val,
            "clips_per_s": f"{clips_per_s:.2f}",
            "elapsed_s": f"{elapsed:.1f}",
        }
        append_row(self.run_dir / "metrics.csv", csv_fields(self.cfg.task), row)
        self.data.tensorboard(epoch + 1, loss, metrics)
        if metrics:
            log.info(
                "epoch %d: loss %.4f, val %s, %.1f clips/s",
                epoch + 1,
                loss,
                " ".join(f"{k} {metrics[k]:.3f}" for k in VAL_COLUMNS[self.cfg.task]),
                clips_per_s,
            )
        else:
            log.info("epoch %d: loss %.4f (no validation), %.1f clips/s", epoch + 1, loss, clips_per_s)

    # ---------------------------------------------------------------------------------- testing
    def _checkpoint_folder(self, checkpoint: str | Path | None) -> Path:
        """A name under `checkpoints/` (default the chosen one) or a model folder; raises FileNotFoundError."""
        checkpoint = checkpoint or self.chosen
        folder = Path(checkpoint) if isinstance(checkpoint, Path) else self.run.checkpoints / checkpoint
        folder = usable(folder) or folder  # NAME.old: a crash between a save's two renames
        if not (folder / WEIGHTS).is_file():
            found = sorted(p.parent.name for p in folder.parent.glob("*/" + WEIGHTS)) if folder.parent.is_dir() else []
            raise FileNotFoundError(f"no checkpoint {folder} (found: {', '.join(found) or 'none'})")
        return folder

    def write_statistics(self, checkpoint: str | Path | None = None) -> tuple[Path, FrameStatistics]:
        """Class statistics of a checkpoint (default the chosen one) over the training videos, with the test
        views, written beside its weights (`STATISTICS_FILE`, which stop-export carries for label banks).
        Raises StatisticsError (fewer than two classes), FileNotFoundError (no such checkpoint)."""
        folder = self._checkpoint_folder(checkpoint)
        labels = folder.parent.parent / LABELS_FILE  # the run of a checkpoint folder (`checkpoints/NAME`)
        own = read_labels(labels) if labels.is_file() else None
        if own is not None and own != list(self.data.classes):
            raise StatisticsError(
                f"the data's classes ({', '.join(self.data.classes[:6])}"
                f"{', ...' if len(self.data.classes) > 6 else ''}) are not the run's ({labels}): "
                "give the data root the run was trained on"
            )
        train = self.data.train
        seen = {item.label for item in train.items}
        if len(seen) < 2:
            raise StatisticsError(
                f"class statistics need training videos of at least two classes; the data has {len(seen)}"
            )
        self.model.load_state_dict(load_weights(folder / WEIGHTS))
        dataset = ClipDataset(train.items, train.infos, self.data.sampling, self.data.preprocess, train=False)
        stats = frame_statistics(
            self.model,
            dataset,
            self.data.classes,
            self.device,
            self.autocast,
            self.dist,
            max(1, self.cfg.batch_size // 2),
            self.cfg.workers,
            progress=self.main,
        )
        stats.fingerprint = model_fingerprint(self.model)  # the weights they belong to (what stop-export records)
        if self.main:
            stats.save(folder / STATISTICS_FILE)
        return folder / STATISTICS_FILE, stats

    def test(
        self, split: str, checkpoint: str | Path | None = None, out_dir: Path | None = None, tag: str = ""
    ) -> dict[str, float]:
        """Evaluate a checkpoint (a name under `checkpoints/`, default the chosen one, or a model folder) on a
        split with the test views; writes `<split>_metrics<tag>.json` and a confusion PNG into `out_dir` (the
        run)."""
        checkpoint = checkpoint or self.chosen
        folder = self._checkpoint_folder(checkpoint)
        self.model.load_state_dict(load_weights(folder / WEIGHTS))
        dataset = self.data.split(split)
        out_dir = out_dir or self.run_dir
        about = {
            "split": split,
            "checkpoint": str(checkpoint),
            "test_clips": self.cfg.test_clips,
            "test_crops": self.cfg.test_crops,
            "skipped_videos": len(self.data.skipped),
        }
        if self.retrieval:
            metrics = evaluate_retrieval(
                self.model,
                dataset,
                self.caption_ids[split],
                self.data.captions[split][1],
                self.device,
                self.autocast,
                self.dist,
                max(1, self.cfg.batch_size // 2),
                self.cfg.workers,
                progress=(lambda it: progress_bar(it, True, "eval")) if self.main else None,
                with_dual_softmax=self.cfg.dual_softmax,
            )
            if self.main:
                write_json(out_dir / f"{split}_metrics{tag}.json", {**metrics, **about})
            return metrics
        metrics, scores, labels = evaluate(
            self.model,
            dataset,
            self.text_ids,
            self.device,
            self.autocast,
            self.dist,
            max(1, self.cfg.batch_size // 2),
            self.cfg.workers,
            progress=self.main,
        )
        if self.main:
            cm = confusion_matrix(labels, scores.argmax(1), len(self.data.classes)) if len(labels) else None
            write_json(out_dir / f"{split}_metrics{tag}.json", {**metrics, **about})
            if cm is not None:
                write_confusion_png(cm, self.data.classes, out_dir / f"confusion_{split}{tag}.png")
        return metrics
