"""Static word-piece vectors: a comment's meaning as the normalised sum of its pieces' rows.

The n-gram blocks know only the words they saw in training. A table of word-piece vectors
(all-MiniLM-L6-v2 distilled by model2vec, built by ``scripts/build-embeddings``) knows
that "moron" sits near "idiot" and "promo code" near "discount", which is what carries a
model to sites and periods it never saw. A comment's vector is the sum of its pieces'
rows, scaled to unit length, so a label's log-odds from this block is
``sum(piece_logit[p]) / norm``: each piece has its own share, and explanations stay
word by word (`moderation.scorer` credits a piece to the word it was cut from).

Pieces are cut token by token (the BERT pre-tokenizer never lets a piece cross white
space), so every path (training, single comments, batches, spans of an explanation)
cuts a token the same way and caches it: tokens repeat endlessly.

Needs `tokenizers` only; the distillation, which needs torch, is `training.distill_pieces`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from moderation.features import cache_short

TABLE_FILE = "table.npy"
TOKENIZER_FILE = "tokenizer.json"
SOURCE_FILE = "source.json"

_NO_PIECES = np.zeros(0, dtype=np.int64)


class PieceVectors:
    """Normalised texts in, unit-length piece-vector sums out (`moderation.model.PieceBlock`
    puts it in a scikit-learn pipeline; this module imports no scikit-learn).

    :param table: (n_pieces, dims) float16 rows, one per piece of the tokenizer's vocabulary.
    :param tokenizer_json: the `tokenizers` tokenizer, serialised, that cuts text into those pieces.
    :param unknown_id: the id of the unknown piece, which is dropped (it means nothing).
    """

    def __init__(self, table: np.ndarray, tokenizer_json: str, unknown_id: int | None = None):
        self.table = np.asarray(table, dtype=np.float16)
        self.tokenizer_json = tokenizer_json
        self.unknown_id = unknown_id
        self._prepare()

    def _prepare(self) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(self.tokenizer_json)
        self.pieces_of_token = cache_short(self._pieces_of_token_uncached, 1 << 17)

    def __getstate__(self) -> dict:
        return {"table": self.table, "tokenizer_json": self.tokenizer_json, "unknown_id": self.unknown_id}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._prepare()

    @property
    def dims(self) -> int:
        return self.table.shape[1]

    @property
    def digest(self) -> str:
        """sha256 of the table and tokenizer: which vectors a model was trained with."""
        h = hashlib.sha256(self.table.tobytes())
        h.update(self.tokenizer_json.encode())
        return h.hexdigest()

    def _pieces_of_token_uncached(self, token: str) -> np.ndarray:
        """The piece ids of one white-space token (`pieces_of_token` is this, cached)."""
        ids = self._tokenizer.encode(token, add_special_tokens=False).ids
        if self.unknown_id is not None:
            ids = [i for i in ids if i != self.unknown_id]
        return np.array(ids, dtype=np.int64) if ids else _NO_PIECES

    def sums(self, ids: np.ndarray) -> np.ndarray:
        """The sum of the rows of ``ids``, in float64 (float16 would round at every step)."""
        return self.table[ids].sum(axis=0, dtype=np.float64)

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """The table in float64, for sparse products over whole batches. Kept: scipy would copy
        float32 rows to float64 on every product, 60 MB each time. Made on first use: a server
        scoring one comment at a time never needs it."""
        return self.table.astype(np.float64)

    def pieces(self, normalized: str) -> np.ndarray:
        """The piece ids of one normalised text, token by token."""
        parts = [self.pieces_of_token(token) for token in normalized.split()]
        return np.concatenate(parts) if parts else _NO_PIECES

    def transform(self, normalized) -> np.ndarray:
        """Return each text's piece-vector sum scaled to unit length (zeros when it has no known piece)."""
        sums = np.zeros((len(normalized), self.dims))
        for row, text in enumerate(normalized):
            ids = self.pieces(text)
            if ids.size:
                sums[row] = self.sums(ids)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums / np.where(norms > 0, norms, 1.0)


def load_pieces(directory: Path) -> PieceVectors:
    """Read a table written by `training.distill_pieces` (``table.npy``, ``tokenizer.json``, ``source.json``)."""
    directory = Path(directory)
    missing = [name for name in (TABLE_FILE, TOKENIZER_FILE, SOURCE_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a piece-vector table (missing {', '.join(missing)}); build one with scripts/build-embeddings")
    source = json.loads((directory / SOURCE_FILE).read_text())
    table = np.load(directory / TABLE_FILE, allow_pickle=False)
    return PieceVectors(table, (directory / TOKENIZER_FILE).read_text(encoding="utf-8"), source.get("unknown_id"))


def table_facts(directory: Path, pieces: PieceVectors) -> dict:
    """What a table says about itself (model, distiller, dimensions) and the sha256 of what was
    loaded from it, for a model's manifest and the benchmarks' JSON."""
    return {**json.loads((Path(directory) / SOURCE_FILE).read_text()), "sha256": pieces.digest}


def default_pieces_dir(config: dict | None = None) -> Path | None:
    """The EMBEDDINGS_DIR setting when a table has been built there; None means n-grams only."""
    from moderation.config import load_config

    directory = (config or load_config())["EMBEDDINGS_DIR"]
    return Path(directory) if directory and (Path(directory) / SOURCE_FILE).is_file() else None
