"""Approximate (FAISS HNSW, as `stop-search index --ann` builds it) against exact (numpy) window search.

    .venv/bin/python benchmarks/search_ann.py [--windows 200000] [--dim 512] [--queries 200]

The embeddings are synthetic but shaped like video windows: unit vectors around a few thousand "scene"
centres (neighbouring windows of a video are near-duplicates), queries near random centres. Prints, side by
side in one run: build time, query time per query, and the recall of the 10 best windows and of the 10 best
videos (a video scores by its best window, as `stop-search query` ranks) against exact search.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stop_export.runtime.search import IndexedVideo, SearchIndex, WindowCfg, ann_path, ann_scores, build_ann, load_ann


def synthetic_index(windows: int, dim: int, videos: int, rng: np.random.Generator) -> SearchIndex:
    centres = rng.standard_normal((videos * 4, dim)).astype(np.float32)
    scene = rng.integers(0, len(centres), windows)
    emb = centres[scene] + 0.35 * rng.standard_normal((windows, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = SearchIndex("bench", "", WindowCfg(12, 1.0, 1.0))
    index.embedding = emb
    index.video = np.sort(rng.integers(0, videos, windows)).astype(np.int32)
    index.start = np.zeros(windows)
    index.end = np.ones(windows)
    index.videos = [IndexedVideo(f"v{i}", 0, 0, 0.0, 0) for i in range(videos)]
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--videos", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default="/tmp/stop-search-ann-bench")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    index = synthetic_index(args.windows, args.dim, args.videos, rng)
    queries = index.embedding[rng.integers(0, args.windows, args.queries)] + 0.3 * rng.standard_normal(
        (args.queries, args.dim)
    ).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    t0 = time.perf_counter()
    build_ann(index, args.out)
    build_s = time.perf_counter() - t0
    exact_windows, exact_videos, exact_s = [], [], 0.0
    for q in queries:
        t0 = time.perf_counter()
        hits = index.search(q, top=10, moments=1)
        exact_s += time.perf_counter() - t0
        exact_videos.append({h["video"] for h in hits})
        exact_windows.append(set(np.argsort(-(index.embedding @ q))[:10].tolist()))
    print(
        f"{args.windows} windows x {args.dim}, {args.videos} videos, {args.queries} queries; "
        f"HNSW (M 32, efConstruction 80) built in {build_s:.1f} s ({ann_path(args.out)})"
    )
    print(f"{'search':18s} {'ms/query':>9s} {'window R@10':>12s} {'video R@10':>11s}")
    print(f"{'exact (numpy)':18s} {1000 * exact_s / args.queries:9.1f} {1.0:12.3f} {1.0:11.3f}")
    graph = load_ann(args.out, index)
    for candidates in (200, 1000, 4000):
        spent, win_recall, vid_recall = 0.0, [], []
        for q, ew, ev in zip(queries, exact_windows, exact_videos):
            t0 = time.perf_counter()
            scores = ann_scores(graph, index, q, windows=candidates)
            hits = index.search(q, top=10, moments=1, scores=scores)
            spent += time.perf_counter() - t0
            found = np.flatnonzero(np.isfinite(scores))
            top = set(found[np.argsort(-scores[found])][:10].tolist())
            win_recall.append(len(top & ew) / 10)
            vid_recall.append(len({h["video"] for h in hits} & ev) / max(1, len(ev)))
        print(
            f"{'HNSW ' + str(candidates) + ' windows':18s} {1000 * spent / args.queries:9.1f} {np.mean(win_recall):12.3f} "
            f"{np.mean(vid_recall):11.3f}"
        )
    print(
        "(stop-search query asks HNSW for max(1000, 50 x --top) windows (--candidates); times include ranking videos)"
    )


if __name__ == "__main__":
    main()
