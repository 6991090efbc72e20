"""Few-shot learning check: teach a model the actions it was not trained on, from K examples each (label bank).

    .venv/bin/python benchmarks/few_shot_check.py [--epochs 18] [--draws 10] [--runs-root runs/few-shot-check]

For each of synthetic-motion's three time-reversed class pairs in turn, `tiny` is trained from scratch (fold 1)
on the other four classes, then exported to ONNX. Every video is embedded once through ONNX Runtime as one
example is (`bank.example_views`: one clip under the metadata's eval sampling). Then, for K = 1, 2, 5 examples
per held-out class (drawn from the fold's training groups, `--draws` draws), the fold's test videos of all six
classes are scored over all six class names:

- text only: every class from its name through the exported text encoder (today's re-labelling);
- bank: the same, plus the K examples of each held-out class in a label bank (`LabelBank`, Tip-Adapter cache).

Top-1 is reported on the held-out classes' test videos and on the trained classes' test videos, for a grid of
(alpha, beta); the bank's defaults are the grid point with the best mean held-out top-1 at K = 5 among those
that keep the trained classes within 2 points of text only. Targets (issue 15): held-out >= 80 % at K = 5
(mean over the three pairs); trained classes within 2 points of text only.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from stop_train.data.synthetic import CLASSES, PAIRS, SyntheticSpec, write_synthetic_motion

TRAIN_GROUPS = range(4, 10)  # fold 1 tests on groups 1-3
ALPHAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
BETAS = (1.0, 3.0, 5.5, 8.0, 12.0)
SHOTS = (1, 2, 5)
WHITE_ALPHAS = (4.0, 8.0, 16.0, 32.0, 64.0)  # a candidate: the cache in whitened space (see `whitening`)
WHITE_BETAS = (3.0, 5.5, 8.0, 12.0, 20.0)
SHRINK = 0.01  # covariance shrinkage towards its mean variance
LEARNED = 90.0  # text-only top-1 (%) on its trained classes below which a pair's model is left out of the choice


def videos_of(data: Path, cls: str, groups) -> list[Path]:
    return sorted(p for g in groups for p in (data / "UCF-101" / cls).glob(f"v_{cls}_g{g:02d}_c*.avi"))


def train_and_export(pair: int, data: Path, root: Path, args) -> Path:
    """Train tiny on the four classes outside PAIRS[pair]; returns the exported ONNX file."""
    from stop_export.cli import export_main
    from stop_train.cli import main as stop_train

    run_dir = root / f"without-{'-'.join(PAIRS[pair])}"
    onnx = run_dir / "export" / "model.onnx"
    if onnx.is_file():
        return onnx
    kept = [c for c in CLASSES if c not in PAIRS[pair]]
    lists = root / f"lists-{pair}"
    lists.mkdir(parents=True, exist_ok=True)
    for split, groups in (("train", TRAIN_GROUPS), ("test", range(1, 4))):
        rows = [f"{p.relative_to(data)} {c}" for c in kept for p in videos_of(data, c, groups)]
        (lists / f"{split}.txt").write_text("\n".join(rows) + "\n")
    code = stop_train(["--dataset", "list", "--data-root", str(data), "--train-list", str(lists / "train.txt"),
                       "--test-list", str(lists / "test.txt"), "--val-fraction", "0", "--no-flip-safe",
                       "--preset", "tiny", "--pretrained", "none", "--epochs", str(args.epochs), "--batch-size", "8",
                       "--workers", "1", "--lr", "3e-4", "--decay-exclude", "bias-norm-prompt",
                       "--run-dir", str(run_dir)])
    if code != 0:
        raise SystemExit(f"pair {pair}: stop-train exited with {code}")
    if export_main([str(run_dir)]) != 0:
        raise SystemExit(f"pair {pair}: stop-export failed")
    return onnx


def embed_all(onnx: Path, data: Path, cache: Path) -> dict[str, np.ndarray]:
    """Example embedding (E,) of every video, by class-relative path; cached beside the model."""
    from stop_export.runtime.backends import open_backend
    from stop_export.runtime.bank import embed_example

    if cache.is_file():
        arrays = np.load(cache)
        return {k: arrays[k] for k in arrays.files}
    backend = open_backend(onnx, "cpu", threads=2)
    out = {}
    for path in sorted((data / "UCF-101").glob("*/*.avi")):
        out[f"{path.parent.name}/{path.name}"] = embed_example(backend, path)
    np.savez(cache, **out)
    return out


def frame_tokens_all(run_dir: Path, onnx: Path, data: Path, cache: Path) -> dict[str, np.ndarray]:
    """Diagnosis: each video's per-frame tokens (T, E) of the trained model (the frames' class tokens after the
    last block, through ln_post and proj: what the graph's video feature is made of, kept in frame order); cached."""
    import torch

    from stop_export.runtime.backends import open_backend
    from stop_train.model.factory import load_model
    from stop_train.video.decode import probe
    from stop_train.video.preprocess import normalize_frames
    from stop_train.video.views import eval_views

    if cache.is_file():
        arrays = np.load(cache)
        return {k: arrays[k] for k in arrays.files}
    model = load_model(run_dir / "checkpoints" / "last").eval()
    meta = open_backend(onnx, "cpu", threads=1).metadata
    cfg, visual = model.cfg, model.clip.visual
    stride = cfg.frame_tokens + (cfg.prompts_per_gap if cfg.mode == "dynamic" else 0)
    out, paths = {}, sorted((data / "UCF-101").glob("*/*.avi"))
    with torch.no_grad():
        for i in range(0, len(paths), 16):
            chunk = paths[i:i + 16]
            views = np.stack([eval_views(p, probe(p), meta.sampling, meta.preprocess)[0] for p in chunk])
            hidden, _ = model.forward_visual(torch.from_numpy(normalize_frames(views, meta.preprocess)))
            frames = visual.ln_post(hidden[:, cfg.global_prompts::stride]) @ visual.proj  # (B, T, E)
            out.update({f"{p.parent.name}/{p.name}": f.numpy() for p, f in zip(chunk, frames)})
    np.savez(cache, **out)
    return out


