"""Batch upscaling: input discovery, output naming, sharding, skip/overwrite rules, and overlapped read/infer/write."""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import formats, imaging
from srgan_cli.upscale.formats import WriteFormat
from srgan_cli.upscale.imaging import Photo

OnWindow = Callable[[int], object]
UpscaleStep = Callable[[Photo, "OnWindow | None"], Photo]  # e.g. Upscaler.upscale_photo


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


@dataclass
class Outcome:
    """What happened to one job (one JSON line with --json)."""

    job: Job
    status: str  # done, skipped or failed
    reason: str = ""
    size: tuple[int, ...] = ()
    input_size: tuple[int, ...] = ()
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON line of `srgan upscale --json`."""
        return {"input": str(self.job.source), "output": str(self.job.target), "status": self.status,
                "input_size": list(self.input_size),
                "size": list(self.size), "seconds": round(self.seconds, 3), "reason": self.reason,
                "notes": self.notes}


def _target_format(source: Path, options: Options) -> WriteFormat:
    if options.fmt:
        return formats.parse_format(options.fmt)
    return formats.native_format(source.suffix) or formats.FALLBACK_FORMAT


def _named(source: Path, folder: Path, options: Options) -> Job:
    fmt = _target_format(source, options)
    ext = source.suffix if formats.native_format(source.suffix) == fmt else fmt.suffixes[0]
    return Job(source, folder / f"{source.stem}{options.suffix}{ext}", fmt)


def _file_job(source: Path, options: Options, single: bool) -> Job:
    out = options.out
    if out is None:
        return _named(source, source.parent, options)
    native = formats.native_format(out.suffix)
    if single and not out.is_dir() and native is not None:
        return Job(source, out, formats.parse_format(options.fmt) if options.fmt else native)
    return _named(source, out, options)


def collect_jobs(inputs: Sequence[str | Path], options: Options) -> tuple[list[Job], int]:
    """Expand files and folders (recursively, case-insensitive extensions) into jobs; count skipped other files.

    A file that another input would write (`a_x4.png` beside `a.png` from an earlier run) is not an input: a re-run
    of the same folder never upscales its own outputs.

    Args:
        inputs: image files and folders.
        options: naming rules.

    Returns:
        (the jobs, the number of files skipped in folders: non-images and earlier outputs).

    Raises:
        UsageError: an input does not exist, or `options.fmt` is not a format `srgan` writes.
    """
    jobs, skipped = [], 0
    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    for given in map(Path, inputs):
        if given.is_file():
            jobs.append(_file_job(given, options, single))
        elif given.is_dir():
            images, others = imaging.scan_folder(given)
            skipped += others
            for path in images:
                rel = path.parent.relative_to(given)
                folder = (options.out / rel) if options.out else path.parent
                jobs.append(_named(path, folder, options))
        else:
            raise UsageError(f"{given}: no such file or folder")
    written_by = {job.target: job.source for job in jobs}
    fresh = [job for job in jobs if written_by.get(job.source, job.source) == job.source]  # not an earlier output
    return fresh, skipped + len(jobs) - len(fresh)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N.

    Raises:
        UsageError: anything else.
    """
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: use K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_jobs(jobs: Sequence[Job], k: int, n: int) -> list[Job]:
    """The K-th of N disjoint parts, by a stable hash of each input path (same split on every machine)."""
    return [j for j in jobs if zlib.crc32(str(j.source).encode()) % n == k - 1]


def precheck(job: Job, options: Options, inputs: set[Path]) -> Outcome | None:
    """Outcome that ends the job before any work, or None to go ahead.

    Args:
        job: the job.
        options: the overwrite rules.
        inputs: the resolved paths of all inputs (never overwritten).
    """
    if job.target.resolve() in inputs:
        return Outcome(job, "failed", "output path is an input file: refusing to overwrite an input")
    if job.target.exists():
        if options.skip_existing:
            return Outcome(job, "skipped", "output exists")
        if not options.overwrite:
            return Outcome(job, "failed", "output exists (use --overwrite or --skip-existing)")
    return None


def _read(job: Job, options: Options) -> Photo | SrganError:
    try:
        return imaging.read_photo(job.source, options.max_pixels)
    except SrganError as err:
        return err


def _write(photo: Photo, input_size: tuple[int, ...], job: Job, options: Options, started: float) -> Outcome:
    data, notes = formats.encode_photo(photo, job.fmt, options.quality)
    imaging.write_atomic(data, job.target)
    return Outcome(job, "done", size=photo.size, input_size=input_size, seconds=time.monotonic() - started,
                   notes=photo.notes + notes)


def _duplicate_targets(jobs: Sequence[Job]) -> set[Path]:
    seen: set[Path] = set()
    dupes: set[Path] = set()
    for job in jobs:
        (dupes if job.target in seen else seen).add(job.target)
    return dupes


def _upscale(job: Job, photo: Photo | SrganError, upscale: UpscaleStep,
             on_window: OnWindow | None) -> Photo | Outcome:
    """The upscaled Photo, or a failed Outcome: one bad file never stops the batch."""
    if isinstance(photo, SrganError):
        return Outcome(job, "failed", str(photo))
    try:
        return upscale(photo, on_window)
    except SrganError as err:
        return Outcome(job, "failed", str(err))
    except MemoryError:
        return Outcome(job, "failed", "out of memory: try a smaller --tile")
    except Exception as err:  # e.g. an ONNX Runtime failure on this one image
        return Outcome(job, "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")


def _finish_write(job: Job, future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except (OSError, SrganError) as err:
        return Outcome(job, "failed", f"cannot write {job.target}: {err}")


def run_batch(jobs: Sequence[Job], upscale: UpscaleStep, options: Options, report: Callable[[Outcome], object],
              on_window: OnWindow | None = None) -> None:
    """Upscale every job, decoding the next files and encoding/writing the last while the current one runs.

    Args:
        jobs: from `collect_jobs`.
        upscale: (Photo, on_window) -> Photo, the model step (e.g. `Upscaler.upscale_photo`).
        options: writing rules.
        report: receives each Outcome as it completes, in input order.
        on_window: progress hook forwarded to the tiler (LR pixels done).
    """
    inputs = {j.source.resolve() for j in jobs}
    dupes = _duplicate_targets(jobs)
    todo = []
    for job in jobs:
        early = Outcome(job, "failed", "another input maps to the same output") if job.target in dupes else None
        early = early or precheck(job, options, inputs)
        if early:
            report(early)
        else:
            todo.append(job)
    with ThreadPoolExecutor(max_workers=3) as pool:
        reads = deque(pool.submit(_read, job, options) for job in todo[:2])
        writes: deque[tuple[Job, Future[Outcome]]] = deque()
        for index, job in enumerate(todo):
            photo = reads.popleft().result()
            if index + 2 < len(todo):
                reads.append(pool.submit(_read, todo[index + 2], options))
            started = time.monotonic()
            input_size = () if isinstance(photo, SrganError) else photo.size
            result = _upscale(job, photo, upscale, on_window)
            del photo
            failed = isinstance(result, Outcome)
            while writes and (failed or len(writes) >= 2):
                report(_finish_write(*writes.popleft()))
            if isinstance(result, Outcome):
                report(result)
            else:
                writes.append((job, pool.submit(_write, result, input_size, job, options, started)))
        while writes:
            report(_finish_write(*writes.popleft()))
