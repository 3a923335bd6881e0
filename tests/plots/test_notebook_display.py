"""Figures in Jupyter: shown inline exactly once (even after `show_image(t);`), again only when changed,
never outside a kernel. First with a stand-in IPython, then in a real kernel through nbclient."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from digitlab.core.notebook import in_kernel
from digitlab.plots import plot_roller_coaster, show_image


@pytest.fixture
def digit() -> torch.Tensor:
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[4:24, 12:16] = 255
    return image


@pytest.fixture
def fake_ipython(monkeypatch):
    """A stand-in IPython: `kernel` says whether get_ipython() is a kernel's shell; `published` records each image.

    Its display() does what IPython's does for an object with `_ipython_display_`: calls it.
    """
    published: list[dict] = []
    state = types.SimpleNamespace(kernel=True, published=published)
    ipython = types.ModuleType("IPython")
    ipython.version_info = (9, 0, 0)  # matplotlib reads it when it makes a canvas
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object()) if state.kernel else types.SimpleNamespace()
    display = types.ModuleType("IPython.display")
    display.display = lambda obj: obj._ipython_display_()
    display.publish_display_data = lambda data, metadata=None: published.append(data)
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return state


def test_in_a_kernel_a_figure_shows_once_then_only_when_changed(fake_ipython, digit):
    fig = show_image(digit)  # the book's `show_image(t);`: shown now, though the cell's value is discarded
    assert len(fake_ipython.published) == 1
    assert fake_ipython.published[0]["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.shown and not fig.stale
    fig._ipython_display_()  # `fig` as a cell's last value: unchanged, not shown twice
    assert len(fake_ipython.published) == 1
    fig.axes[0].set_title("changed")
    assert fig.stale
    fig._ipython_display_()  # changed since: shown again
    assert len(fake_ipython.published) == 2 and not fig.stale
    plot_roller_coaster(steps=3)  # every plot function, not only show_image
    assert len(fake_ipython.published) == 3


def test_with_path_or_ax_nothing_is_shown_by_the_plot(fake_ipython, digit, tmp_path):
    show_image(digit, path=tmp_path / "d.png")
    host = show_image(digit)
    show_image(digit, ax=host.axes[0])  # drawing on a caller's axes: the caller decides when to show
    assert len(fake_ipython.published) == 1  # the host alone


def test_outside_a_kernel_nothing_is_shown(fake_ipython, digit, capsys):
    fake_ipython.kernel = False  # terminal IPython: a shell without a kernel
    assert not in_kernel()
    fig = show_image(digit)
    fig._ipython_display_()
    assert fake_ipython.published == [] and not fig.shown
    assert capsys.readouterr().out.startswith("<DigitlabFigure size 300x300")  # the text a value gets


def test_without_ipython_loaded_it_is_never_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_kernel() and "IPython" not in sys.modules


def test_a_real_kernel_shows_show_image_once(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        "import torch\nfrom digitlab.plots import show_image\n"
        "t = torch.zeros(28, 28, dtype=torch.uint8); t[4:24, 12:16] = 255",
        "fig = show_image(t);",  # the book's semicolon: one picture all the same
        "fig",  # unchanged: no second picture
        "fig.axes[0].set_title('changed')\nfig",  # changed: shown again
        f"show_image(t, path={str(tmp_path / 'saved.png')!r});",  # saved, not shown
        "import sys; print('matplotlib.pyplot' in sys.modules)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )  # the kernel runs in tmp_path
    client.execute()
    outputs = [cell.outputs for cell in notebook.cells]
    images = [sum("image/png" in out.get("data", {}) for out in cell) for cell in outputs]
    assert images == [0, 1, 0, 1, 0, 0]
    assert all(len(cell) == n for cell, n in zip(outputs[:5], images[:5]))  # no stray text outputs either
    assert (tmp_path / "saved.png").exists()
    assert outputs[5][0]["text"].strip() == "False"  # the kernel's pyplot stays untouched by digitlab
