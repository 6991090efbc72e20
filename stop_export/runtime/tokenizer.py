"""CLIP's byte-level BPE tokenizer without PyTorch, for re-labelling a model at run time.

It reads the BPE merges file that `stop-export` writes beside the model (CLIP's
`bpe_simple_vocab_16e6.txt.gz`) and reproduces open_clip's `tokenize` token for token: text cleaned with
ftfy and HTML unescaping, whitespace collapsed, lower-cased; ids [start, tokens..., end] truncated to the
context length (the end token kept) and zero-padded.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from pathlib import Path

import numpy as np
import regex

MERGES = 49152 - 256 - 2  # merges CLIP uses from the file (its vocabulary is 49408 ids)
START, END = "<start_of_text>", "<end_of_text>"


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable character table: printable bytes map to themselves and come
    first (the order defines the first 256 ids), the others map to chr(256 + n) in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    for n, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + n)
    return table


def _clean(text: str) -> str:
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:  # only changes broken unicode; label texts are plain
        pass
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """`ClipTokenizer(merges_file)(texts, context_length)` -> int64 ids (K, context_length)."""

    def __init__(self, merges_file: str | Path):
        path = Path(merges_file)
        if not path.is_file():
            raise FileNotFoundError(f"no BPE merges file at {path} (stop-export writes it beside the model)")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig") as f:
            lines = f.read().split("\n")[1 : MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        symbols = list(byte_to_unicode().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START, END]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.start_id, self.end_id = self.encoder[START], self.encoder[END]
        self.pattern = regex.compile(
            rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
        )
        self._cache: dict[str, list[str]] = {START: [START], END: [END]}

    def _bpe(self, word: str) -> list[str]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = {(a, b) for a, b in zip(parts, parts[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without the start and end tokens."""
        table = byte_to_unicode()
        ids = []
        for piece in self.pattern.findall(_clean(text)):
            word = "".join(table[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[p] for p in self._bpe(word))
        return ids

    def __call__(self, texts: list[str] | str, context_length: int) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text), self.end_id]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.end_id
            out[row, : len(ids)] = ids
        return out
