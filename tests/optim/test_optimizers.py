"""Hand-written optimizers against torch.optim: trajectories, state dicts, Rosenbrock, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from modernvision import optim as mv_optim

# (our class, torch class, hyper-parameters): several settings per optimizer.
CASES = [
    (mv_optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    (mv_optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (mv_optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (mv_optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.5)),
    (mv_optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=1e-2)),
    (mv_optim.SGD, torch.optim.SGD,
     dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3, maximize=True)),
    (mv_optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-2)),
    (mv_optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-2, centered=True)),
    (mv_optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-3, momentum=0.9)),
    (mv_optim.RMSProp, torch.optim.RMSprop,
     dict(lr=1e-3, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=1e-3)),
    (mv_optim.Adam, torch.optim.Adam, dict(lr=1e-2)),
    (mv_optim.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True)),
    (mv_optim.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-2)),
    (mv_optim.Adam, torch.optim.Adam,
     dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3, amsgrad=True, maximize=True)),
    (mv_optim.AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    (mv_optim.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
]


def _case_id(case: tuple) -> str:
    ours, _, kwargs = case
    return ours.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


def _problem(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    inputs = torch.randn(32, 6, generator=gen, dtype=torch.float64)
    targets = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    return model, inputs, targets


def _groups(model: nn.Module, lr: float) -> list[dict]:
    # A lower lr for the first layer, as the engine does for a pretrained backbone.
    return [{"params": model[0].parameters(), "lr": lr * 0.1},
            {"params": model[2].parameters()}]


def _train(model: nn.Module, opt: torch.optim.Optimizer, inputs: torch.Tensor,
           targets: torch.Tensor, steps: int, sign: float = 1.0) -> list[torch.Tensor]:
    """Run ``steps`` full-batch steps; return the flattened parameters after each one."""
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        loss = sign * nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        opt.step()
        trajectory.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    return trajectory


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("grouped", [False, True], ids=["one-group", "two-lr-groups"])
def test_trajectory_equals_torch(case: tuple, grouped: bool) -> None:
    ours_cls, torch_cls, kwargs = case
    model, inputs, targets = _problem()
    reference = copy.deepcopy(model)
    if grouped:
        ours = ours_cls(_groups(model, kwargs["lr"]), **kwargs)
        theirs = torch_cls(_groups(reference, kwargs["lr"]), **kwargs)
    else:
        ours = ours_cls(model.parameters(), **kwargs)
        theirs = torch_cls(reference.parameters(), **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    got = _train(model, ours, inputs, targets, 100, sign)
    expected = _train(reference, theirs, inputs, targets, 100, sign)
    assert not torch.equal(got[-1], got[0])  # it moved
    for step, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0, msg=f"step {step + 1}")
    # And it minimised the loss it was given.
    with torch.no_grad():
        start_model, _, _ = _problem()
        start = nn.functional.mse_loss(start_model(inputs), targets)
        end = nn.functional.mse_loss(model(inputs), targets)
    assert end < start


def test_closure_returns_loss_and_matches_torch() -> None:
    model, inputs, targets = _problem()
    reference = copy.deepcopy(model)
    ours = mv_optim.Adam(model.parameters(), lr=1e-2)
    theirs = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for _ in range(5):
        def closure(m: nn.Module = model, o: torch.optim.Optimizer = ours) -> torch.Tensor:
            o.zero_grad()
            loss = nn.functional.mse_loss(m(inputs), targets)
            loss.backward()
            return loss

        def ref_closure(m: nn.Module = reference, o: torch.optim.Optimizer = theirs):
            o.zero_grad()
            loss = nn.functional.mse_loss(m(inputs), targets)
            loss.backward()
            return loss

        assert torch.allclose(ours.step(closure), theirs.step(ref_closure), atol=1e-12)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", [CASES[2], CASES[9], CASES[13], CASES[15]], ids=_case_id)
def test_state_dict_round_trip_continues_identically(case: tuple) -> None:
    ours_cls, _, kwargs = case
    sign = -1.0 if kwargs.get("maximize") else 1.0
    model, inputs, targets = _problem()
    straight = ours_cls(model.parameters(), **kwargs)
    expected = _train(model, straight, inputs, targets, 60, sign)[-1]

    model, _, _ = _problem()
    first = ours_cls(model.parameters(), **kwargs)
    _train(model, first, inputs, targets, 30, sign)
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(first.state_dict())
    assert saved_opt["state"], "optimizer state should not be empty after 30 steps"

    resumed_model, _, _ = _problem(seed=1)  # different init, overwritten by the load
    resumed_model.load_state_dict(saved_model)
    resumed = ours_cls(resumed_model.parameters(), **kwargs)
    resumed.load_state_dict(saved_opt)
    got = _train(resumed_model, resumed, inputs, targets, 30, sign)[-1]
    assert torch.equal(got, expected)


@pytest.mark.parametrize("case", [CASES[2], CASES[9], CASES[13], CASES[15]], ids=_case_id)
def test_state_dicts_interchange_with_torch(case: tuple) -> None:
    """Same state keys as torch.optim: torch's state loads into ours and ours into torch's."""
    ours_cls, torch_cls, kwargs = case
    sign = -1.0 if kwargs.get("maximize") else 1.0
    model, inputs, targets = _problem()
    reference = copy.deepcopy(model)
    theirs = torch_cls(reference.parameters(), **kwargs)
    _train(reference, theirs, inputs, targets, 20, sign)
    model.load_state_dict(reference.state_dict())
    ours = ours_cls(model.parameters(), **kwargs)
    # deepcopy: a live state_dict shares its tensors, as it would not after torch.save/load.
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    got = _train(model, ours, inputs, targets, 20, sign)
    expected = _train(reference, theirs, inputs, targets, 20, sign)
    torch.testing.assert_close(got[-1], expected[-1], atol=1e-10, rtol=0)

    back = torch_cls(reference.parameters(), **kwargs)
    back.load_state_dict(copy.deepcopy(ours.state_dict()))
    reference.load_state_dict(model.state_dict())
    got = _train(model, ours, inputs, targets, 10, sign)
    expected = _train(reference, back, inputs, targets, 10, sign)
    torch.testing.assert_close(got[-1], expected[-1], atol=1e-10, rtol=0)


def _rosenbrock(p: torch.Tensor) -> torch.Tensor:
    x, y = p
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


# Settings that reach the minimum (1, 1) of Rosenbrock's valley from (1.5, 1.5) (distance 0.71),
# with the distance each reaches after `steps` full steps (measured: see the comment per row).
ROSENBROCK = [
    (mv_optim.SGD, dict(lr=2e-3), 2000, 0.05),  # 0.016
    (mv_optim.SGD, dict(lr=1e-3, momentum=0.9), 1500, 0.01),  # 0.0015
    (mv_optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True), 1500, 0.01),  # 0.0013
    (mv_optim.RMSProp, dict(lr=1e-2, alpha=0.9), 3000, 0.05),  # 0.029
    (mv_optim.RMSProp, dict(lr=1e-3, momentum=0.9), 1500, 0.01),  # 1.1e-4
    (mv_optim.Adam, dict(lr=0.1), 1500, 0.01),  # 0.0031
    (mv_optim.Adam, dict(lr=0.03, betas=(0.9, 0.99)), 1500, 0.01),  # 0.0015
    (mv_optim.Adam, dict(lr=0.1, amsgrad=True), 1500, 0.05),  # 0.023
    (mv_optim.AdamW, dict(lr=0.1, weight_decay=1e-4), 1500, 0.01),  # 0.00018
]


@pytest.mark.parametrize("cls,kwargs,steps,tol", ROSENBROCK,
                         ids=[f"{c.__name__}-{k}" for c, k, _, _ in ROSENBROCK])
def test_minimises_rosenbrock(cls: type, kwargs: dict, steps: int, tol: float) -> None:
    p = torch.tensor([1.5, 1.5], dtype=torch.float64, requires_grad=True)
    opt = cls([p], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        _rosenbrock(p).backward()
        opt.step()
    distance = (p.detach() - 1).norm().item()
    assert distance < tol, f"ended at {p.tolist()}, distance {distance:.4f} from (1, 1)"
    assert _rosenbrock(p.detach()) < _rosenbrock(torch.tensor([1.5, 1.5])) * 1e-3


@pytest.mark.parametrize(
    "cls,kwargs,argument",
    [
        (mv_optim.SGD, dict(lr=-0.1), "lr"),
        (mv_optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
        (mv_optim.SGD, dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
        (mv_optim.SGD, dict(lr=0.1, nesterov=True), "nesterov"),
        (mv_optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (mv_optim.RMSProp, dict(lr=-1.0), "lr"),
        (mv_optim.RMSProp, dict(eps=-1e-8), "eps"),
        (mv_optim.RMSProp, dict(alpha=1.5), "alpha"),
        (mv_optim.RMSProp, dict(momentum=-0.1), "momentum"),
        (mv_optim.RMSProp, dict(weight_decay=-0.1), "weight_decay"),
        (mv_optim.Adam, dict(lr=-1e-3), "lr"),
        (mv_optim.Adam, dict(betas=(1.0, 0.999)), "beta1"),
        (mv_optim.Adam, dict(betas=(-0.1, 0.999)), "beta1"),
        (mv_optim.Adam, dict(betas=(0.9, 1.0)), "beta2"),
        (mv_optim.Adam, dict(betas=(0.9,)), "betas"),
        (mv_optim.Adam, dict(eps=-1.0), "eps"),
        (mv_optim.AdamW, dict(weight_decay=-0.01), "weight_decay"),
        (mv_optim.AdamW, dict(betas=(0.9, 1.5)), "beta2"),
    ],
)
def test_bad_hyper_parameters_raise_value_error_naming_them(cls: type, kwargs: dict,
                                                           argument: str) -> None:
    param = nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=argument):
        cls([param], **kwargs)


def test_bad_hyper_parameter_in_a_group_is_rejected() -> None:
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="lr"):
        mv_optim.SGD([{"params": [a]}, {"params": [b], "lr": -1.0}], lr=0.1)
    opt = mv_optim.Adam([a], lr=1e-3)
    with pytest.raises(ValueError, match="beta2"):
        opt.add_param_group({"params": [b], "betas": (0.9, 2.0)})


def test_parameters_without_grad_are_skipped() -> None:
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    for cls in (mv_optim.SGD, mv_optim.RMSProp, mv_optim.Adam, mv_optim.AdamW):
        opt = cls([a, b], lr=0.1)
        opt.zero_grad()
        a.sum().backward()
        opt.step()
        assert torch.equal(b.detach(), torch.ones(2))
        assert b not in opt.state
        assert not torch.equal(a.detach(), torch.ones(2))
        with torch.no_grad():
            a.fill_(1.0)


def test_rmsprop_alias_and_adamw_default_decay_match_torch() -> None:
    assert mv_optim.RMSprop is mv_optim.RMSProp
    p = nn.Parameter(torch.zeros(1))
    assert mv_optim.AdamW([p]).defaults["weight_decay"] == torch.optim.AdamW([p]).defaults[
        "weight_decay"]
