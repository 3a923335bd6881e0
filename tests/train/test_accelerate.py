"""The speed levers (channels-last, bf16 autocast, torch.compile) as callbacks, on the CPU.

Each lever must leave what is learned alone (up to rounding) and clean up after itself.
torch.compile is exercised with the "aot_eager" backend: the same graph capture and autograd
tracing as the default, without generating C++ (which takes minutes on this CPU and is
measured in bench/bench_time_to_accuracy.py instead).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.artifacts.serialization import load_model, save_model
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.jobs.train_run import _compile_seconds
from digitlab.models import CNN, channels_last_hazards, to_channels_last
from digitlab.train.accelerate import ChannelsLastCB, CompileCB, MixedPrecisionCB
from digitlab.train.callbacks import RecorderCB
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Callback, Learner
from digitlab.train.losses import batch_accuracy, cross_entropy
from digitlab.train.recipe import TrainConfig, build_learner, train
from digitlab.train.resume import CheckpointCB


class Spy(Callback):
    """Remembers what the loop looked like inside a batch."""

    order = 0

    def before_fit(self) -> None:
        self.pred_dtypes, self.input_channels_last, self.autocast_in_loss = set(), set(), set()

    def after_predict(self) -> None:
        self.pred_dtypes.add(self.learn.preds.dtype)
        self.input_channels_last.add(self.learn.batch[0].is_contiguous(memory_format=torch.channels_last))

    def after_backward(self) -> None:
        self.autocast_in_loss.add(torch.is_autocast_enabled("cpu"))


@pytest.fixture
def tensors(digits_factory):
    """Two-channel 8x8 'images' (channels-last differs from the default layout only for C > 1)."""
    images, labels = digits_factory(16, (3, 7), 0)
    x = F.avg_pool2d(torch.as_tensor(images).float().unsqueeze(1) / 255, 3, stride=3, padding=1)  # (32, 1, 10, 10)
    x = torch.cat([x, 1 - x], 1)  # (32, 2, 10, 10)
    y = torch.as_tensor(labels == 3).long()
    return x, y


def conv_learner(tensors, cbs=(), seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    x, y = tensors
    model = nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)
    )
    dls = DataLoaders.from_tensors(x, y, x[:8], y[:8], batch_size=8, seed=seed)
    return Learner(dls, model, cross_entropy, lr=0.1, metrics=[batch_accuracy], cbs=[*cbs, RecorderCB(), Spy()])


def fitted(learn: Learner, n_epoch: int) -> Learner:
    learn.fit(n_epoch)  # fit returns None, as fastai's
    return learn


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_channels_last_changes_the_layout_not_the_result(tensors):
    plain = fitted(conv_learner(tensors), 2)
    nhwc = fitted(conv_learner(tensors, [ChannelsLastCB()]), 2)
    assert nhwc.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.spy.input_channels_last == {True} and plain.spy.input_channels_last == {False}
    for a, b in zip(weights(plain.model), weights(nhwc.model)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # other kernels, same arithmetic


def test_bf16_autocast_covers_forward_and_loss_only(tensors):
    learn = fitted(conv_learner(tensors, [MixedPrecisionCB()]), 2)
    assert learn.spy.pred_dtypes == {torch.bfloat16}  # the forward ran in bf16
    assert learn.spy.autocast_in_loss == {False}  # backward and the step ran outside autocast
    assert not torch.is_autocast_enabled("cpu")
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())  # master weights stay fp32
    plain = fitted(conv_learner(tensors), 2)
    assert learn.recorder.history[-1]["valid_loss"] == pytest.approx(plain.recorder.history[-1]["valid_loss"], abs=0.05)


def test_bf16_autocast_is_left_when_an_error_ends_the_fit(tensors):
    class Boom(Callback):
        def after_predict(self) -> None:
            raise RuntimeError("boom")

    learn = conv_learner(tensors, [MixedPrecisionCB(), Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        learn.fit(1)
    assert not torch.is_autocast_enabled("cpu")


def test_fp16_autocast_is_refused_on_the_cpu(tensors):
    with pytest.raises(DigitlabError, match="bfloat16 on the CPU"):
        conv_learner(tensors, [MixedPrecisionCB(torch.float16)]).fit(1)
    assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(DigitlabError, match=r"bfloat16 or torch\.float16"):
        MixedPrecisionCB(torch.float64)


def test_compiled_training_matches_eager_training(tensors):
    torch._dynamo.reset()
    eager = fitted(conv_learner(tensors), 2)
    compiler = CompileCB(backend="aot_eager")
    compiled = fitted(conv_learner(tensors, [compiler]), 2)
    assert compiled.model._compiled_call_impl is not None  # nn.Module.compile: compiled in place
    assert list(compiled.model.state_dict()) == list(eager.model.state_dict())  # no "_orig_mod." keys
    for a, b in zip(weights(eager.model), weights(compiled.model)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # batches of a new shape or mode are timed as compiling: train 8 and valid 8 here (32 and 8 images)
    assert compiler.seconds[True] > 0 and compiler.seconds[False] > 0
    assert compiler.compile_seconds == compiler.seconds[True] + compiler.seconds[False]
    assert compiler._seen == {((8, 2, 10, 10), True), ((8, 2, 10, 10), False)}
    compiled.fit(1)  # a second fit reuses the compiled module
    assert compiled.model._digitlab_compiled
    assert compiled.compiler is compiler  # reached as learn.compiler
    assert _compile_seconds(compiled) == round(compiler.compile_seconds, 4) and _compile_seconds(eager) is None


def test_compiled_cnn_saves_and_checkpoints_like_a_plain_one(tmp_path, digits_factory):
    torch._dynamo.reset()
    images, labels = digits_factory(8, (3, 7), 0)
    x = torch.as_tensor(images).float() / 255
    y = torch.as_tensor(labels == 3).long()
    saved = []
    model = CNN(n_out=2, width=4)
    dls = DataLoaders.from_tensors(x, y, x[:6], y[:6], batch_size=8)
    learn = Learner(
        dls,
        model,
        cross_entropy,
        lr=0.05,
        cbs=[CompileCB(backend="aot_eager"), CheckpointCB(lambda m, epoch: saved.append(epoch))],
    )
    learn.fit(1)
    meta = {"classes": ["3", "7"], "binary": False, "normalization": {"scale": 1.0, "mean": 0.0, "std": 1.0}}
    path = save_model(model, tmp_path / "run", meta)
    loaded = load_model(path).model.eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert saved == [1]


def test_train_config_turns_levers_into_callbacks(digits_factory):
    images, labels = digits_factory(6, (3, 7), 0)
    digits = Digits(torch.as_tensor(images), torch.as_tensor(labels == 7).long(), ("3", "7"))
    learn, _config, _, _ = build_learner(
        TrainConfig(model="cnn", precision="bf16", compile=True, tta=True, width=4), digits, digits, progress=False
    )
    names = {type(cb).__name__ for cb in learn.cbs}
    assert {"MixedPrecisionCB", "CompileCB", "TTACB"} <= names
    plain, _, _, _ = build_learner(TrainConfig(model="cnn", width=4), digits, digits, progress=False)
    assert not {"MixedPrecisionCB", "CompileCB", "TTACB"} & {type(cb).__name__ for cb in plain.cbs}
    with pytest.raises(DigitlabError, match="unknown precision 'fp8'"):
        build_learner(TrainConfig(model="cnn", precision="fp8"), digits, digits, progress=False)


def test_bf16_cnn_trains_to_the_same_accuracy(digits_factory):
    images, labels = digits_factory(20, (3, 7), 0)
    digits = Digits(torch.as_tensor(images), torch.as_tensor(labels == 7).long(), ("3", "7"))
    images, labels = digits_factory(10, (3, 7), 1)
    valid = Digits(torch.as_tensor(images), torch.as_tensor(labels == 7).long(), ("3", "7"))
    config = TrainConfig(model="cnn", epochs=2, width=8, bs=8, augment=False)
    fp32 = train(config, digits, valid, progress=False).history[-1]
    bf16 = train(replace(config, precision="bf16"), digits, valid, progress=False).history[-1]
    assert fp32["batch_accuracy"] == bf16["batch_accuracy"] == 1.0
    assert bf16["valid_loss"] == pytest.approx(fp32["valid_loss"], abs=0.05)


def test_channels_last_is_left_off_where_torch_mishandles_it(tensors):
    # 1x1 stride-2 convolutions over 2-7 channels crash torch 2.13's CPU kernels in channels-last
    risky = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.Conv2d(4, 4, 1, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    assert channels_last_hazards(risky) == ["1"]
    assert not to_channels_last(risky) and not risky[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = tensors
    learn = Learner(
        DataLoaders.from_tensors(x, y, x[:8], y[:8], batch_size=8),
        risky,
        cross_entropy,
        lr=0.1,
        cbs=[ChannelsLastCB(), Spy()],
    )
    with pytest.warns(UserWarning, match="channels-last left off.*: 1"):
        learn.fit(1)
    assert learn.spy.input_channels_last == {False}
    assert (
        not CNN(width=4).stages[0].convs[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    )  # its shortcuts are such convs
    assert CNN(width=8).stages[0].convs[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert channels_last_hazards(CNN(width=16)) == [] and channels_last_hazards(CNN(width=8)) == []
    assert channels_last_hazards(CNN(width=4)) == ["stages.0.shortcut.0", "stages.1.shortcut.0"]
