"""Test-time augmentation: one-pixel shifts, the averaged outputs, the validation callback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from digitlab.artifacts.inference import model_outputs
from digitlab.models import Linear
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Callback, Learner
from digitlab.train.losses import batch_accuracy, cross_entropy
from digitlab.train.tta import DEFAULT_SHIFTS, TTACB, shifted, tta_outputs


def test_shifted_moves_pixels_and_fills_with_the_background():
    x = torch.full((2, 5, 5), -0.5)  # a normalised background, not 0
    x[0, 2, 2] = 3.0
    x[1, 0, 0] = 2.0
    right = shifted(x, 1, 0)
    assert right[0, 2, 3] == 3.0 and right[0, 2, 2] == -0.5
    down = shifted(x, 0, 1)
    assert down[0, 3, 2] == 3.0
    left_up = shifted(x, -1, -1)
    assert left_up[0, 1, 1] == 3.0
    assert (shifted(x, -1, 0)[1] == -0.5).all()  # the corner pixel left the image; background came in
    assert (right[:, :, 0] == -0.5).all()  # the uncovered column is background
    torch.testing.assert_close(shifted(x, 1, 0)[0], torch.roll(x[0], 1, dims=1))  # = roll where the edge is background
    assert shifted(x, 0, 0) is x


def test_shifted_takes_every_layout_the_models_take():
    x = torch.rand(3, 28, 28)
    expected = shifted(x, 1, -1)
    torch.testing.assert_close(shifted(x.reshape(3, 784), 1, -1), expected.reshape(3, 784))
    torch.testing.assert_close(shifted(x.unsqueeze(1), 1, -1), expected.unsqueeze(1))


def test_tta_outputs_is_the_mean_over_shifted_copies():
    torch.manual_seed(0)
    model = Linear(10)
    x = torch.rand(4, 28, 28)
    expected = torch.stack([model(shifted(x, dx, dy)) for dx, dy in DEFAULT_SHIFTS]).mean(0)
    torch.testing.assert_close(tta_outputs(model, x), expected)
    torch.testing.assert_close(tta_outputs(model, x, shifts=[(0, 0)]), model(x))
    torch.testing.assert_close(tta_outputs(model, x, preds=model(x)), expected)


def test_model_outputs_with_tta_averages_over_shifts():
    torch.manual_seed(0)
    model = Linear(10)
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    norm = {"scale": 1 / 255, "mean": 0.1, "std": 0.3}
    x = (images.float() / 255 - 0.1) / 0.3
    with torch.no_grad():
        torch.testing.assert_close(model_outputs(model, images, norm, tta=True), tta_outputs(model, x))
        assert not torch.allclose(model_outputs(model, images, norm), tta_outputs(model, x))


@pytest.mark.filterwarnings("ignore::digitlab.train.mentor.MentorWarning")  # valid = train on purpose
def test_tta_callback_changes_validation_predictions_only(digits_factory):
    images, labels = digits_factory(10, (3, 7), 0)
    x, y = torch.as_tensor(images).float() / 255, torch.as_tensor(labels == 3).long()

    class Keep(Callback):
        order = 5  # after TTACB (-2)

        def before_fit(self) -> None:
            self.valid_preds, self.train_shapes = [], []

        def after_predict(self) -> None:
            if self.learn.training:
                self.train_shapes.append(self.learn.preds.shape)
            else:
                self.valid_preds.append((self.learn.batch[0], self.learn.preds.detach()))

    torch.manual_seed(0)
    learn = Learner(
        DataLoaders.from_tensors(x, y, x, y, batch_size=10),
        Linear(2),
        cross_entropy,
        lr=0.1,
        metrics=[batch_accuracy],
        cbs=[TTACB(), Keep()],
    )
    learn.fit(1)
    model: nn.Module = learn.model
    for xb, preds in learn.keep.valid_preds:
        with torch.no_grad():
            torch.testing.assert_close(preds, tta_outputs(model, xb))
    assert learn.keep.train_shapes == [(10, 2)] * 2
