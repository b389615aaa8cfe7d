"""Output files: atomic writes that never replace a file that appeared meanwhile, stale temporary files of killed
runs cleaned up (only this tool's), and writability checked before any work.

A temporary file is `.<target name>.srgan-<host>-<pid>-<random>.part` in the target's folder: hidden, and naming the
machine (a CRC of its host name) and the process that writes it, so that a later run can tell a stale one (its
process is gone) from one another run is writing right now.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import socket
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from srgan_cli.errors import SrganError

PART_PATTERN = re.compile(r"^\..+\.srgan-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[A-Za-z0-9_]+\.part$")
STALE_AFTER_S = 60  # a write takes seconds: a temporary file of a dead process older than this is stale
OTHER_HOST_STALE_AFTER_S = 3600  # another machine's processes cannot be checked: only age tells
_NO_LINKS = {getattr(errno, name) for name in ("EPERM", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EMLINK", "EXDEV")
             if hasattr(errno, name)}  # a file system without hard links says one of these
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: outputs get the usual permissions, not mkstemp's 0600


@functools.lru_cache(maxsize=1)
def host_tag() -> str:
    """This machine in temporary file names: the CRC-32 of its host name, 8 hex digits."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable[..., int] | None:
    """glibc's renameat2, or None (not Linux, or a libc without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _rename_noreplace(source: Path, target: Path) -> bool:
    """renameat2(RENAME_NOREPLACE): True when renamed, False where unsupported.

    Raises:
        FileExistsError: `target` exists.
    """
    function = _renameat2()
    if function is None:
        return False
    at_cwd, noreplace = -100, 1
    if function(at_cwd, os.fsencode(source), at_cwd, os.fsencode(target), noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system or kernel lacks it
        return False
    raise OSError(code, os.strerror(code), str(target))


def install(source: Path, target: Path, overwrite: bool = False) -> None:
    """Move the finished file `source` to `target` in one step; without `overwrite` never replace an existing file.

    renameat2(RENAME_NOREPLACE) where the kernel and file system have it, else a hard link then unlink, else (file
    systems without hard links) a check then a rename.

    Raises:
        FileExistsError: `target` exists and `overwrite` is False (`source` is left in place).
    """
    if overwrite:
        os.replace(source, target)
        return
    if _rename_noreplace(source, target):
        return
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in _NO_LINKS:
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(source, target)
        return
    os.unlink(source)


def write_atomic(data: bytes, path: str | Path, overwrite: bool = True) -> None:
    """Write bytes to `path` through a temporary file in the same folder: never a partial file.

    Args:
        data: the file's contents.
        path: where it goes (missing folders are made).
        overwrite: replace an existing file; False: raise instead, even for a file that appeared while writing.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        OSError: the file cannot be written.
    """
    path = Path(path)
    make_folder(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.srgan-{host_tag()}-{os.getpid()}-", suffix=".part",
                                dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
        install(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_folder(folder: Path) -> None:
    """Make `folder` and its missing parents.

    Raises:
        NotADirectoryError: it, or a parent of it, is a file (mkdir may say FileExistsError, which must never read
            as "the output exists").
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = nearest_existing(folder)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(folder)) from None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill would end the process: there, only age tells
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _is_stale(name: str, age: float) -> bool:
    match = PART_PATTERN.match(name)
    if match is None:
        return False
    if match["host"] != host_tag():
        return age > OTHER_HOST_STALE_AFTER_S
    return age > STALE_AFTER_S and not _pid_alive(int(match["pid"]))


def remove_stale_parts(folder: str | Path) -> int:
    """Remove this tool's temporary files left in `folder` by killed runs (nothing else); how many went."""
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and _is_stale(entry.name, now - entry.stat().st_mtime):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | Path, folder: bool = False) -> None:
    """Check, before any work, that a file (or, with `folder`, files in a folder) can be written at `path`.

    Nothing is left behind: missing folders are not made; a probe file is made and removed in the nearest existing
    one.

    Args:
        path: the file (or folder) to be written.
        folder: `path` is a folder that will receive files.

    Raises:
        SrganError: `path` is a folder (a file, with `folder`), a parent of it is a file, or the folder refuses files.
    """
    path = Path(path)
    if not folder and path.is_dir():
        raise SrganError(f"cannot write {path}: it is a folder")
    if folder and path.exists() and not path.is_dir():
        raise SrganError(f"cannot write into {path}: it is a file, not a folder")
    existing = nearest_existing(path if folder else path.parent)
    if not existing.is_dir():
        raise SrganError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".srgan-write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise SrganError(f"cannot write {path}: {err.strerror or err}") from None
