""" "Going Deeper" and chapter 2's DataBlock as the book writes them: ImageDataLoaders.from_folder,
cnn_learner/vision_learner with resnet18, fit_one_cycle, fine_tune, lr_find; on small PNG trees."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from digitlab.errors import DataError, DigitlabError
from digitlab.resnet import resnet18, resnet34
from digitlab.train.losses import accuracy
from digitlab.vision import (
    CategoryBlock,
    DataBlock,
    GrandparentSplitter,
    ImageBlock,
    ImageDataLoaders,
    PILImageBW,
    RandomSplitter,
    Resize,
    get_image_files,
    parent_label,
    vision_learner,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_resnets_are_the_standard_ones():
    # torchvision's counts for 3 input channels and 1000 classes: the same layers, layer for layer
    assert n_params(resnet18()) == 11_689_512 and n_params(resnet34()) == 21_797_672
    out = resnet18(n_in=1, n_out=10)(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10)
    assert resnet18(n_in=1).body(torch.rand(2, 1, 28, 28)).shape == (2, 512, 1, 1)  # 28 -> 7 -> 4 -> 2 -> 1


def test_pretrained_weights_are_one_clear_line():
    with pytest.raises(DigitlabError, match="pass pretrained=False"):
        resnet18(pretrained=True)


def test_from_folder_reads_the_sample_layout(tmp_path, png_tree):
    png_tree(tmp_path, {"train": 12, "valid": 4})
    (tmp_path / "labels.csv").write_text("name,label\n")  # not an image: left alone
    dls = ImageDataLoaders.from_folder(tmp_path, bs=8, device="cpu")
    assert list(dls.vocab) == ["3", "7"] and dls.c == 2 and dls.n_in == 1
    assert dls.train.n == 24 and dls.valid.n == 8
    x, y = dls.one_batch()
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert set(y.tolist()) <= {0, 1} and "24 training and 8 validation" in repr(dls)


def test_from_folder_finds_fastais_mnist_layout_and_splits_at_random(tmp_path, png_tree):
    png_tree(tmp_path / "mnist", {"training": 6, "testing": 2}, classes=(0, 1, 2))
    dls = ImageDataLoaders.from_folder(tmp_path / "mnist", bs=4, device="cpu")
    assert (dls.train.n, dls.valid.n, list(dls.vocab)) == (18, 6, ["0", "1", "2"])
    png_tree(tmp_path / "flat", {"all": 10})
    one = ImageDataLoaders.from_folder(tmp_path / "flat", valid_pct=0.2, seed=1, bs=4, device="cpu")
    two = ImageDataLoaders.from_folder(tmp_path / "flat", valid_pct=0.2, seed=1, bs=4, device="cpu")
    assert (one.train.n, one.valid.n) == (16, 4)
    assert torch.equal(one.valid.dataset[0], two.valid.dataset[0])  # the same seed, the same split


def test_a_datablock_as_chapter_2_writes_it(tmp_path, png_tree):
    png_tree(tmp_path, {"train": 5, "valid": 5})
    block = DataBlock(
        blocks=(ImageBlock(cls=PILImageBW), CategoryBlock),
        get_items=get_image_files,
        splitter=GrandparentSplitter(),
        get_y=parent_label,
        item_tfms=Resize(32),
    )
    dls = block.dataloaders(tmp_path, bs=4, device="cpu")
    assert dls.one_batch()[0].shape == (4, 1, 32, 32)
    figure = dls.show_batch(max_n=4)
    assert figure is not None
    assert RandomSplitter(0.25, seed=0)(list(range(8)))[1] == RandomSplitter(0.25, seed=0)(list(range(8)))[1]


def test_images_that_do_not_fit_are_named(tmp_path, png_tree):
    png_tree(tmp_path, {"train": 3, "valid": 3})
    Image.new("L", (40, 40)).save(tmp_path / "train" / "3" / "big.png")
    with pytest.raises(DataError, match=r"big\.png: \(40, 40\) pixels .*Resize\(28\)"):
        ImageDataLoaders.from_folder(tmp_path, device="cpu")
    (tmp_path / "train" / "3" / "big.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"big\.png: not an image"):
        ImageDataLoaders.from_folder(tmp_path, device="cpu")
    with pytest.raises(DigitlabError, match="batch_tfms"):
        ImageDataLoaders.from_folder(tmp_path, batch_tfms=[object()])


@pytest.fixture
def learn(tmp_path, png_tree):
    png_tree(tmp_path, {"train": 48, "valid": 16})
    dls = ImageDataLoaders.from_folder(tmp_path, bs=16, device="cpu", seed=0)
    torch.manual_seed(0)
    return vision_learner(dls, resnet18, pretrained=False, metrics=accuracy, cbs=[])


def test_cnn_learner_trains_with_one_cycle(learn):
    learn.fit_one_cycle(2, 1e-2)
    _loss, _valid_loss, acc = learn.recorder.values[-1]
    assert acc > 0.9  # two bars, one per class: easy for any working network


def test_fine_tune_freezes_the_body_first(learn):
    body_conv = learn.model[0][0].weight.detach().clone()
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    assert torch.equal(body_conv, learn.model[0][0].weight)  # frozen: the body's convolutions did not move
    learn.fine_tune(1, base_lr=1e-2)
    assert not torch.equal(body_conv, learn.model[0][0].weight) and all(
        p.requires_grad for p in learn.model.parameters()
    )


def test_lr_find_suggests_and_puts_everything_back(learn):
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    found = learn.lr_find(num_it=12, show_plot=False)
    assert 1e-7 <= found.valley <= 10 and len(found.lrs) == len(found.losses) > 2
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())


def test_one_cycle_moves_adams_first_beta(learn):
    seen = []

    class Watch:
        order, in_search = 10, True

        def after_batch(self):
            seen.append(learn.opt.param_groups[0]["betas"][0])

    learn.fit_one_cycle(1, 1e-2, cbs=[Watch()])
    assert min(seen) < 0.9 < max(seen)  # 0.95 -> 0.85 -> 0.95, as fastai's moms
