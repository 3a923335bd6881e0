"""The line reader's network, its loss and its greedy decoding, against torch's CTC and by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from digitlab.errors import DigitlabError
from digitlab.line_reader import BLANK, LineReader, LineReading, ctc_loss, decode, line_accuracy


def _logp(symbols: list[int], sure: float = 0.9) -> torch.Tensor:
    """(1, T, 11) log-probabilities whose likeliest symbol in column t is symbols[t]."""
    p = torch.full((len(symbols), 11), (1 - sure) / 10)
    p[torch.arange(len(symbols)), torch.tensor(symbols)] = sure
    return p.log()[None]


def test_columns_are_a_quarter_of_the_width():
    model = LineReader(width=4, hidden=8)
    out = model(torch.rand(2, 1, 32, 64))
    assert out.shape == (2, 16, 11)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 16), atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 32, 64), (2, 1, 28, 64), (2, 1, 32, 66)])
def test_a_wrong_shape_is_one_clear_error(shape):
    with pytest.raises(DigitlabError, match="lines shaped"):
        LineReader(width=4, hidden=8)(torch.rand(*shape))


def test_decode_merges_repeats_and_drops_blanks():
    # blank, 1, 1, blank, 1, 8, blank -> "18" needs the blank between the ones: "1", "1" -> "11"
    reading = decode(_logp([BLANK, 2, 2, BLANK, 2, 9, BLANK]))[0]
    assert reading.digits == "118"
    assert reading.columns == ((1, 2), (4, 4), (5, 5))
    assert reading.probabilities == pytest.approx((0.9, 0.9, 0.9))
    assert reading.probability == pytest.approx(0.9**3)
    assert decode(_logp([BLANK] * 5))[0].digits == ""


def test_each_digit_has_its_probabilities_of_the_ten_digits_where_it_is_likeliest():
    # a 3 over two columns, surest in the second, where 8 is its runner-up; the blank does not count
    p = torch.full((3, 11), 0.01)
    p[0, 4], p[0, 9] = 0.6, 0.2  # column 0: 3 at 0.6
    p[1, 4], p[1, 9], p[1, BLANK] = 0.7, 0.2, 0.02  # column 1: 3 at 0.7, 8 at 0.2
    p[2, BLANK] = 0.9
    reading = decode((p / p.sum(1, keepdim=True)).log()[None])[0]
    assert reading.digits == "3"
    ten = reading.distributions[0]
    assert len(ten) == 10 and sum(ten) == pytest.approx(1.0)
    expected = p[1, 1:] / p[1, 1:].sum()  # the second column's, the blank left out
    assert ten == pytest.approx(expected.tolist())
    assert max(range(10), key=lambda d: ten[d]) == 3 and sorted(ten)[-2] == pytest.approx(ten[8])


def test_a_reading_without_distributions_shares_what_it_does_not_give_its_digit():
    reading = LineReading("70", (0.82, 0.5), ((0, 0), (2, 2)))
    seven = reading.distribution(0)
    assert seven[7] == pytest.approx(0.82) and sum(seven) == pytest.approx(1.0)
    assert all(q == pytest.approx(0.02) for d, q in enumerate(seven) if d != 7)


def test_ctc_loss_is_torchs_on_padded_targets():
    torch.manual_seed(0)
    preds = torch.randn(3, 12, 11).log_softmax(-1)
    targets = torch.tensor([[1, 8, -1], [7, 7, 0], [4, -1, -1]])
    mine = ctc_loss(preds, targets)
    theirs = F.ctc_loss(
        preds.transpose(0, 1),
        torch.tensor([2, 9, 8, 8, 1, 5]),
        torch.full((3,), 12),
        torch.tensor([2, 3, 1]),
        blank=0,
    )
    assert mine.item() == pytest.approx(theirs.item())


def test_line_accuracy_counts_lines_read_exactly():
    preds = torch.cat([_logp([BLANK, 2, BLANK, 9]), _logp([BLANK, 2, BLANK, 5])])
    assert line_accuracy(preds, torch.tensor([[1, 8], [1, 8]])).item() == pytest.approx(0.5)


def test_a_reader_learns_to_read_a_few_lines():
    """A tiny reader fits 8 fixed lines of two digits made of bars: the loss falls and it reads them (~8 s)."""
    import numpy as np

    from digitlab.data.lines import make_lines

    torch.manual_seed(0)
    images = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        images[d, 4:24, 2 + 2 * d : 6 + 2 * d] = 255  # digit d: a bar at its own place
        images[d, 4 + 2 * d : 8 + 2 * d, 4:24] = 255  # and a crossbar at its own height
    x, y = make_lines(images, np.arange(10), np.random.default_rng(0), 8, gaps=(0.3, 0.5), lengths=(2, 3))
    model = LineReader(width=8, hidden=32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = ctc_loss(model(x), y).item()
    for _ in range(300):
        loss = ctc_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < first / 20 and math.isfinite(loss.item())
    assert line_accuracy(model(x), y).item() >= 0.75
