"""The BiLSTM student served from numpy and one compiled kernel (mkd.serving.lstm_numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mkd.config import StudentConfig
from mkd.models.students import build_student
from mkd.serving import lstm_kernels
from mkd.serving.lstm_numpy import BiLSTMNumpy
from mkd.serving.numpy_server import check_logits
from tests.tinyfix import SPECS, make_examples

pytestmark = pytest.mark.usefixtures("one_thread")
KERNELS = ["numba", "python"]


def kernel_of(name: str):
    if name == "numba":
        if lstm_kernels.KERNEL is None:
            pytest.skip("numba is not installed")
        return lstm_kernels.KERNEL
    return lstm_kernels.python_kernel()


def texts() -> list[str]:
    return [t for s in SPECS.values() for e in make_examples(s, 40, 0) for t in e.texts]


def bilstm(**kw):
    torch.manual_seed(0)
    cfg = StudentConfig(type="bilstm", embeddings="random", embedding_dim=8, hidden_size=16, max_length=6, **kw)
    model = build_student(cfg, SPECS, texts(), None)
    with torch.no_grad():  # weights away from their start: gates that saturate, biases that matter
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model.eval()


def test_rational_tanh_and_sigmoid_stay_near_torch():
    x = np.linspace(-20, 20, 40_001).astype(np.float32)
    tanh = np.array([lstm_kernels.tanh(v) for v in x[::7]], np.float32)
    sigmoid = np.array([lstm_kernels.sigmoid(v) for v in x[::7]], np.float32)
    assert np.abs(tanh - np.tanh(x[::7])).max() < 5e-7
    assert np.abs(sigmoid - torch.sigmoid(torch.from_numpy(x[::7])).numpy()).max() < 5e-7


@pytest.mark.parametrize("kernel", KERNELS)
def test_bilstm_numpy_gives_pytorch_logits(kernel):
    model = bilstm()
    served = BiLSTMNumpy.from_model(model, texts(), kernel_of(kernel))
    assert served is not None
    for name, spec in SPECS.items():
        examples = make_examples(spec, 25, 1)
        columns = [[e.texts[i] for e in examples] + [""] * (i == 0) + ["x"] * (i == 1)
                   for i in range(len(spec.text_fields))]  # an empty text, a one-word text
        if not spec.is_pair:
            columns = [columns[0] + ["the [MASK] movie " * 4]]  # truncated at max_length, the mask read as <unk>
        report = check_logits(served, model, name, columns)
        assert report["max_abs_diff"] < 1e-5 and report["argmax_agreement"] == 1.0


def test_bilstm_numpy_serves_only_what_it_computes_exactly():
    with pytest.raises(Exception, match="no head for task 'nope'"):
        BiLSTMNumpy.from_model(bilstm(), texts(), lstm_kernels.python_kernel()).logits("nope", [["x"]])
    assert BiLSTMNumpy.from_model(bilstm(num_layers=2), texts(), lstm_kernels.python_kernel()) is None
    assert BiLSTMNumpy.from_model(bilstm(), texts(), None) is None  # no numba: ONNX Runtime serves it
    served = BiLSTMNumpy.from_model(bilstm(), texts(), lstm_kernels.python_kernel())
    served.directions[1][1][0, 0] += 0.5  # a recurrent weight of the backward direction drifts
    with pytest.raises(Exception, match="differ from PyTorch"):
        check_logits(served, bilstm(), "sent", [["good movie with a plot", "bad plot"]])


def test_a_bilstm_on_the_teachers_subwords_serves_from_numpy_too(tmp_path):
    """A BiLSTM over the teacher's tokenizer (teacher-static vectors): its subword ids (tokie or
    `tokenizers`), the augmentation's mask read as the tokenizer's own."""
    from mkd.models.teacher import TeacherModel
    from tests.tinyfix import write_tiny_bert

    bert = write_tiny_bert(tmp_path / "bert", hidden=16, seed=1)
    torch.manual_seed(0)
    TeacherModel.from_pretrained(str(bert), SPECS, max_length=32).save(tmp_path / "teacher")
    cfg = StudentConfig(type="bilstm", embeddings="teacher-static", hidden_size=16, max_length=6)
    model = build_student(cfg, SPECS, texts(), tmp_path / "teacher").eval()
    served = BiLSTMNumpy.from_model(model, texts(), lstm_kernels.python_kernel())
    assert served is not None
    for name, spec in SPECS.items():
        examples = make_examples(spec, 12, 2)
        columns = [[e.texts[i] for e in examples] + ["a [MASK] b"] for i in range(len(spec.text_fields))]
        report = check_logits(served, model, name, columns)
        assert report["max_abs_diff"] < 1e-5 and report["argmax_agreement"] == 1.0
