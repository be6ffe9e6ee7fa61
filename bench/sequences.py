"""Sequence benchmarks (results in bench/sequences.md).

    reader   digit-string reader: CNN + Transformer decoder with one cross-attention per CNN
             stage vs CNN + GRU with dot-product attention, the same data and the same
             wall-clock training budget each; sequence accuracy and CER on held-out strings
             (test strings are made of mnist-5k *test* digits).
    recall   recall the first token of a sequence of D random tokens: plain (Elman) RNN
             seq2seq vs RNN + attention vs Transformer, accuracy against D.
    scaling  softmax(QK^T / sqrt(d_k)) vs softmax(QK^T): attention entropy and gradient size
             at initialisation-like statistics (unit-variance q, k), against d_k.

Run each under the shared CPU lock, e.g.
    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 PYTHONPATH=. python bench/sequences.py reader
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _log(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------------------------------------
def reader(args: argparse.Namespace) -> None:
    from torch.utils.data import DataLoader

    from modernvision.data.strings import load_strings, make_strings, strings_splits
    from modernvision.engine.jobs.sequence import SequenceEvaluator, StringsDataset
    from modernvision.models import create

    root = Path(args.data)
    for split, n in (("train", args.train), ("val", 200), ("test", args.test)):
        if split not in strings_splits(root):
            t = time.perf_counter()
            make_strings(root, n, 0, split=split)
            _log({"made": split, "images": n, "seconds": round(time.perf_counter() - t, 1)})
    train = load_strings(root, "train")
    test = load_strings(root, "test")
    for name in args.models.split(","):
        torch.manual_seed(0)
        extra = {"widths": [int(w) for w in args.widths.split(",")]} if args.widths else {}
        model = create(name, **extra)
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        loader = DataLoader(StringsDataset(train, augment=True), batch_size=64, shuffle=True,
                            drop_last=True)
        # a cosine schedule over the wall-clock budget (not over a step count guessed from the
        # first steps: a shared machine's speed varies), after a 20-step linear warm-up
        start, step, seen, done = time.perf_counter(), 0, 0, False
        model.train()
        while not done:
            for images, targets in loader:
                frac = (time.perf_counter() - start) / args.budget
                if frac >= 1.0:
                    done = True
                    break
                warm = min(1.0, (step + 1) / 20)
                for g in opt.param_groups:
                    g["lr"] = args.lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
                loss = model(images, targets)["loss_seq"]
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                seen += len(images)
                if step % 500 == 0:
                    _log({"model": name, "step": step, "seconds": round(frac * args.budget),
                          "loss": round(float(loss.detach()), 4)})
        train_s = time.perf_counter() - start
        model.eval()
        ds = StringsDataset(test)
        for beam in (1, 4):
            ev = SequenceEvaluator(model.vocab)
            t = time.perf_counter()
            with torch.no_grad():
                for images, targets in DataLoader(ds, batch_size=250):
                    ev.update(model.decode(images, beam_size=beam), targets)
            m = ev.compute()
            _log({"model": name, "widths": list(model.config.widths),
                  "train_strings": len(train), "params": params, "train_seconds": round(train_s),
                  "steps": step, "train_images_seen": seen, "epochs": round(seen / len(train), 2),
                  "beam": beam, "test_strings": len(ds), "seq_acc": round(m["seq_acc"], 4),
                  "cer": round(m["cer"], 4),
                  "decode_ms_per_image": round(1000 * (time.perf_counter() - t) / len(ds), 2),
                  "mistakes": ev.mistakes[:6]})


# ---------------------------------------------------------------------------------------------
def _recall_batch(n: int, distance: int, gen: torch.Generator):
    src = torch.randint(3, 13, (n, distance), generator=gen)
    tgt = torch.stack([torch.ones(n, dtype=torch.long), src[:, 0], torch.full((n,), 2)], 1)
    return src, tgt


def _recall_model(kind: str, distance: int, args_norm_first: bool = True):
    from modernvision.models.sequence.rnn import Seq2Seq, Seq2VecEncoder, Vec2SeqDecoder
    from modernvision.models.sequence.rnn_attention import AttentionDecoder
    from modernvision.models.sequence.transformer import TransformerSeq2Seq

    h = 64
    if kind == "transformer":
        return TransformerSeq2Seq(13, 13, bos=1, eos=2, pad=0, d_model=h, nhead=4,
                                  num_encoder_layers=2, num_decoder_layers=1,
                                  dim_feedforward=128, dropout=0.0, max_len=distance + 4,
                                  norm_first=args_norm_first)
    enc = Seq2VecEncoder(13, 32, h, cell="rnn")
    dec = (AttentionDecoder(13, 32, h, cell="rnn") if kind == "rnn_attention"
           else Vec2SeqDecoder(13, 32, h, cell="rnn"))
    return Seq2Seq(enc, dec, bos=1, eos=2, pad=0)


def recall(args: argparse.Namespace) -> None:
    for distance in [int(d) for d in args.distances.split(",")]:
        for kind in ("rnn", "rnn_attention", "transformer"):
            torch.manual_seed(0)
            gen = torch.Generator().manual_seed(distance)
            model = _recall_model(kind, distance, not args.post_norm)
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            t = time.perf_counter()
            model.train()
            for step in range(args.steps):
                src, tgt = _recall_batch(64, distance, gen)
                logits = model(src, tgt[:, :-1])
                loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten())
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                warm = min(1.0, (step + 1) / args.warmup)
                for g in opt.param_groups:
                    g["lr"] = args.lr * warm * 0.5 * (1 + math.cos(math.pi * (step + 1)
                                                               / args.steps))
            model.eval()
            src, tgt = _recall_batch(1000, distance, torch.Generator().manual_seed(10_000))
            pred = model.greedy(src, max_len=2)[:, 0]
            _log({"distance": distance, "model": kind, "steps": args.steps,
                  "warmup": args.warmup, "transformer_norm": "post" if args.post_norm else "pre",
                  "recall_acc": round(float((pred == tgt[:, 1]).float().mean()), 4),
                  "chance": 0.1, "seconds": round(time.perf_counter() - t, 1)})


# ---------------------------------------------------------------------------------------------
def scaling(args: argparse.Namespace) -> None:
    """Unit-variance q, k (what Xavier-initialised projections of unit-variance tokens give):
    the logits q.k have variance d_k, so without the scale the softmax saturates."""
    torch.manual_seed(0)
    for d_k in (4, 16, 64, 256, 1024):
        for scale in (True, False):
            q = torch.randn(64, 32, d_k, requires_grad=True)
            # values scaled so that the upstream gradient of each weight is O(1) for any d_k
            k, v = torch.randn(64, 32, d_k), torch.randn(64, 32, d_k) / math.sqrt(d_k)
            z = q @ k.transpose(1, 2)
            if scale:
                z = z / math.sqrt(d_k)
            z.retain_grad()  # the softmax input
            w = z.softmax(-1)
            out = w @ v
            (out * torch.randn_like(out)).sum().backward()
            wd = w.detach()
            entropy = float(-(wd * wd.clamp_min(1e-30).log()).sum(-1).mean())
            _log({"d_k": d_k, "scaled": scale,
                  "softmax_input_std": round(float(z.detach().std()), 2),
                  "entropy_nats": round(entropy, 3), "max_entropy": round(math.log(32), 3),
                  "mean_max_weight": round(float(wd.max(-1).values.mean()), 3),
                  "saturated_rows": round(float((wd.max(-1).values > 0.99).float().mean()), 3),
                  "grad_softmax_input_rms": float(f"{float(z.grad.pow(2).mean().sqrt()):.3g}"),
                  "grad_softmax_input_row_norm_median":
                      float(f"{float(z.grad.norm(dim=-1).median()):.3g}"),
                  "grad_q_rms": float(f"{float(q.grad.pow(2).mean().sqrt()):.3g}")})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reader")
    r.add_argument("--data", default="/tmp/mv-bench-strings")
    r.add_argument("--train", type=int, default=10000)
    r.add_argument("--test", type=int, default=1000)
    r.add_argument("--models", default="string_reader_transformer,string_reader_rnn")
    r.add_argument("--budget", type=float, default=240.0, help="training seconds per model")
    r.add_argument("--lr", type=float, default=2e-3)
    r.add_argument("--widths", default="", help="CNN widths, e.g. 32,64,128,256 "
                   "(default: the model's 16,32,64,128)")
    r.set_defaults(func=reader)
    c = sub.add_parser("recall")
    c.add_argument("--distances", default="5,10,20,40")
    c.add_argument("--steps", type=int, default=300)
    c.add_argument("--lr", type=float, default=3e-3)
    c.add_argument("--warmup", type=int, default=1, help="linear warm-up steps")
    c.add_argument("--post-norm", action="store_true", help="the paper's post-norm Transformer")
    c.set_defaults(func=recall)
    s = sub.add_parser("scaling")
    s.set_defaults(func=scaling)
    args = p.parse_args()
    # two threads unless the caller sets OMP_NUM_THREADS
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    _log({"threads": torch.get_num_threads()})
    args.func(args)


if __name__ == "__main__":
    main()
