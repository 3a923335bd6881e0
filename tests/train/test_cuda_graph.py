"""The graphed training step (`digitlab.train.cuda_graph`): where it applies, its fallbacks, and the
static step it captures, run uncaptured on the CPU against the Learner's eager step. Tests marked
`cuda` capture for real and run whenever a GPU is present."""

from __future__ import annotations

import pytest
import torch

from digitlab.errors import DigitlabError
from digitlab.train.accelerate import CompileCB
from digitlab.train.cuda_graph import CudaGraphCB, StaticStep, graph_blocker, sgd_step
from digitlab.train.distributed import DistributedCB
from digitlab.train.learner import Callback
from digitlab.train.optim import SGD
from digitlab.train.recipe import TrainConfig, build_learner
from digitlab.train.tta import TTACB

# a small CNN run with everything the CUDA recipe has: one-cycle (lr and momentum move every batch),
# momentum, weight decay, label smoothing, augmentation, and no marks (the CUDA recipe's outliers=0: they
# act inside the step, so the graph would not apply); 60 images in batches of 16 (the last is 12)
SMALL = dict(model="cnn", epochs=2, bs=16, lr=0.4, width=8, seed=3, outliers=0.0, thicken=0.0)


def fit(make_digits, graphs: str, capture: bool = False, **changes):
    """The run's learner after fit, with the CUDA-graph callback in `graphs` mode (uncaptured by default)."""
    config = TrainConfig(**{**SMALL, **changes}, cuda_graphs="off")
    learn = build_learner(config, make_digits(30), make_digits(8, seed=1), progress=False).learn
    said: list[str] = []
    if graphs != "off":
        learn.add_cbs([CudaGraphCB(graphs, capture=capture, say=said.append)])
    learn.fit(config.epochs)
    return learn, said


def weights(learn) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in learn.model.state_dict().items()}


