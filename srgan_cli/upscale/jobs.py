"""Which files a batch upscales and where each goes: input discovery, output naming, the `-o` rules, sharding.

Paths are compared resolved (relative or absolute, `x/../x`, symlinks), so a re-run spelt differently never takes
its own outputs for inputs.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from srgan_cli.errors import UsageError
from srgan_cli.upscale import formats, imaging
from srgan_cli.upscale.formats import WriteFormat

# suffixes that make `-o NAME` a file name: what srgan reads, and the other image formats a user may try
IMAGE_SUFFIXES = formats.READ_SUFFIXES | {
    ".jpe", ".jfif", ".jxl", ".avif", ".heic", ".heif", ".jp2", ".j2k", ".ico", ".tga", ".ppm", ".pgm", ".pbm",
    ".pnm", ".psd", ".exr", ".hdr", ".dng", ".cr2", ".nef", ".arw", ".raw", ".svg", ".pcx", ".dds", ".qoi"}


@dataclass(frozen=True)
class Job:
    """One file to upscale: where it comes from, where it goes, in which format."""

    source: Path
    target: Path
    fmt: WriteFormat


@dataclass
class Options:
    """How outputs are named and written.

    Attributes:
        out: output file (one input file) or folder; None: beside each input.
        suffix: added to the names of outputs in folders.
        fmt: a `--format` value (see `formats.WRITE_FORMATS`); None: the input's own format, else PNG.
        quality: JPEG/WebP quality.
        overwrite: replace existing outputs.
        skip_existing: skip inputs whose output exists.
        max_pixels: refuse larger images.
    """

    out: Path | None = None
    suffix: str = "_x4"
    fmt: str | None = None
    quality: int = 95
    overwrite: bool = False
    skip_existing: bool = False
    max_pixels: int | None = None


def scale_suffix(scale: float) -> str:
    """The default output suffix of a final scale: 4 -> '_x4', 2.5 -> '_x2.5'."""
    return f"_x{int(scale)}" if float(scale).is_integer() else f"_x{scale:g}"


def output_name(source: PurePath, suffix: str, fmt: str | None = None) -> tuple[str, WriteFormat]:
    """The output file name of `source` (`<stem><suffix><ext>`) and its format: `fmt`, else the input's own, else PNG.

    Args:
        source: the input's path (local or an object-store key).
        suffix: e.g. '_x4'.
        fmt: --format, or None.
    """
    target = formats.parse_format(fmt) if fmt else formats.native_format(source.suffix) or formats.FALLBACK_FORMAT
    ext = source.suffix if formats.native_format(source.suffix) == target else target.suffixes[0]
    return f"{source.stem}{suffix}{ext}", target


def _named(source: Path, folder: Path, options: Options) -> Job:
    name, fmt = output_name(source, options.suffix, options.fmt)
    return Job(source, folder / name, fmt)


def _output_is_a_file(out: Path | None) -> bool:
    """`-o` names a file: an image suffix (or an existing file), and not an existing folder."""
    if out is None or out.is_dir():
        return False
    return out.suffix.lower() in IMAGE_SUFFIXES or out.is_file()


def check_inputs(inputs: Sequence[str | Path], options: Options) -> None:
    """The inputs exist and `-o` suits them (before a model is loaded).

    A `-o` with an image suffix names a file: it needs exactly one input file and a suffix srgan writes. Anything
    else is a folder (realesrgan-ncnn-vulkan's rule: a name is never silently turned into a folder).

    Raises:
        UsageError: a missing input, a file name for several inputs or a folder, or a file format srgan cannot write.
    """
    _check_paths(inputs, options)
    if not any(Path(given).exists() for given in inputs):
        raise UsageError(f"{', '.join(map(str, inputs))}: no such file or folder")
    out = options.out
    if out is None or not _output_is_a_file(out):
        return
    if len(inputs) != 1 or not Path(inputs[0]).is_file():
        what = f"there are {len(inputs)} inputs" if len(inputs) != 1 else "the input is a folder"
        raise UsageError(f"-o {out}: names a file, but {what}: give a folder instead")
    _check_output_file(out, options.fmt)


def _check_paths(inputs: Sequence[str | Path], options: Options) -> None:
    """No '-' for a standard stream, and a --suffix that stays a part of a file name."""
    if any(str(given) == "-" for given in inputs) or str(options.out) == "-":
        raise UsageError("'-': srgan reads and writes files, not standard input or output: give a path")
    if not options.suffix or any(sep in options.suffix for sep in ("/", "\\", "\0")) or options.suffix in (".", ".."):
        raise UsageError(f"--suffix {options.suffix!r}: use a non-empty part of a file name, without '/' or '\\'")


def _check_output_file(out: Path, fmt: str | None) -> None:
    """`-o FILE` names an image srgan writes, in the format --format asks for (if it does)."""
    native = formats.native_format(out.suffix)
    if native is None and out.is_file() and not out.suffix:
        raise UsageError(f"-o {out}: an existing file: give a folder, or an image file name such as {out}.png")
    if native is None:
        suffixes = ", ".join(s for row in formats.WRITE_FORMATS for s in row.suffixes)
        raise UsageError(f"-o {out}: srgan cannot write '{out.suffix[1:].lower()}' images: use {suffixes}")
    if fmt and formats.parse_format(fmt) != native:
        raise UsageError(f"-o {out}: the name says {native.name} but --format says {fmt}: give one of them, or "
                         "make them agree")


def _file_job(source: Path, options: Options) -> Job:
    out = options.out
    if out is None:
        return _named(source, source.parent, options)
    native = formats.native_format(out.suffix)
    if _output_is_a_file(out) and native is not None:  # check_inputs refused the other file names
        return Job(source, out, formats.parse_format(options.fmt) if options.fmt else native)
    return _named(source, out, options)


def _earlier_outputs(images: Sequence[Path], suffix: str) -> set[Path]:
    """The images that an earlier run without -o made from an image beside them: `<stem>_x<scale>.<ext>` (a scale
    up to 16: any format, any default suffix, chains like `a_x4_x2.png`) or `<stem><suffix>.<ext>`, where an image
    `<stem>.*` is in the same folder. A photo whose name only looks like an output (no such image beside it) stays
    an input."""
    stems = {(path.parent, path.stem) for path in images}
    scale = r"_x(?:[1-9]|1[0-6])(?:\.\d+)?"  # the default suffixes of --outscale up to 16
    pattern = re.compile(rf"^(?P<stem>.+?)(?:{scale}|{re.escape(suffix)})$")
    earlier = set()
    for path in images:
        match = pattern.match(path.stem)
        if match and (path.parent, match["stem"]) in stems:
            earlier.add(path)
    return earlier


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _folder_jobs(given: Path, options: Options) -> tuple[list[Job], int]:
    """Jobs of the images under `given`, leaving out the output tree when it lies inside it."""
    images, others = imaging.scan_folder(given)
    earlier = _earlier_outputs(images, options.suffix) if options.out is None else set()  # beside their photos
    images = [path for path in images if path not in earlier]
    others += len(earlier)
    root = given.resolve()
    out_tree = options.out.resolve() if options.out else None
    if out_tree is not None and not (out_tree != root and _inside(out_tree, root)):
        out_tree = None  # the output tree is not a part of this folder: nothing to leave out
    jobs, left_out = [], 0
    for path in images:
        if out_tree is not None and _inside(path.resolve(), out_tree):
            left_out += 1
            continue
        rel = path.parent.relative_to(given)
        jobs.append(_named(path, (options.out / rel) if options.out else path.parent, options))
    return jobs, others + left_out


def collect_jobs(inputs: Sequence[str | Path], options: Options,
                 on_empty: Callable[[Path], object] | None = None) -> tuple[list[Job], int]:
    """Expand files and folders (recursively, case-insensitive extensions) into jobs; count skipped other files.

    Files under the output tree are never inputs, and neither is a file that another input would write (`a_x4.png`
    beside `a.png` from an earlier run): a re-run never upscales its own outputs, however the paths are spelt.

    Args:
        inputs: image files and folders.
        options: naming rules.
        on_empty: called with each input folder that holds no image.

    Returns:
        (the jobs, the number of files skipped in folders: non-images and earlier outputs).

    Raises:
        UsageError: an input does not exist, `-o` does not suit the inputs, or `options.fmt` is not a format srgan
            writes.
    """
    check_inputs(inputs, options)
    jobs, skipped = [], 0
    for given in (Path(given) for given in inputs if Path(given).exists()):
        if given.is_file():
            jobs.append(_file_job(given, options))
            continue
        found, others = _folder_jobs(given, options)
        if not found and on_empty is not None:
            on_empty(given)
        jobs += found
        skipped += others
    jobs = _once_each(jobs)
    written_by = {job.target.resolve(): job.source for job in jobs}
    fresh = [job for job in jobs if written_by.get(job.source.resolve(), job.source) == job.source]
    return fresh, skipped + len(jobs) - len(fresh)


def _once_each(jobs: Sequence[Job]) -> list[Job]:
    """The jobs with each input file once (given twice, or by a file and its folder: the first spelling wins)."""
    seen: set[Path] = set()
    unique = []
    for job in jobs:
        if job.source.resolve() not in seen:
            seen.add(job.source.resolve())
            unique.append(job)
    return unique


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N.

    Raises:
        UsageError: anything else.
    """
    parts = text.split("/")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise UsageError(f"--shard {text}: use K/N, e.g. 2/8")
    k, n = int(parts[0]), int(parts[1])
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_jobs(jobs: Sequence[Job], k: int, n: int) -> list[Job]:
    """The K-th of N disjoint parts, by a stable hash of each input path (same split on every machine)."""
    return [j for j in jobs if zlib.crc32(str(j.source).encode()) % n == k - 1]