def separability(features: dict[str, np.ndarray], data: Path, held: tuple[str, str]) -> tuple[float, float, float]:
    """What a feature separates on its own, from all the fold's training videos of each class (unit class means,
    nearest mean): top-1 (%) of the held-out classes' test videos among all six classes and between the two
    held-out classes only, and of the trained classes' among all six."""
    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    test = [(f"{c}/{p.name}", CLASSES.index(c)) for c in CLASSES for p in videos_of(data, c, range(1, 4))]
    x = unit(np.stack([features[k] for k, _ in test]))
    y = np.array([c for _, c in test])
    means = unit(np.stack([unit(np.stack([features[f"{c}/{p.name}"] for p in videos_of(data, c, TRAIN_GROUPS)])).mean(0)
                           for c in CLASSES]))
    pair = np.array([CLASSES.index(c) for c in held])
    is_held = np.isin(y, pair)
    six = (x @ means.T).argmax(1) == y
    two = pair[(x @ means[pair].T).argmax(1)] == y
    return 100 * six[is_held].mean(), 100 * two[is_held].mean(), 100 * six[~is_held].mean()


def in_order(frames: np.ndarray) -> np.ndarray:
    """(T, E) frame tokens -> one vector that keeps their order and drops what all frames share (each frame's unit
    token minus the clip's mean): a time-reversed clip gives the reversed sequence, unlike any mean over frames."""
    unit = frames / np.linalg.norm(frames, axis=-1, keepdims=True)
    return (unit - unit.mean(0)).ravel()


def whitening(emb: dict[str, np.ndarray], data: Path, classes) -> Callable[[np.ndarray], np.ndarray]:
    """A candidate method (not in the runtime): the map f -> unit((f - mu) C^-1/2) with the mean and (shrunk)
    covariance of the embeddings of the model's own training videos (`classes`: its trained classes only), which
    an export could carry. Cosine similarity in raw embedding space is dominated by the few directions that
    separate the trained classes; whitening gives the others, where unseen actions differ, equal weight."""
    train = np.stack([emb[f"{c}/{p.name}"] for c in classes for p in videos_of(data, c, TRAIN_GROUPS)])
    mu = train.mean(0)
    cov = np.cov(train - mu, rowvar=False)
    cov = (1 - SHRINK) * cov + SHRINK * np.trace(cov) / len(cov) * np.eye(len(cov))
    vals, vecs = np.linalg.eigh(cov)
    root = vecs @ np.diag(vals ** -0.5) @ vecs.T

    def white(f: np.ndarray) -> np.ndarray:
        w = (f - mu) @ root
        return w / np.linalg.norm(w, axis=-1, keepdims=True)
    return white


