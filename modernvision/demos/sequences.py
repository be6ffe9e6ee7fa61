"""Demo section: sequences -- attention written out equals torch's, the Transformer loads
``nn.Transformer``'s weights, beam search vs greedy, digit strings, and why ``sqrt(d_k)``."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path


def demo_section(out: Path) -> list[str]:
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn

    from modernvision.data.strings import StringsConfig, load_strings, make_strings
    from modernvision.layers import MultiheadAttention, scaled_dot_product_attention
    from modernvision.models.sequence.transformer import Transformer, TransformerSeq2Seq

    start = time.perf_counter()
    lines = []
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
    ours = MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[1, 6:] = True
    diff = (ours(x, x, x, key_padding_mask=pad)[0] - ref(x, x, x, key_padding_mask=pad)[0])
    lines.append(f"MultiheadAttention (written out) vs nn.MultiheadAttention, same state dict: "
                 f"max |diff| {diff.abs().max():.1e}")
    kw = dict(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=64, dropout=0.0, batch_first=True, dtype=torch.float64)
    for norm_first in (False, True):
        with warnings.catch_warnings():  # torch's note on its nested-tensor fast path
            warnings.simplefilter("ignore")
            tref = nn.Transformer(norm_first=norm_first, **kw)
        tours = Transformer(norm_first=norm_first, **kw)
        tours.load_state_dict(tref.state_dict())
        src, tgt = torch.randn(2, 7, 32, dtype=torch.float64), torch.randn(
            2, 5, 32, dtype=torch.float64)
        mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
        d = (tours(src, tgt, tgt_mask=mask) - tref(src, tgt, tgt_mask=mask)).abs().max()
        lines.append(f"Transformer ({'pre' if norm_first else 'post'}-norm) loading "
                     f"nn.Transformer's weights: max |diff| {d:.1e}")
    model = TransformerSeq2Seq(13, 13, bos=1, eos=2, pad=0, d_model=32, nhead=4,
                               num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64,
                               dropout=0.0).eval()
    src = torch.randint(3, 13, (8, 10))
    same = torch.equal(model.greedy(src, 8), model.beam(src, 8, beam_size=1))
    lines.append(f"KV-cached decoding: beam search with beam 1 == greedy: {same}")
    q, k, v = (torch.randn(1, 32, 256) for _ in range(3))
    for scale in (True, False):
        w = scaled_dot_product_attention(q, k, v, scale=scale)[1]
        ent = float(-(w * w.clamp_min(1e-30).log()).sum(-1).mean())
        lines.append(f"d_k = 256, {'with' if scale else 'without'} 1/sqrt(d_k): attention "
                     f"entropy {ent:.2f} nats (uniform {math.log(32):.2f}), largest weight "
                     f"{float(w.max(-1).values.mean()):.2f} on average")
    strings = out / "strings"
    make_strings(strings, 8, 0, split="test", config=StringsConfig(), overwrite=True)
    data = load_strings(strings, "test")
    grid = out / "digit_strings.png"
    Image.fromarray(np.concatenate(list(data.images), 0)).save(grid)
    lines.append(f"make-strings: 8 held-out digit strings ({', '.join(data.texts)}) -> {grid}")
    lines.append(f"({time.perf_counter() - start:.1f} s)")
    return lines
