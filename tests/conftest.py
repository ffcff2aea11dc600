"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
import torch

from tests.tinyfix import write_tiny_bert


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine OpenMP spinning makes an LSTM step
    hundreds of times slower. Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_bert_dir(tmp_path_factory):
    """A tiny random BERT (hidden 16) saved like a hub model."""
    return write_tiny_bert(tmp_path_factory.mktemp("tinybert"), hidden=16)


# The longest tests (minutes each; `make test` prints the slowest), started first and on different workers:
# with `-n 2 --maxschedchunk 1` each worker takes the next test when it is free, so the long ones overlap
# with each other and with the short ones instead of ending a run alone.
LONGEST = ("test_a_tiny_study_runs_end_to_end", "test_the_gpu_scale_runs_tiny_on_cpu",
           "test_real_pooler_teacher_exported_to_hf_labels_the_transfer_set_the_same")


def pytest_collection_modifyitems(config, items):
    """The longest tests first, in LONGEST's order (none shares a module-scoped fixture)."""
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.originalname, len(rank)))
