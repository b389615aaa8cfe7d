"""Output files (files.py): installs that never replace, on every file system; writability checked up front."""

import errno
import os

import pytest

from srgan_cli.errors import SrganError
from srgan_cli.upscale import files, imaging


def no_renameat2(monkeypatch):
    monkeypatch.setattr(files, "_rename_noreplace", lambda source, target: False)


def no_hard_links(monkeypatch):
    def refuse(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)


@pytest.mark.parametrize("file_system", ["renameat2", "hard links", "neither"])
def test_an_install_never_replaces_a_file_that_is_there(tmp_path, monkeypatch, file_system):
    if file_system != "renameat2":
        no_renameat2(monkeypatch)
    if file_system == "neither":
        no_hard_links(monkeypatch)
    target = tmp_path / "o.png"
    target.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        files.write_atomic(b"ours", target, overwrite=False)
    assert target.read_bytes() == b"theirs" and sorted(tmp_path.iterdir()) == [target]
    target.unlink()
    files.write_atomic(b"ours", target, overwrite=False)
    assert target.read_bytes() == b"ours" and sorted(tmp_path.iterdir()) == [target]
    files.write_atomic(b"again", target, overwrite=True)
    assert target.read_bytes() == b"again" and oct(target.stat().st_mode & 0o777) != "0o600"


def test_temporary_files_name_this_tool_the_machine_and_the_process(tmp_path, monkeypatch):
    seen = []

    def look(source, target, overwrite=False):
        seen.append(source.name)
        os.replace(source, target)

    monkeypatch.setattr(files, "install", look)
    files.write_atomic(b"x", tmp_path / "a_x4.png")
    assert files.PART_PATTERN.match(seen[0]) and f"-{os.getpid()}-" in seen[0]
    assert seen[0].startswith(".a_x4.png.srgan-" + files.host_tag())


def test_check_writable_refuses_what_cannot_be_written_and_leaves_nothing(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for path, folder in ((tmp_path / "folder", False), (tmp_path / "file", True), (tmp_path / "file" / "s.json", False),
                         (tmp_path / "file" / "deeper" / "s.json", False)):
        with pytest.raises(SrganError) as caught:
            imaging.check_writable(path, folder)
        assert "\n" not in str(caught.value) and str(tmp_path) in str(caught.value)
    imaging.check_writable(tmp_path / "new" / "deeper" / "s.json")
    imaging.check_writable(tmp_path / "crops", folder=True)
    imaging.check_writable(tmp_path / "file")  # an existing file is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
