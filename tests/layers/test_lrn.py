"""Local response normalisation against torch.nn.LocalResponseNorm and the paper's formula."""

import pytest
import torch
from torch import nn

from modernvision.layers.lrn import LocalResponseNorm, local_response_norm


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(2, 6, 9), (2, 16, 7, 5), (1, 5, 3, 4, 6)])
def test_matches_torch(size, shape):
    x = torch.randn(shape) * 3
    ours = LocalResponseNorm(size, alpha=1e-3, beta=0.7, k=1.5)
    ref = nn.LocalResponseNorm(size, alpha=1e-3, beta=0.7, k=1.5)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_gradient_matches_torch():
    x = torch.randn(2, 12, 6, 6, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(2, 12, 6, 6)
    (LocalResponseNorm(5, 1e-2, 0.75, 2.0)(x) * weights).sum().backward()
    (nn.LocalResponseNorm(5, 1e-2, 0.75, 2.0)(x_ref) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)


def test_gradcheck():
    x = torch.randn(1, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: local_response_norm(t, 3, 0.5, 0.75, 1.0), (x,))


def test_paper_formula_by_hand():
    # AlexNet Sec. 3.3: b^i = a^i / (k + alpha * sum_j (a^j)^2)^beta over channels i-2..i+2;
    # our alpha is the paper's times n (it is divided by the window size).
    x = torch.arange(1.0, 8.0).view(1, 7, 1, 1)
    k, alpha, beta, n = 2.0, 1e-4, 0.75, 5
    expected = torch.empty(7)
    for i in range(7):
        window = x[0, max(0, i - 2): min(6, i + 2) + 1, 0, 0]
        expected[i] = x[0, i, 0, 0] / (k + alpha * window.square().sum()) ** beta
    out = local_response_norm(x, n, alpha=alpha * n, beta=beta, k=k)
    torch.testing.assert_close(out.flatten(), expected)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="size"):
        LocalResponseNorm(0)
    with pytest.raises(ValueError, match=r"\(N, C, \*\)"):
        local_response_norm(torch.randn(4, 5), 3)