def linear_probe(features: dict[str, np.ndarray], data: Path, held: tuple[str, str]) -> tuple[float, float]:
    """Diagnosis: a logistic regression on standardised features of all the fold's training videos of all six
    classes (what the features hold linearly, given every label): top-1 (%) of the held-out and trained classes'
    test videos among all six."""
    import torch

    def xy(groups):
        keys = [(f"{c}/{p.name}", i) for i, c in enumerate(CLASSES) for p in videos_of(data, c, groups)]
        return (torch.tensor(np.stack([features[k] for k, _ in keys]), dtype=torch.float32),
                torch.tensor([i for _, i in keys]))

    (x, y), (xt, yt) = xy(TRAIN_GROUPS), xy(range(1, 4))
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xt = (x - mu) / sd, (xt - mu) / sd
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], len(CLASSES))
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=500)

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(probe(x), y) + 1e-3 * probe.weight.pow(2).sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        hit = (probe(xt).argmax(1) == yt).numpy()
    is_held = np.isin(yt.numpy(), [CLASSES.index(c) for c in held])
    return 100 * hit[is_held].mean(), 100 * hit[~is_held].mean()


def evaluate(onnx: Path, emb: dict[str, np.ndarray], data: Path, held: tuple[str, str], draws: int) -> dict:
    """Top-1 (held-out, trained) for text only and for each (K, alpha, beta), mean over draws; with ("white", K,
    alpha, beta) keys, the same for the cache in whitened space (`whitening`)."""
    from stop_export.runtime.bank import class_logits
    from stop_export.runtime.recognizer import Recognizer
    from stop_export.runtime.text import text_encoder_beside, TextEncoder
    from stop_train.labels import label_texts

    rec = Recognizer.open(onnx, "cpu")
    text = TextEncoder(text_encoder_beside(onnx)).encode(label_texts(list(CLASSES), rec.meta.template))
    scale = rec.meta.logit_scale
    test = [(f"{c}/{p.name}", CLASSES.index(c)) for c in CLASSES for p in videos_of(data, c, range(1, 4))]
    x = np.stack([emb[k] for k, _ in test])
    y = np.array([c for _, c in test])
    is_held = np.isin(y, [CLASSES.index(c) for c in held])

    def top1(logits: np.ndarray) -> tuple[float, float]:
        hit = logits.argmax(1) == y
        return 100 * hit[is_held].mean(), 100 * hit[~is_held].mean()

    result = {"text": top1(class_logits(x, text, scale))}
    white = whitening(emb, data, [c for c in CLASSES if c not in held])
    xw, text_logits = white(x), class_logits(x, text, scale)
    pools = {c: videos_of(data, c, TRAIN_GROUPS) for c in held}
    rng = np.random.default_rng(0)
    for k in SHOTS:
        for d in range(draws):
            keys, key_class = [], []
            for c in held:
                for i in rng.choice(len(pools[c]), k, replace=False):
                    keys.append(emb[f"{c}/{pools[c][i].name}"])
                    key_class.append(CLASSES.index(c))
            keys, key_class = np.stack(keys), np.array(key_class)
            for a in ALPHAS:
                for b in BETAS:
                    logits = class_logits(x, text, scale, keys, key_class, alpha=a, beta=b)
                    result.setdefault((k, a, b), []).append(top1(logits))
            affinity, onehot = xw @ white(keys).T, np.eye(len(CLASSES))[key_class]
            for a in WHITE_ALPHAS:
                for b in WHITE_BETAS:
                    logits = text_logits + a * np.exp(-b * (1 - affinity)) @ onehot
                    result.setdefault(("white", k, a, b), []).append(top1(logits))
    return {key: (np.mean(v, axis=0) if isinstance(key, tuple) else v) for key, v in result.items()}


