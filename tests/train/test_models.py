"""Models: input layouts, the book's parameter counts, and rebuilding from a config."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from digitlab.core.defaults import MODEL_DEFAULTS
from digitlab.errors import DigitlabError
from digitlab.models import (
    CNN,
    CNN_WIDTH,
    MODELS,
    Linear,
    SimpleNet,
    build_model,
    init_params,
    linear1,
    model_config,
    simple_net,
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


LAYOUTS = [(5, 28, 28), (5, 784), (5, 1, 28, 28)]


@pytest.mark.parametrize("name, n_out", [("linear", 1), ("simple_net", 1), ("simple_net", 10), ("cnn", 10), ("cnn", 2)])
@pytest.mark.parametrize("shape", LAYOUTS)
def test_every_input_layout_gives_n_by_n_out(name: str, n_out: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(name, n_out, **({"width": 8} if name == "cnn" else {}))
    x = torch.rand(shape)
    out = model(x)
    assert out.shape == (5, n_out) and out.dtype == torch.float32
    model.eval()
    torch.testing.assert_close(model(x), model(x.reshape(5, 784)))  # same pixels, same answer


@pytest.mark.parametrize(
    "shape, dtype, message",
    [
        ((5, 27, 28), torch.float32, r"\(N, 28, 28\), \(N, 784\) or \(N, 1, 28, 28\), got \(5, 27, 28\)"),
        ((5, 3, 28, 28), torch.float32, r"got \(5, 3, 28, 28\)"),
        ((784,), torch.float32, r"got \(784,\)"),
        ((5, 28, 28), torch.uint8, r"float images.*images\.float\(\) / 255"),
    ],
)
def test_bad_inputs(shape: tuple[int, ...], dtype: torch.dtype, message: str) -> None:
    for model in (Linear(), SimpleNet(), CNN(width=8)):
        with pytest.raises(DigitlabError, match=message):
            model(torch.zeros(shape, dtype=dtype))


def test_book_parameter_counts() -> None:
    assert n_params(Linear()) == 785  # 784 weights + 1 bias
    assert n_params(SimpleNet()) == 23_581  # 784*30 + 30 + 30*1 + 1
    assert n_params(simple_net()) == 23_581
    assert n_params(Linear(n_out=10)) == 7_850


def test_simple_net_layers_are_the_books() -> None:
    net = simple_net()
    assert [type(m) for m in net.layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert net[0] is net.layers[0] and net[0].weight.shape == (30, 784)  # the book's simple_net[0]
    x = torch.rand(3, 784)
    torch.testing.assert_close(net(x), net.layers(x))


def test_init_params() -> None:
    torch.manual_seed(0)
    w = init_params((28 * 28, 1))
    b = init_params(1)
    assert w.shape == (784, 1) and b.shape == (1,)
    assert w.requires_grad and w.is_leaf and b.requires_grad and b.is_leaf
    small = init_params(10_000, std=0.01)
    assert 0.008 < small.std().item() < 0.012


def test_linear1_is_matmul_plus_bias() -> None:
    torch.manual_seed(0)
    w, b = init_params((784, 1)), init_params(1)
    xb = torch.rand(6, 784)
    out = linear1(xb, w, b)
    assert out.shape == (6, 1)
    torch.testing.assert_close(out, xb @ w + b)
    out.sum().backward()  # gradients flow to the caller's parameters
    torch.testing.assert_close(w.grad, xb.sum(0).unsqueeze(1))
    torch.testing.assert_close(b.grad, torch.tensor([6.0]))


@pytest.mark.parametrize(
    "name, n_out, kwargs", [("linear", 1, {}), ("simple_net", 10, {"n_hidden": 12}), ("cnn", 10, {"width": 8})]
)
def test_build_model_round_trip(name: str, n_out: int, kwargs: dict) -> None:
    model = build_model(name, n_out, **kwargs)
    assert isinstance(model, MODELS[name])
    config = json.loads(json.dumps(model_config(model)))  # survives JSON
    assert config == {"name": name, "n_out": n_out, **kwargs}
    rebuilt = build_model(**config)
    rebuilt.load_state_dict(model.state_dict())  # same architecture: every tensor fits
    assert model_config(rebuilt) == config


def test_build_model_errors() -> None:
    with pytest.raises(DigitlabError, match="unknown model 'resnet18'; choose one of linear, simple_net, cnn"):
        build_model("resnet18", 10)
    with pytest.raises(DigitlabError, match="cannot build model 'linear'"):
        build_model("linear", 1, width=3)
    with pytest.raises(DigitlabError, match="not a registered model"):
        model_config(nn.Linear(2, 2))


def test_cnn_forward_backward() -> None:
    torch.manual_seed(0)
    model = CNN(n_out=10, width=16)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_cnn_default_size_is_lean_and_the_recipes() -> None:
    assert CNN().init_kwargs["width"] == CNN_WIDTH == MODEL_DEFAULTS["cnn"]["width"]
    assert 50_000 <= n_params(CNN()) <= 150_000


def test_cnn_eval_is_deterministic_and_per_image() -> None:
    torch.manual_seed(0)
    model = CNN(width=8)
    model(torch.rand(16, 784))  # one training-mode pass moves the batchnorm running stats
    model.eval()
    x = torch.rand(6, 28, 28)
    with torch.no_grad():
        a, b = model(x), model(x)
        alone = model(x[:1])
    assert torch.equal(a, b)
    torch.testing.assert_close(alone, a[:1])  # eval batchnorm uses running stats: no batch effect


def test_cnn_repr_is_one_line_with_its_parameter_count() -> None:
    model = CNN(n_out=10, width=16)
    text = repr(model)
    assert "\n" not in text and text.startswith("CNN(n_out=10, width=16")
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in text
