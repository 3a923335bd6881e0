"""safe_extract: good archives unpack whole; hostile or broken ones write nothing anywhere."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.data.formats import archive as archive_mod
from digitlab.data.formats.archive import safe_extract
from digitlab.data.formats.folders import load_image_folder
from digitlab.errors import DataError


def _tree(root: Path) -> set[str]:
    """Every path under root (files, folders, links), to prove nothing was written."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _make_digits(root: Path) -> None:
    """mnist_sample-like tree: mnist_sample/{train,valid}/{3,7}/*.png + labels.csv."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 2)):
        for label in ("3", "7"):
            folder = root / "mnist_sample" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "mnist_sample" / "labels.csv").write_text("name,label\n")


def _tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))  # a harmless member first: checks must not write it
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(folder holding archives, target deep inside a separate folder)."""
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "work" / "deep").mkdir(parents=True)
    return src, tmp_path / "work" / "deep" / "target"


def _assert_refused(archive: Path, target: Path, member: str, root: Path) -> None:
    before = _tree(root)
    with pytest.raises(DataError) as err:
        safe_extract(archive, target)
    message = str(err.value)
    assert str(archive) in message and member in message and "\n" not in message
    assert not target.exists()
    assert _tree(root) == before  # nothing written next to, above or inside target


def test_tgz_extracts_and_loads(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    _make_digits(src / "tree")
    archive = src / "mnist_sample.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "tree" / "mnist_sample", arcname="mnist_sample")
    assert safe_extract(archive, target) == target
    assert (target / "mnist_sample" / "train" / "3" / "0.png").is_file()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # temp folder gone
    ds = load_image_folder(target)
    assert ds.classes == ("3", "7") and len(ds.train) == 6 and len(ds.valid) == 4
    assert ds.provenance["layout"] == "train/valid"


def test_zip_extracts_and_loads_even_when_misnamed(dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    _make_digits(src / "tree")
    archive = src / "mnist_sample.tgz"  # really a zip: detection is by content
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((src / "tree").rglob("*")):
            zf.write(p, p.relative_to(src / "tree").as_posix())
    safe_extract(archive, target)
    original = (src / "tree" / "mnist_sample" / "valid" / "7" / "1.png").read_bytes()
    assert (target / "mnist_sample" / "valid" / "7" / "1.png").read_bytes() == original
    assert len(load_image_folder(target).train) == 6


def test_existing_target_is_returned_untouched(dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    target.mkdir()
    (target / "keep").write_text("x")
    assert safe_extract(src / "does-not-matter.tgz", target) == target
    assert _tree(target) == {"keep"}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "drive", "symlink", "hardlink", "fifo", "chardev"])
def test_unsafe_tar_members_are_refused(tmp_path: Path, dirs: tuple[Path, Path], kind: str) -> None:
    src, target = dirs
    data: bytes | None = b"evil"
    if kind == "dotdot":
        info = tarfile.TarInfo("sub/../../evil")
    elif kind == "absolute":
        info = tarfile.TarInfo(str(tmp_path / "abs_evil"))
    elif kind == "drive":
        info = tarfile.TarInfo("C:/evil")
    elif kind == "symlink":
        info, data = tarfile.TarInfo("link"), None
        info.type, info.linkname = tarfile.SYMTYPE, str(tmp_path)
    elif kind == "hardlink":
        info, data = tarfile.TarInfo("hard"), None
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "fifo":
        info, data = tarfile.TarInfo("pipe"), None
        info.type = tarfile.FIFOTYPE
    else:
        info, data = tarfile.TarInfo("tty"), None
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 5, 0
    archive = _tar_with(src / f"{kind}.tgz", (info, data))
    _assert_refused(archive, target, info.name, tmp_path)


def test_tar_path_through_parent_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    info = tarfile.TarInfo("../evil")
    archive = _tar_with(src / "evil.tar.gz", (info, b"evil"))
    _assert_refused(archive, target, "../evil", tmp_path)
    assert not (target.parent / "evil").exists()


def test_zip_dotdot_member_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    archive = src / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr("../evil", b"evil")
    _assert_refused(archive, target, "../evil", tmp_path)


def test_zip_symlink_entry_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    archive = src / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        info = zipfile.ZipInfo("link")
        info.create_system = 3  # Unix, so external_attr carries st_mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, str(tmp_path))
    _assert_refused(archive, target, "link", tmp_path)


def test_corrupt_tgz_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    garbage = src / "garbage.tgz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)  # gzip magic, then junk
    _assert_refused(garbage, target, "garbage.tgz", tmp_path)


def test_truncated_tgz_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    big = src / "big.tgz"
    with tarfile.open(big, "w:gz") as tar:
        for i in range(3):
            payload = np.random.default_rng(i).bytes(200_000)  # incompressible, so the cut lands in data
            info = tarfile.TarInfo(f"f{i}.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    cut = src / "cut.tgz"
    cut.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    _assert_refused(cut, target, "cut.tgz", tmp_path)


def test_not_an_archive_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, target = dirs
    text = src / "notes.zip"
    text.write_text("just text\n" * 100)
    _assert_refused(text, target, "not a tar or zip", tmp_path)


def test_bombs_are_refused(tmp_path: Path, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    src, target = dirs
    archive = src / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(5):
            zf.writestr(f"f{i}", bytes(1000))
    monkeypatch.setattr(archive_mod, "MAX_MEMBERS", 4)
    _assert_refused(archive, target, "more than 4 members", tmp_path)
    monkeypatch.setattr(archive_mod, "MAX_MEMBERS", 100)
    monkeypatch.setattr(archive_mod, "MAX_TOTAL_BYTES", 4000)
    _assert_refused(archive, target, "uncompressed", tmp_path)
