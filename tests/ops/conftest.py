import pytest
import torch


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    # These ops run many small kernels; on a shared 2-core machine, intra-op thread hand-offs
    # cost ~100x more than the work (1.3 s vs 9 ms for a small roi_pool forward + backward).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
