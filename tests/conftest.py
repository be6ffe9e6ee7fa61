import numpy as np
import pytest
import torch

# Tests run as `pytest -n 2` on 2 cores: one intra-op thread per worker avoids oversubscription
# (small ops get ~100x slower when two workers each spin two threads).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
