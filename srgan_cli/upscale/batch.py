"""Batch upscaling: input discovery, output naming, sharding, skip/overwrite rules, and overlapped read/infer/write."""

import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import imaging

NATIVE_OUTPUT = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}
EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}


@dataclass(frozen=True)
class Job:
    """One file to upscale: where it comes from, where it goes, in which format."""

    source: Path
    target: Path
    fmt: str


@dataclass
class Options:
    """How outputs are named and written."""

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
    status: str
    reason: str = ""
    size: tuple = ()
    input_size: tuple = ()
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def as_dict(self):
        return {"input": str(self.job.source), "output": str(self.job.target), "status": self.status,
                "input_size": list(self.input_size),
                "size": list(self.size), "seconds": round(self.seconds, 3), "reason": self.reason,
                "notes": self.notes}


def _target_format(source, options):
    return options.fmt or NATIVE_OUTPUT.get(source.suffix.lower(), "png")


def _named(source, folder, options):
    fmt = _target_format(source, options)
    ext = source.suffix if NATIVE_OUTPUT.get(source.suffix.lower()) == fmt else EXTENSIONS[fmt]
    return Job(source, folder / f"{source.stem}{options.suffix}{ext}", fmt)


def _file_job(source, options, single):
    out = options.out
    if out is None:
        return _named(source, source.parent, options)
    if single and not out.is_dir() and out.suffix.lower() in NATIVE_OUTPUT:
        return Job(source, out, options.fmt or NATIVE_OUTPUT[out.suffix.lower()])
    return _named(source, out, options)


def collect_jobs(inputs, options):
    """Expand files and folders (recursively, case-insensitive extensions) into jobs; count skipped other files.

    A file that another input would write (`a_x4.png` beside `a.png` from an earlier run) is not an input: a re-run
    of the same folder never upscales its own outputs.

    Returns:
        tuple: (list of Job, number of files skipped in folders: non-images and earlier outputs).
    """
    jobs, skipped = [], 0
    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    for given in map(Path, inputs):
        if given.is_file():
            jobs.append(_file_job(given, options, single))
        elif given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.is_file() and not p.name.startswith("."))
            for path in files:
                if path.suffix.lower() not in imaging.READ_SUFFIXES:
                    skipped += 1
                    continue
                rel = path.parent.relative_to(given)
                folder = (options.out / rel) if options.out else path.parent
                jobs.append(_named(path, folder, options))
        else:
            raise UsageError(f"{given}: no such file or folder")
    written_by = {job.target: job.source for job in jobs}
    fresh = [job for job in jobs if written_by.get(job.source, job.source) == job.source]  # not an earlier output
    return fresh, skipped + len(jobs) - len(fresh)


def parse_shard(text):
    """'K/N' -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: use K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_jobs(jobs, k, n):
    """The K-th of N disjoint parts, by a stable hash of each input path (same split on every machine)."""
    return [j for j in jobs if zlib.crc32(str(j.source).encode()) % n == k - 1]


def precheck(job, options, inputs):
    """Outcome that ends the job before any work, or None to go ahead."""
    if job.target.resolve() in inputs:
        return Outcome(job, "failed", "output path is an input file: refusing to overwrite an input")
    if job.target.exists():
        if options.skip_existing:
            return Outcome(job, "skipped", "output exists")
        if not options.overwrite:
            return Outcome(job, "failed", "output exists (use --overwrite or --skip-existing)")
    return None


def _read(job, options):
    try:
        return imaging.read_photo(job.source, options.max_pixels)
    except SrganError as err:
        return err


def _write(photo, input_size, job, options, started):
    data, notes = imaging.encode_photo(photo, imaging.output_format(job.target, job.fmt), options.quality)
    imaging.write_atomic(data, job.target)
    return Outcome(job, "done", size=photo.size, input_size=input_size, seconds=time.monotonic() - started,
                   notes=photo.notes + notes)


def _duplicate_targets(jobs):
    seen, dupes = set(), set()
    for job in jobs:
        (dupes if job.target in seen else seen).add(job.target)
    return dupes


def _upscale(job, photo, upscale, on_window):
    """(result Photo, None) or (None, failed Outcome): one bad file never stops the batch."""
    if isinstance(photo, SrganError):
        return None, Outcome(job, "failed", str(photo))
    try:
        return upscale(photo, on_window), None
    except SrganError as err:
        return None, Outcome(job, "failed", str(err))
    except MemoryError:
        return None, Outcome(job, "failed", "out of memory: try a smaller --tile")
    except Exception as err:  # e.g. an ONNX Runtime failure on this one image
        return None, Outcome(job, "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")


def _finish_write(job, future):
    try:
        return future.result()
    except (OSError, SrganError) as err:
        return Outcome(job, "failed", f"cannot write {job.target}: {err}")


def run_batch(jobs, upscale, options, report, on_window=None):
    """Upscale every job, decoding the next files and encoding/writing the last while the current one runs.

    Args:
        jobs (list): Job list.
        upscale (callable): (Photo, on_window) -> Photo, the model step.
        options (Options): writing rules.
        report (callable): receives each Outcome as it completes, in input order.
        on_window (callable | None): progress hook forwarded to the tiler (LR pixels done).
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
        writes = deque()
        for index, job in enumerate(todo):
            photo = reads.popleft().result()
            if index + 2 < len(todo):
                reads.append(pool.submit(_read, todo[index + 2], options))
            started = time.monotonic()
            result, failed = _upscale(job, photo, upscale, on_window)
            input_size = photo.size if result else ()
            del photo
            while writes and (failed or len(writes) >= 2):
                report(_finish_write(*writes.popleft()))
            if failed:
                report(failed)
            else:
                writes.append((job, pool.submit(_write, result, input_size, job, options, started)))
        while writes:
            report(_finish_write(*writes.popleft()))