def control(onnx: Path, emb: dict[str, np.ndarray], data: Path, draws: int) -> dict:
    """A model trained on all six classes, taught all six again as example-only classes (no text) from K
    examples each through `LabelBank`: top-1 on the fold's test videos against its own text-only labels."""
    from stop_export.runtime.bank import Example, LabelBank
    from stop_export.runtime.recognizer import Recognizer
    from stop_export.runtime.text import TextEncoder, text_encoder_beside
    from stop_train.labels import label_texts

    rec = Recognizer.open(onnx, "cpu")
    scale = rec.meta.logit_scale
    text = TextEncoder(text_encoder_beside(onnx)).encode(label_texts(list(CLASSES), rec.meta.template))
    test = [(f"{c}/{p.name}", CLASSES.index(c)) for c in CLASSES for p in videos_of(data, c, range(1, 4))]
    x, y = np.stack([emb[k] for k, _ in test]), np.array([c for _, c in test])
    out = {"text": 100 * np.mean((x @ text.T).argmax(1) == y)}
    rng = np.random.default_rng(0)
    for k in SHOTS:
        hits = []
        for _ in range(draws):
            bank = LabelBank(rec.meta.fingerprint)
            for c in CLASSES:
                pool = videos_of(data, c, TRAIN_GROUPS)
                chosen = [pool[i] for i in rng.choice(len(pool), k, replace=False)]
                bank.add(c, np.stack([emb[f"{c}/{p.name}"] for p in chosen]), [Example(str(p), 0, 0) for p in chosen])
            hits.append(100 * np.mean(bank.head().logits(x, scale).argmax(1) == y))
        out[k] = float(np.mean(hits))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--draws", type=int, default=10, help="example draws per K (>= 5)")
    parser.add_argument("--runs-root", type=Path, default=Path("runs/few-shot-check"))
    parser.add_argument("--train-only", action="store_true", help="train and export, then stop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--control", type=Path, metavar="MODEL.onnx",
                        help="also teach this model (trained on all six classes, e.g. make demo's) every class as "
                             "example-only")
    parser.add_argument("--pairs", type=int, nargs="+", default=list(range(len(PAIRS))), help="held-out pairs to run")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = write_synthetic_motion(args.runs_root / "data")
    results, minutes = [], []
    for pair in args.pairs:
        start = time.time()
        onnx = train_and_export(pair, data, args.runs_root, args)
        minutes.append((time.time() - start) / 60)
        if args.train_only:
            continue
        emb = embed_all(onnx, data, onnx.with_name("embeddings.npz"))
        results.append(evaluate(onnx, emb, data, PAIRS[pair], args.draws))
        frames = frame_tokens_all(onnx.parents[1], onnx, data, onnx.with_name("frame-tokens.npz"))
        results[-1]["separable"] = {"video embedding": separability(emb, data, PAIRS[pair]),
                                    "frame tokens in order": separability({k: in_order(v) for k, v in frames.items()},
                                                                          data, PAIRS[pair])}
        results[-1]["probe"] = {"video embedding": linear_probe(emb, data, PAIRS[pair]),
                                "frame tokens in order": linear_probe({k: in_order(v) for k, v in frames.items()},
                                                                      data, PAIRS[pair])}
    if args.train_only:
        return
    if args.control:
        emb = embed_all(args.control, data, args.runs_root / "control-embeddings.npz")
        ctl = control(args.control, emb, data, args.draws)
        print(f"\ncontrol {args.control} (trained on all six): text only {ctl['text']:.1f} %; example-only bank "
              + ", ".join(f"K={k} {ctl[k]:.1f} %" for k in SHOTS))
    print(f"\n{len(results)} run(s), 'tiny' from scratch, {args.epochs} epochs on 4 classes; {args.draws} draws per K; "
          f"top-1 (%) over all {len(CLASSES)} classes, fold-1 test videos")
    text = np.array([r["text"] for r in results])  # (pairs, 2)
    print(f"text only: held-out {text[:, 0].mean():5.1f}  trained {text[:, 1].mean():5.1f}  "
          f"(per pair: {', '.join(f'{h:.1f}/{t:.1f}' for h, t in text)})")
    ceiling = np.array([[r["separable"]["video embedding"][i] for i in (0, 2)] for r in results])
    print(f"embedding ceiling (nearest class mean of all {len(TRAIN_GROUPS) * SyntheticSpec().clips_per_group} training videos per class, no text): "
          f"held-out {ceiling[:, 0].mean():5.1f}  trained {ceiling[:, 1].mean():5.1f}  "
          f"(per pair: {', '.join(f'{h:.1f}/{t:.1f}' for h, t in ceiling)})")
    print("what the model's features separate on their own (nearest class mean of all training videos; held-out "
          "classes among all six / between the two; trained classes among all six), per pair:")
    for name in results[0]["separable"]:
        print(f"  {name:22s} " + ", ".join("{:.1f} / {:.1f} / {:.1f}".format(*r["separable"][name]) for r in results))
    print("a linear probe on them, trained on all training videos of all six classes (held-out / trained):")
    for name in results[0]["probe"]:
        print(f"  {name:22s} " + ", ".join("{:.1f} / {:.1f}".format(*r["probe"][name]) for r in results))
    white = {key[1:]: np.array([r[key] for r in results]) for key in results[0] if isinstance(key, tuple) and key[0] == "white"}
    table = {key: np.array([r[key] for r in results]) for key in results[0] if isinstance(key, tuple) and key[0] != "white"}
    # a model that did not learn its own four classes says nothing about teaching it more: left out of the choice
    learned = text[:, 1] >= LEARNED
    for i in np.flatnonzero(~learned):
        print(f"pair {args.pairs[i]} ({' / '.join(PAIRS[args.pairs[i]])} held out): its model did not learn its trained "
              f"classes (text-only top-1 {text[i, 1]:.1f} % < {LEARNED:g} %): left out of the choice of defaults")
    ok = [(k, a, b) for (k, a, b), v in table.items()
          if k == max(SHOTS) and learned.any() and np.all(v[learned, 1] >= text[learned, 1] - 2)]  # each model's
    best = max(ok, key=lambda key: table[key][learned, 0].mean()) if ok else None
    print(f"{'K':>2s} {'alpha':>6s} {'beta':>5s} {'held-out':>9s} {'trained':>8s}  per pair (held-out/trained)")
    for (k, a, b), v in sorted(table.items()):
        mark = " <- chosen" if best and (a, b) == best[1:] else ""
        print(f"{k:2d} {a:6g} {b:5g} {v[:, 0].mean():9.1f} {v[:, 1].mean():8.1f}  "
              + ", ".join(f"{h:.1f}/{t:.1f}" for h, t in v) + mark)
    if best:
        print(f"chosen defaults (pairs whose model learned): alpha {best[1]:g}, beta {best[2]:g}; K=5 held-out "
              f"{table[best][learned, 0].mean():.1f} %, trained {table[best][learned, 1].mean():.1f} % "
              f"(text only {text[learned, 1].mean():.1f} %)")
    # the candidate, chosen the same way: the best mean held-out at K = 5 keeping each pair's trained classes within 2
    fits = [key for key, v in white.items() if key[0] == max(SHOTS) and learned.any()
            and np.all(v[learned, 1] >= text[learned, 1] - 2)]
    if fits:
        key = max(fits, key=lambda key: white[key][learned, 0].mean())
        print(f"candidate, the cache in whitened space (training-set statistics; not in the runtime): K=5 alpha "
              f"{key[1]:g} beta {key[2]:g}: held-out {white[key][:, 0].mean():.1f} %, trained "
              f"{white[key][:, 1].mean():.1f} % (per pair: " + ", ".join(f"{h:.1f}/{t:.1f}" for h, t in white[key]) + ")")
        for k in SHOTS:
            v = white[(k, *key[1:])]
            print(f"  K={k}: held-out {v[:, 0].mean():.1f}, trained {v[:, 1].mean():.1f}")
    print("training + export minutes per pair: " + ", ".join(f"{m:.1f}" for m in minutes))
    (args.runs_root / "results.json").write_text(json.dumps(
        {"text": text.tolist(), "ceiling": ceiling.tolist(), "separable": [r["separable"] for r in results],
         "probe": [r["probe"] for r in results], "white": {f"{k},{a},{b}": v.tolist() for (k, a, b), v in white.items()}, "grid": {f"{k},{a},{b}": v.tolist() for (k, a, b), v in table.items()}}, indent=1))


if __name__ == "__main__":
    main()
