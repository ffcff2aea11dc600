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
