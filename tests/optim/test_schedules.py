"""LR schedules against torch.optim.lr_scheduler; the optimizer/scheduler factories."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as torch_sched

from modernvision import optim as mv_optim
from modernvision._errors import UnknownNameError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _optimizer(cls: type = torch.optim.SGD) -> torch.optim.Optimizer:
    """Two parameter groups with different lrs (head at 0.1, backbone at 0.01)."""
    head, backbone = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    return cls([{"params": [head]}, {"params": [backbone], "lr": 0.01}], lr=0.1)


def _lrs(schedule: torch_sched.LRScheduler, steps: int) -> list[list[float]]:
    """The lr of every group before each of ``steps`` steps (what each optimizer step used)."""
    trajectory = []
    for _ in range(steps):
        trajectory.append([g["lr"] for g in schedule.optimizer.param_groups])
        assert trajectory[-1] == pytest.approx(schedule.get_last_lr(), abs=0)
        schedule.optimizer.step()
        schedule.step()
    return trajectory


def _assert_same(got: list[list[float]], expected: list[list[float]], atol: float) -> None:
    assert len(got) == len(expected)
    for step, (a, b) in enumerate(zip(got, expected)):
        assert a == pytest.approx(b, abs=atol, rel=0), f"step {step}"


def test_step_decay_equals_step_lr() -> None:
    got = _lrs(mv_optim.StepDecay(_optimizer(), step_size=7, gamma=0.5), 40)
    expected = _lrs(torch_sched.StepLR(_optimizer(), step_size=7, gamma=0.5), 40)
    _assert_same(got, expected, atol=1e-15)
    assert got[6] == [0.1, 0.01] and got[7] == pytest.approx([0.05, 0.005])


@pytest.mark.parametrize("eta_min", [0.0, 1e-3])
def test_cosine_equals_cosine_annealing_lr(eta_min: float) -> None:
    got = _lrs(mv_optim.CosineAnnealing(_optimizer(), T_max=50, eta_min=eta_min), 51)
    expected = _lrs(torch_sched.CosineAnnealingLR(_optimizer(), T_max=50, eta_min=eta_min), 51)
    _assert_same(got, expected, atol=1e-12)
    assert got[25][0] == pytest.approx(eta_min + (0.1 - eta_min) / 2)
    assert got[50] == pytest.approx([eta_min, eta_min])


def test_cosine_holds_eta_min_after_t_max() -> None:
    schedule = mv_optim.CosineAnnealing(_optimizer(), T_max=10, eta_min=1e-4)
    lrs = _lrs(schedule, 25)
    assert all(lr == pytest.approx([1e-4, 1e-4]) for lr in lrs[10:])


@pytest.mark.parametrize("start,end", [(0.001, 1.0), (0.25, 0.75)])
def test_linear_warmup_equals_linear_lr(start: float, end: float) -> None:
    got = _lrs(mv_optim.LinearWarmup(_optimizer(), 10, start_factor=start, end_factor=end), 20)
    expected = _lrs(torch_sched.LinearLR(_optimizer(), start, end, total_iters=10), 20)
    _assert_same(got, expected, atol=1e-12)
    assert got[0] == pytest.approx([0.1 * start, 0.01 * start])
    assert got[15] == pytest.approx([0.1 * end, 0.01 * end])


def test_linear_warmup_from_zero() -> None:
    lrs = _lrs(mv_optim.LinearWarmup(_optimizer(), 4, start_factor=0.0), 6)
    assert [lr[0] for lr in lrs] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


@pytest.mark.parametrize("main", ["cosine", "step"])
def test_warmup_then_main_equals_sequential_lr(main: str) -> None:
    def ours(opt: torch.optim.Optimizer) -> mv_optim.SequentialSchedule:
        warmup = mv_optim.LinearWarmup(opt, 5, start_factor=0.01)
        rest = (mv_optim.CosineAnnealing(opt, T_max=25, eta_min=1e-4) if main == "cosine"
                else mv_optim.StepDecay(opt, step_size=10, gamma=0.1))
        return mv_optim.SequentialSchedule(opt, [warmup, rest], milestones=[5])

    def theirs(opt: torch.optim.Optimizer) -> torch_sched.SequentialLR:
        warmup = torch_sched.LinearLR(opt, start_factor=0.01, total_iters=5)
        rest = (torch_sched.CosineAnnealingLR(opt, T_max=25, eta_min=1e-4) if main == "cosine"
                else torch_sched.StepLR(opt, step_size=10, gamma=0.1))
        return torch_sched.SequentialLR(opt, [warmup, rest], milestones=[5])

    got, expected = _lrs(ours(_optimizer()), 30), _lrs(theirs(_optimizer()), 30)
    _assert_same(got, expected, atol=1e-12)
    assert got[0] == pytest.approx([0.001, 0.0001])
    assert got[5] == pytest.approx([0.1, 0.01])


def test_schedules_drive_our_optimizers_too() -> None:
    for cls in (mv_optim.SGD, mv_optim.RMSProp, mv_optim.Adam, mv_optim.AdamW):
        got = _lrs(mv_optim.StepDecay(_optimizer(cls), step_size=3), 8)
        expected = _lrs(torch_sched.StepLR(_optimizer(), step_size=3), 8)
        _assert_same(got, expected, atol=1e-15)


def _sequential(opt: torch.optim.Optimizer) -> mv_optim.SequentialSchedule:
    return mv_optim.SequentialSchedule(
        opt, [mv_optim.LinearWarmup(opt, 4), mv_optim.CosineAnnealing(opt, 20)], [4])


@pytest.mark.parametrize("make", [
    lambda opt: mv_optim.StepDecay(opt, step_size=5, gamma=0.3),
    lambda opt: mv_optim.CosineAnnealing(opt, T_max=24),
    lambda opt: mv_optim.LinearWarmup(opt, 12),
    _sequential,
], ids=["step", "cosine", "warmup", "sequential"])
def test_state_dict_round_trip(make) -> None:
    straight = _lrs(make(_optimizer()), 24)

    first = make(_optimizer())
    _lrs(first, 9)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # no optimizer inside: it pickles
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)

    resumed = make(_optimizer())
    resumed.load_state_dict(state)
    for group, lr in zip(resumed.optimizer.param_groups, resumed.get_last_lr()):
        group["lr"] = lr  # what Optimizer.load_state_dict restores in a real resume
    _assert_same(straight[:9] + _lrs(resumed, 15), straight, atol=0)


def test_schedule_argument_errors() -> None:
    opt = _optimizer()
    with pytest.raises(ValueError, match="step_size"):
        mv_optim.StepDecay(opt, step_size=0)
    with pytest.raises(ValueError, match="gamma"):
        mv_optim.StepDecay(opt, step_size=3, gamma=-1.0)
    with pytest.raises(ValueError, match="T_max"):
        mv_optim.CosineAnnealing(opt, T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        mv_optim.LinearWarmup(opt, 5, start_factor=1.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        mv_optim.LinearWarmup(opt, 0)
    with pytest.raises(ValueError, match="milestones"):
        mv_optim.SequentialSchedule(opt, [mv_optim.Constant(opt), mv_optim.Constant(opt)], [])
    with pytest.raises(TypeError, match="schedules"):
        mv_optim.SequentialSchedule(opt, [torch_sched.StepLR(opt, 3)], [])
    with pytest.raises(ValueError, match="different optimizer"):
        mv_optim.SequentialSchedule(opt, [mv_optim.Constant(_optimizer())], [])


@pytest.mark.parametrize("name,cls,extra", [
    ("sgd", mv_optim.SGD, {"momentum": 0.0, "nesterov": False}),
    ("momentum", mv_optim.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", mv_optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", mv_optim.RMSProp, {"momentum": 0.9}),
    ("adam", mv_optim.Adam, {"betas": (0.9, 0.999)}),
    ("adamw", mv_optim.AdamW, {"betas": (0.9, 0.999)}),
])
def test_build_optimizer(name: str, cls: type, extra: dict) -> None:
    params = [nn.Parameter(torch.zeros(3))]
    opt = mv_optim.build_optimizer(name, params, lr=0.05, weight_decay=1e-4)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 1e-4
    for key, value in extra.items():
        assert group[key] == value


def test_build_optimizer_groups_and_kwargs() -> None:
    head, backbone = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = mv_optim.build_optimizer(
        "adam", [{"params": [head]}, {"params": [backbone], "lr": 1e-4}], lr=1e-3,
        betas=(0.8, 0.9), amsgrad=True)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-4]
    assert opt.param_groups[1]["betas"] == (0.8, 0.9) and opt.param_groups[1]["amsgrad"]
    plain = mv_optim.build_optimizer("rmsprop", [head], lr=1e-2, momentum=0.0, centered=True)
    assert plain.param_groups[0]["momentum"] == 0.0 and plain.param_groups[0]["centered"]


def test_build_optimizer_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match="adam") as info:
        mv_optim.build_optimizer("adma", [nn.Parameter(torch.zeros(1))], lr=0.1)
    assert isinstance(info.value, KeyError)
    assert "Did you mean" in str(info.value)


def test_build_scheduler_cosine_with_warmup_is_per_iteration() -> None:
    epochs, steps_per_epoch = 6, 5
    opt = _optimizer()
    got = _lrs(mv_optim.build_scheduler("cosine", opt, epochs=epochs,
                                        steps_per_epoch=steps_per_epoch, warmup_epochs=1), 30)
    ref_opt = _optimizer()
    expected = _lrs(torch_sched.SequentialLR(ref_opt, [
        torch_sched.LinearLR(ref_opt, start_factor=0.001, total_iters=5),
        torch_sched.CosineAnnealingLR(ref_opt, T_max=25)], milestones=[5]), 30)
    _assert_same(got, expected, atol=1e-12)
    assert got[-1][0] == pytest.approx(0.1 * (1 + math.cos(math.pi * 24 / 25)) / 2)


def test_build_scheduler_step_and_none() -> None:
    step = _lrs(mv_optim.build_scheduler("step", _optimizer(), epochs=6, steps_per_epoch=4,
                                         step_size=2, gamma=0.5), 24)
    # Decays every 2 epochs = 8 iterations.
    assert [lr[0] for lr in step[::4]] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    none = _lrs(mv_optim.build_scheduler("none", _optimizer(), epochs=3, steps_per_epoch=4), 12)
    assert all(lr == [0.1, 0.01] for lr in none)
    warm = _lrs(mv_optim.build_scheduler("none", _optimizer(), epochs=3, steps_per_epoch=4,
                                         warmup_epochs=0.5, warmup_start_factor=0.5), 12)
    assert [lr[0] for lr in warm[:3]] == pytest.approx([0.05, 0.075, 0.1])
    assert all(lr == pytest.approx([0.1, 0.01]) for lr in warm[2:])


def test_build_scheduler_errors() -> None:
    with pytest.raises(UnknownNameError, match="cosine"):
        mv_optim.build_scheduler("cosin", _optimizer(), epochs=3, steps_per_epoch=2)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        mv_optim.build_scheduler("cosine", _optimizer(), epochs=3, steps_per_epoch=0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        mv_optim.build_scheduler("cosine", _optimizer(), epochs=3, steps_per_epoch=2,
                                 warmup_epochs=3)