def test_the_static_step_trains_as_the_eager_step(make_digits):
    """Same batches, augmentation, schedule, partial batches: the same weights and history as before."""
    eager, _ = fit(make_digits, "off")
    static, said = fit(make_digits, "auto")
    assert said == [] and static.cuda_graph.status == "graphed, 2 partial batches eager"
    for name, value in weights(eager).items():
        torch.testing.assert_close(weights(static)[name], value, rtol=1e-5, atol=1e-6, msg=name)  # sgd_step rounds
    for a, b in zip(eager.recorder.history, static.recorder.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["batch_accuracy"] == pytest.approx(b["batch_accuracy"], abs=1e-9)
    assert eager.recorder.lrs == static.recorder.lrs and len(static.recorder.losses) == 8
    assert all(p.grad is None for p in static.model.parameters())  # no gradient left pointing into a graph
    assert static.step_batch == static.eager_step  # the Learner's own step again after the fit


@pytest.mark.parametrize(
    "model, classes, precision, graphs",
    [("cnn", tuple(range(10)), "bf16", "auto"), ("cnn", (3, 7), "fp32", "auto"), ("linear", (3, 7), "fp32", "off")],
)
def test_a_fit_reads_the_host_per_epoch_not_per_batch(make_digits, host_reads, model, classes, precision, graphs):
    """A host read in the step (`bool(tensor)` in a loss's check of its targets, a metric's `.item()`) is a wait
    for the GPU every batch, and makes the capture fail. Twice the batches, the same reads: none is per batch,
    in the graphed step (here uncaptured), in the eager one (the epochs' last, partial batches) or in validation."""
    reads = []
    for bs in (16, 8):
        config = TrainConfig(**{**SMALL, "model": model, "bs": bs, "precision": precision}, cuda_graphs="off")
        learn = build_learner(config, make_digits(9, classes), make_digits(3, classes, seed=1), progress=False).learn
        if graphs != "off":
            learn.add_cbs([CudaGraphCB(graphs, capture=False, say=print)])
        learn.divergence_guard.every = 10**6  # on the CPU the guard looks at every batch: free there (GPU: every 32)
        with host_reads() as seen:
            learn.fit(config.epochs)
        reads.append(sorted(seen.seen))
    assert reads[0] == reads[1], reads  # per epoch: the recorder's means, the guard's look at the epoch's end
    assert len(reads[0]) == 2 * 4  # 2 epochs x (train loss, valid loss, accuracy, the guard's one look)


@pytest.mark.parametrize("model, classes", [("cnn", tuple(range(10))), ("linear", (3, 7)), ("simple_net", (3, 7))])
def test_the_step_runs_on_a_device_that_holds_no_data(make_digits, model, classes):
    """On the meta device tensors have shapes and no values: a step that read one on the host, or mixed in a
    tensor made on the CPU, would fail here as it would inside a CUDA graph's capture."""
    learn = build_learner(
        TrainConfig(**{**SMALL, "model": model}), make_digits(8, classes), make_digits(2, classes), progress=False
    ).learn
    learn.model.to("meta")
    learn.opt = learn.opt_func(learn.model.parameters(), lr=0.1)
    xb, yb = (t.to("meta") for t in next(iter(learn.dls.train)))
    preds, loss = StaticStep(learn, xb, yb, capture=False).run(xb, yb)
    assert preds.device.type == loss.device.type == "meta" and loss.shape == ()
    assert all(p.grad is not None and p.grad.device.type == "meta" for p in learn.model.parameters())


def test_sgd_step_with_device_rates_is_sgds_update():
    torch.manual_seed(0)
    params = [torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    opt, twin_opt = SGD(params, lr=0.1, mom=0.9, wd=5e-4), SGD(twins, lr=0.1, mom=0.9, wd=5e-4)
    for t in twins:
        twin_opt.state[t]["momentum_buffer"] = torch.zeros_like(t)  # as StaticStep makes them
    rates = [(torch.zeros(()), torch.zeros(()))]
    for lr, mom in ((0.1, 0.95), (0.4, 0.9), (0.02, 0.85)):
        grads = [torch.randn_like(p) for p in params]
        for p, t, g in zip(params, twins, grads):
            p.grad, t.grad = g.clone(), g.clone()
        opt.lr, opt.mom, twin_opt.lr, twin_opt.mom = lr, mom, lr, mom
        opt.step()
        rates[0][0].fill_(-lr)
        rates[0][1].fill_(mom)
        sgd_step(twin_opt, rates)
        for p, t in zip(params, twins):
            # the same update up to float32 rounding: SGD's p.add_(buf, alpha=-lr) rounds once, lr * buf then + twice
            torch.testing.assert_close(t, p, rtol=1e-6, atol=1e-7)


def test_where_the_graph_cannot_apply(make_digits):
    learn = build_learner(TrainConfig(**SMALL), make_digits(4), make_digits(2), progress=False).learn
    learn.opt = learn.opt_func(learn.model.parameters(), lr=0.1)
    assert graph_blocker(learn) == "the model is on cpu (CUDA graphs are CUDA's)"
    assert graph_blocker(learn, need_cuda=False) is None
    learn.add_cbs([TTACB()])  # its after_predict acts in validation only
    assert graph_blocker(learn, need_cuda=False) is None

    class Clip(Callback):
        def after_backward(self) -> None: ...

    blockers = ((Clip(), "Clip acts inside the training step (after_backward)"), (DistributedCB(), "several processes"))
    for cb, words in blockers:
        learn.add_cbs([cb])
        assert words in graph_blocker(learn, need_cuda=False)
        learn.remove_cbs([cb])
    learn.add_cbs([CompileCB(backend="eager")])
    assert "torch.compile" in graph_blocker(learn, need_cuda=False)
    learn.remove_cbs([learn.compiler])
    learn.opt = torch.optim.Adam(learn.model.parameters())
    assert graph_blocker(learn, need_cuda=False) == "the optimizer is Adam (the graphed step is digitlab's SGD)"


def test_auto_off_cuda_is_the_eager_step_and_says_nothing(make_digits):
    learn, said = fit(make_digits, "auto", capture=True, epochs=1)
    assert said == [] and learn.cuda_graph.status == "eager: the model is on cpu (CUDA graphs are CUDA's)"


def test_on_where_it_cannot_apply_is_one_line(make_digits, capsys):
    with pytest.raises(DigitlabError, match=r"^--cuda-graphs on: the run is on cpu, and CUDA graphs are CUDA's$"):
        build_learner(TrainConfig(**SMALL, cuda_graphs="on"), make_digits(4), make_digits(2), progress=False)
    with pytest.raises(DigitlabError, match=r"^--cuda-graphs on: the model is on cpu"):
        fit(make_digits, "on", capture=True, epochs=1)
    with pytest.raises(DigitlabError, match="choose one of auto, on, off"):
        CudaGraphCB("sometimes")
    from digitlab.cli import main

    assert main(["train", "--model", "cnn", "--cuda-graphs", "on", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "digitlab: error: --cuda-graphs on: the run is on cpu, and CUDA graphs are CUDA's\n"


def test_a_model_that_cannot_be_captured_trains_eagerly(make_digits, monkeypatch):
    """What a failed capture raised is named in one line; the fit goes on as the eager one would."""

    def refuse(self, *args, **kwargs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(StaticStep, "__init__", refuse)
    eager, _ = fit(make_digits, "off", epochs=1)
    learn, said = fit(make_digits, "auto", epochs=1)
    assert said == [
        "CUDA graphs off: the model could not be captured (CUDA error: operation not permitted when stream is "
        "capturing): a host read of a tensor in the model or the loss?; training with the eager step"
    ]
    assert learn.cuda_graph.status.startswith("eager: the model could not be captured")
    for name, value in weights(eager).items():
        assert torch.equal(weights(learn)[name], value), name  # the eager step itself: bit for bit
    with pytest.raises(DigitlabError, match=r"^--cuda-graphs on: the model could not be captured"):
        fit(make_digits, "on", epochs=1)


def test_the_recipe_adds_the_callback_unless_off(make_digits):
    def cbs(mode: str) -> list[str]:
        setup = build_learner(TrainConfig(**SMALL, cuda_graphs=mode), make_digits(4), make_digits(2), progress=False)
        return [type(cb).__name__ for cb in setup.learn.cbs]

    assert "CudaGraphCB" in cbs("auto") and "CudaGraphCB" not in cbs("off")


def test_the_graph_stands_aside_in_lr_find(make_digits):
    from digitlab.train.lr_finder import lr_find

    learn = build_learner(TrainConfig(**SMALL), make_digits(30), make_digits(4), progress=False).learn
    seen: list[list[str]] = []

    class Spy(Callback):
        def before_fit(self) -> None:
            seen.append([type(cb).__name__ for cb in self.learn.cbs])

    learn.add_cbs([Spy()])
    lr_find(learn, num=5)
    assert "CudaGraphCB" not in seen[0] and "DeviceCB" in seen[0]


# ---- on a GPU ---------------------------------------------------------------------------------


@pytest.mark.cuda
def test_the_captured_graph_trains_as_the_eager_step_on_cuda(make_digits):
    eager, _ = fit(make_digits, "off", device="cuda")
    graphed, said = fit(make_digits, "on", capture=True, device="cuda")
    assert said == [] and graphed.cuda_graph.status == "graphed, 2 partial batches eager"
    for name, value in weights(eager).items():
        torch.testing.assert_close(weights(graphed)[name], value, rtol=1e-3, atol=1e-4, msg=name)
    for a, b in zip(eager.recorder.history, graphed.recorder.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)


@pytest.mark.cuda
def test_a_host_read_in_forward_falls_back_on_cuda(make_digits):
    """A model with data-dependent control flow: the capture fails, the fit trains eagerly and says so."""
    config = TrainConfig(**SMALL, device="cuda", cuda_graphs="off")
    learn = build_learner(config, make_digits(30), make_digits(8, seed=1), progress=False).learn
    forward = learn.model.forward

    def branchy(x: torch.Tensor) -> torch.Tensor:
        return forward(x) if bool(x.sum() > -1e9) else forward(-x)  # bool(): a host read of a device tensor

    learn.model.forward = branchy
    said: list[str] = []
    learn.add_cbs([CudaGraphCB("auto", say=said.append)])
    learn.fit(1)
    assert len(said) == 1 and "could not be captured" in said[0] and learn.cuda_graph.status.startswith("eager")
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


@pytest.mark.cuda
def test_bf16_autocast_is_captured_with_the_step_on_cuda(make_digits):
    eager, _ = fit(make_digits, "off", device="cuda", precision="bf16")
    graphed, said = fit(make_digits, "on", capture=True, device="cuda", precision="bf16")
    assert said == [] and graphed.cuda_graph.status.startswith("graphed") and graphed.cuda_graph.capture_seconds > 0
    for a, b in zip(eager.recorder.history, graphed.recorder.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-2)  # bf16 rounding, two kernel orders
