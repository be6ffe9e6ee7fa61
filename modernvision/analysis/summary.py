"""Per-layer analysis: parameters, MACs, activation memory, receptive field and jump.

One forward pass (batch 1, eval mode, no grad) is watched at the level of ATen operators with a
``TorchDispatchMode``, so functional code inside a module (attention, ``x[:, :, ::2]``) is seen
as well as ``nn.Conv2d``. Each operator's cost is charged to the innermost module running.

Conventions:
    * MACs: one multiply-add counts as one, for convolutions, matrix products and attention
      (``softmax(QK^T)V``: ``Lq*Lk*(E + Ev)`` per head). Normalisation, activations, pooling and
      additions count zero. This is the convention of torchvision's "GFLOPS" column
      (ResNet-50: 4.09 G).
    * Receptive field (Araujo et al., "Computing Receptive Fields of Convolutional Neural
      Networks", Distill 2019): for a conv/pool with kernel ``k``, dilation ``d`` and stride ``s``,
      ``r_out = r_in + (k - 1) * d * j_in`` and ``j_out = j_in * s``. Where branches meet
      (addition, concatenation) the largest receptive field is kept. Where a tensor stops being a
      spatial map of the input (flatten, global pooling, tokens), the receptive field becomes
      the whole input and is reported as ``None``.
    * Activation memory: the bytes of each module's output at batch size 1.
    * One row per call: a module run several times in one forward (ResNet's shared ``relu``,
      called twice in a basic block and three times in a bottleneck) gets one row per call,
      named ``layer1.0.relu #1``, ``layer1.0.relu #2``, ..., each with that call's output shape,
      MACs, activation bytes and receptive field (the calls see different maps, so no merged
      row could be right for all of them). Its parameters are counted on the first call's row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from modernvision._errors import InvalidArgumentError

aten = torch.ops.aten


@dataclass
class LayerRow:
    """One module call's line of the summary (``name`` ends in `` #k`` for a module's k-th call
    when it runs more than once; ``module`` is its plain ``named_modules`` name)."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    params: int = 0
    macs: int = 0
    activation_bytes: int = 0
    receptive_field: int | tuple[int, int] | None = None
    jump: int | tuple[int, int] | None = None
    module: str = ""
    call: int = 1


@dataclass
class Summary:
    """What :func:`summarize` found, row by row in call order."""

    rows: list[LayerRow]
    total_params: int
    total_macs: int
    input_size: tuple[int, ...]
    model_name: str = ""
    trainable_params: int = 0
    _types: dict[str, type] = field(default_factory=dict, repr=False)

    @property
    def total_activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    def by_type(self) -> dict[str, dict[str, int]]:
        """Params, MACs and activation bytes summed per module type (e.g. ``Conv2d``)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            agg = out.setdefault(r.type, {"params": 0, "macs": 0, "activation_bytes": 0})
            agg["params"] += r.params
            agg["macs"] += r.macs
            agg["activation_bytes"] += r.activation_bytes
        return out

    def fraction(self, what: str, types: Sequence[type] | type) -> float:
        """Share of ``what`` ("params" or "macs") held by modules of the given type(s)."""
        if what not in ("params", "macs"):
            raise InvalidArgumentError(f"what must be 'params' or 'macs', got {what!r}")
        types = tuple(types) if isinstance(types, Sequence) else (types,)
        part = sum(getattr(r, what) for r in self.rows
                   if issubclass(self._types.get(r.name, type(None)), types))
        total = self.total_params if what == "params" else self.total_macs
        return part / total if total else 0.0

    def table(self) -> str:
        head = f"{'layer':<40} {'type':<18} {'output':<18} {'params':>12} {'MACs':>14} " \
               f"{'act. KiB':>10} {'RF':>9} {'jump':>6}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            shape = "x".join(map(str, r.output_shape[1:])) if r.output_shape else "-"
            lines.append(
                f"{_clip(r.name, 40):<40} {_clip(r.type, 18):<18} {shape:<18} {r.params:>12,} "
                f"{r.macs:>14,} {r.activation_bytes / 1024:>10.1f} {_fmt(r.receptive_field):>9} "
                f"{_fmt(r.jump):>6}"
            )
        lines.append("-" * len(head))
        lines.append(
            f"total params {self.total_params:,} ({self.total_params / 1e6:.2f} M), "
            f"MACs {self.total_macs:,} ({self.total_macs / 1e9:.3f} G), "
            f"activations {self.total_activation_bytes / 2**20:.1f} MiB at batch 1, "
            f"input {'x'.join(map(str, self.input_size))}"
        )
        shares = []
        for name, agg in sorted(self.by_type().items(), key=lambda kv: -kv[1]["params"]):
            if agg["params"] or agg["macs"]:
                shares.append(f"{name} {agg['params'] / max(self.total_params, 1):.1%} of params, "
                              f"{agg['macs'] / max(self.total_macs, 1):.1%} of MACs")
        if shares:
            lines.append("by layer type: " + "; ".join(shares))
        if self.rows:
            big = max(self.rows, key=lambda r: r.activation_bytes)
            shape = "x".join(map(str, big.output_shape[1:])) if big.output_shape else "-"
            lines.append(f"largest activation: {big.name} ({big.type}, {shape}, "
                         f"{big.activation_bytes / 2**20:.2f} MiB)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else "…" + s[-(n - 1):]


def _fmt(v: int | tuple[int, int] | None) -> str:
    if v is None:
        return "all"
    if isinstance(v, tuple):
        return f"{v[0]}x{v[1]}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# receptive-field bookkeeping


@dataclass(frozen=True)
class _RF:
    """Receptive field and jump along (H, W); ``None`` means "the whole input"."""

    r: tuple[int, int] | None
    j: tuple[int, int] = (1, 1)

    def through(self, k: Sequence[int], s: Sequence[int], d: Sequence[int] = (1, 1)) -> _RF:
        if self.r is None:
            return self
        r = tuple(self.r[i] + (k[i] - 1) * d[i] * self.j[i] for i in range(2))
        j = tuple(self.j[i] * s[i] for i in range(2))
        return _RF(r, j)  # type: ignore[arg-type]


_GLOBAL = _RF(None, (1, 1))


def _pair(v, default: int = 1) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return (default, default)
    if isinstance(v, int):
        return (v, v)
    v = list(v)
    return (int(v[0]), int(v[-1])) if len(v) >= 1 else (default, default)


def _spatial(t: Tensor) -> tuple[int, int] | None:
    return (t.shape[-2], t.shape[-1]) if t.dim() >= 3 else None


class _Watcher(TorchDispatchMode):
    """Counts MACs per ATen op and propagates receptive fields from tensor to tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.rf = WeakIdKeyDictionary()
        self.stack: list[tuple[str, int]] = [("", 1)]  # (module name, call number)
        self.macs: dict[tuple[str, int], int] = {}

    # -- MACs ---------------------------------------------------------------------------------
    def _charge(self, macs: int) -> None:
        if macs:
            name = self.stack[-1]
            self.macs[name] = self.macs.get(name, 0) + int(macs)

    @staticmethod
    def _op_macs(func, args, out) -> int:
        name = func.overloadpacket.__name__
        if func.overloadpacket in (aten.convolution, aten._convolution, aten.conv2d,
                                   aten.cudnn_convolution):
            x, w = args[0], args[1]
            transposed = bool(args[6]) if len(args) > 6 and name != "conv2d" else False
            o = out[0] if isinstance(out, (tuple, list)) else out
            if transposed:  # each input element meets (C_out/groups)*k*k weights
                return x.numel() * w.shape[1] * math.prod(w.shape[2:])
            return o.numel() * w.shape[1] * math.prod(w.shape[2:])
        if func.overloadpacket is aten.mm:
            return args[0].shape[0] * args[0].shape[1] * args[1].shape[1]
        if func.overloadpacket is aten.addmm:
            return args[1].shape[0] * args[1].shape[1] * args[2].shape[1]
        if func.overloadpacket in (aten.bmm, aten.baddbmm):
            a, b = (args[0], args[1]) if func.overloadpacket is aten.bmm else (args[1], args[2])
            return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        if "scaled_dot_product" in name or name == "_native_multi_head_attention":
            if name == "_native_multi_head_attention":
                # One fused kernel (nn.MultiheadAttention's inference fast path): the QKV and
                # output projections happen inside it, so count them here.
                q, k = args[0], args[1]  # (B, Lq, E), (B, Lk, E)
                b, lq, e = q.shape
                lk = k.shape[1]
                return b * (lq * e * e + 2 * lk * e * e + lq * lk * 2 * e + lq * e * e)
            q, k, v = args[0], args[1], args[2]
            batch = math.prod(q.shape[:-2])
            return batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        return 0

    # -- receptive field ----------------------------------------------------------------------
    def _rf_of_inputs(self, tensors: list[Tensor]) -> _RF | None:
        best: _RF | None = None
        for t in tensors:
            info = self.rf.get(t)
            if info is None:
                continue
            if info.r is None:
                return _GLOBAL
            if best is None or max(info.r) > max(best.r):  # type: ignore[arg-type]
                best = info
        return best

    def _rf_of_output(self, func, args, kwargs, inputs: list[Tensor], out: Tensor) -> _RF | None:
        src = self._rf_of_inputs(inputs)
        if src is None:
            return None
        pk = func.overloadpacket
        if pk in (aten.convolution, aten._convolution, aten.cudnn_convolution):
            w = args[1]
            transposed = bool(args[6]) if len(args) > 6 else False
            if transposed:
                return _GLOBAL if src.r is None else _RF(
                    src.r, tuple(max(1, j // s) for j, s in zip(src.j, _pair(args[3]))))
            return src.through(w.shape[2:], _pair(args[3]), _pair(args[5]))
        if pk is aten.conv2d:
            w = args[1]
            stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
            dil = args[5] if len(args) > 5 else kwargs.get("dilation", 1)
            return src.through(w.shape[2:], _pair(stride), _pair(dil))
        if pk in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d):
            k = _pair(args[1])
            s = _pair(args[2] if len(args) > 2 and args[2] else k)
            d = _pair(args[4]) if pk is not aten.avg_pool2d and len(args) > 4 else (1, 1)
            return src.through(k, s, d)
        if pk in (aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d, aten.adaptive_avg_pool2d):
            ins, outs = _spatial(inputs[0]), _spatial(out)
            if ins is None or outs is None:
                return _GLOBAL
            if outs == (1, 1):
                return src.through(ins, ins)
            if all(i % o == 0 for i, o in zip(ins, outs)):
                s = tuple(i // o for i, o in zip(ins, outs))
                return src.through(s, s)
            return _GLOBAL
        if pk is aten.slice and out.dim() >= 3:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            dim = dim % out.dim()
            step = args[4] if len(args) > 4 else kwargs.get("step", 1)
            if dim >= out.dim() - 2 and step != 1:
                i = dim - (out.dim() - 2)
                j = list(src.j)
                j[i] *= step
                return _RF(src.r, tuple(j))  # type: ignore[arg-type]
            return src
        # Any other op: same spatial grid as its source keeps the receptive field; a changed
        # grid (flatten, tokens, global reductions) means "the whole input".
        src_t = next((t for t in inputs if self.rf.get(t) is not None), None)
        if src_t is not None and out.dim() >= 3 and _spatial(out) == _spatial(src_t):
            return src
        return _GLOBAL

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._charge(self._op_macs(func, args, out))
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
        for o in tree_flatten(out)[0]:
            if isinstance(o, Tensor) and o.is_floating_point():
                info = self._rf_of_output(func, args, kwargs, inputs, o)
                if info is not None:
                    self.rf[o] = info
        return out


def _parse_input_size(input_size: Sequence[int] | str) -> tuple[int, ...]:
    if isinstance(input_size, str):
        try:
            dims = tuple(int(v) for v in input_size.lower().split("x"))
        except ValueError:
            raise InvalidArgumentError(
                f"input_size must look like 3x224x224 (C x H x W), got {input_size!r}") from None
    else:
        dims = tuple(int(v) for v in input_size)
    if len(dims) not in (1, 2, 3) or any(d <= 0 for d in dims):
        raise InvalidArgumentError(
            f"input_size must be (C, H, W) with positive sizes, got {input_size!r}")
    return dims


def summarize(
    model: nn.Module,
    input_size: Sequence[int] | str,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Summary:
    """Analyse ``model`` layer by layer with one forward pass at batch size 1.

    Args:
        model: any ``nn.Module`` taking one tensor.
        input_size: ``(C, H, W)`` without the batch dimension, or a string ``"3x224x224"``.
        dtype: dtype of the probe input (activation bytes follow it).
        device: where the probe runs.

    Returns:
        A :class:`Summary`; ``print(summary)`` shows the table.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    dims = _parse_input_size(input_size)
    x = torch.zeros((1, *dims), dtype=dtype, device=device)
    x.normal_(generator=torch.Generator(device=device).manual_seed(0))

    names = {m: n for n, m in model.named_modules()}
    watcher = _Watcher()
    # (module name, call number) -> row, in completion order
    rows: dict[tuple[str, int], LayerRow] = {}
    calls: dict[str, int] = {}

    def pre_hook(module, _inputs):
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        watcher.stack.append((name, calls[name]))

    def post_hook(module, _inputs, output):
        key = watcher.stack.pop()
        tensors = [t for t in tree_flatten(output)[0] if isinstance(t, Tensor)]
        first = tensors[0] if tensors else None
        info = watcher.rf.get(first) if first is not None else None
        params = sum(p.numel() for p in module.parameters(recurse=False)) if key[1] == 1 else 0
        row = LayerRow(key[0] or "(model)", type(module).__name__,
                       tuple(first.shape) if first is not None else None, params=params,
                       module=key[0], call=key[1])
        rows[key] = row
        row.activation_bytes = sum(t.numel() * t.element_size() for t in tensors)
        if info is not None:
            row.receptive_field = _squash(info.r)
            row.jump = _squash(info.j) if info.r is not None else None

    handles = []
    for m in names:
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(post_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), watcher:
            watcher.rf[x] = _RF((1, 1), (1, 1))
            try:
                model(x)
            except (RuntimeError, ValueError) as exc:
                raise InvalidArgumentError(f"input_size {'x'.join(map(str, dims))} does not fit "
                                           f"{type(model).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    for key, macs in watcher.macs.items():
        if key in rows:
            rows[key].macs += macs
    # Keep modules that compute or hold weights themselves; containers only add noise.
    modules = dict(model.named_modules())
    kept = [r for (name, _), r in rows.items()
            if r.macs > 0 or (name != "" and (r.params > 0 or next(modules[name].children(), None)
                                              is None))]
    types: dict[str, type] = {}
    for r in kept:
        if calls[r.module] > 1:
            r.name = f"{r.name} #{r.call}"
        types[r.name] = type(modules[r.module])
    total_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(kept, total_params, sum(watcher.macs.values()), dims,
                   type(model).__name__, trainable, types)


def _squash(v: tuple[int, int] | None) -> int | tuple[int, int] | None:
    if v is None:
        return None
    return v[0] if v[0] == v[1] else v
