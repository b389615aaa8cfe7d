"""Batch upscaling: skip/overwrite rules, overlapped read/infer/write, and a clean stop on Ctrl-C or SIGTERM.

Which files and where they go is `srgan_cli.upscale.jobs` (its names are re-exported here).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan_cli.errors import SrganError
from srgan_cli.upscale import files, formats, imaging
from srgan_cli.upscale.imaging import Photo
from srgan_cli.upscale.jobs import Job, Options, check_inputs, collect_jobs, parse_shard, scale_suffix, shard_jobs

__all__ = ["Job", "Options", "Outcome", "check_inputs", "clean_stale_parts", "collect_jobs", "missing_inputs",
           "parse_shard", "plan", "precheck", "run_batch", "scale_suffix", "shard_jobs"]

OnWindow = Callable[[int], object]
UpscaleStep = Callable[[Photo, "OnWindow | None"], Photo]  # e.g. Upscaler.upscale_photo
NO_OUTPUT = Path()  # the target of a job that never had one (a missing input)
EXISTS = "output exists"
EXISTS_FAILED = "output exists (use --overwrite or --skip-existing)"


@dataclass
class Outcome:
    """What happened to one job (one JSON line with --json).

    Attributes:
        lr_pixels: LR pixels the model ran for this job before it ended (progress accounting; not in the JSON).
    """

    job: Job
    status: str  # done, skipped or failed
    reason: str = ""
    size: tuple[int, ...] = ()
    input_size: tuple[int, ...] = ()
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    lr_pixels: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON line of `srgan upscale --json`."""
        output = "" if self.job.target == NO_OUTPUT else str(self.job.target)
        return {"input": str(self.job.source), "output": output, "status": self.status,
                "input_size": list(self.input_size),
                "size": list(self.size), "seconds": round(self.seconds, 3), "reason": self.reason,
                "notes": self.notes}


def _exists(job: Job, options: Options) -> Outcome:
    return Outcome(job, "skipped", EXISTS) if options.skip_existing else Outcome(job, "failed", EXISTS_FAILED)


def precheck(job: Job, options: Options, inputs: set[Path]) -> Outcome | None:
    """Outcome that ends the job before any work, or None to go ahead.

    Args:
        job: the job.
        options: the overwrite rules.
        inputs: the resolved paths of all inputs (never overwritten).
    """
    if job.target.resolve() in inputs:
        return Outcome(job, "failed", "output path is an input file: refusing to overwrite an input")
    blocker = files.nearest_existing(job.target.parent)
    if not blocker.is_dir():
        return Outcome(job, "failed", f"cannot write {job.target}: {blocker} is a file, not a folder")
    if job.target.exists() and not options.overwrite:
        return _exists(job, options)
    return None


def plan(jobs: Sequence[Job], options: Options) -> tuple[list[Job], list[Outcome]]:
    """(the jobs to run, the outcomes of those ended before any work: existing outputs, clashes, inputs as outputs)."""
    inputs = {j.source.resolve() for j in jobs}
    sources: dict[Path, list[Path]] = {}
    for job in jobs:
        sources.setdefault(job.target.resolve(), []).append(job.source)
    todo: list[Job] = []
    ended: list[Outcome] = []
    for job in jobs:
        others = [str(source) for source in sources[job.target.resolve()] if source != job.source]
        early = Outcome(job, "failed", f"{', '.join(others)} maps to the same output {job.target}: rename one, or "
                        "upscale them in separate runs") if others else precheck(job, options, inputs)
        if early:
            ended.append(early)
        else:
            todo.append(job)
    return todo, ended


def missing_inputs(inputs: Sequence[Path]) -> list[Outcome]:
    """A failed Outcome for each input that does not exist (the others go on; `check_inputs` refuses a run of
    nothing but missing ones)."""
    return [Outcome(Job(path, NO_OUTPUT, formats.FALLBACK_FORMAT), "failed", "no such file or folder")
            for path in map(Path, inputs) if not path.exists()]


def clean_stale_parts(jobs: Sequence[Job]) -> int:
    """Remove the temporary files killed runs left in the jobs' output folders; how many went."""
    return sum(files.remove_stale_parts(folder) for folder in {job.target.parent for job in jobs})


def _read(job: Job, options: Options) -> Photo | SrganError:
    try:
        return imaging.read_photo(job.source, options.max_pixels)
    except SrganError as err:
        return err


def _write(photo: Photo, input_size: tuple[int, ...], job: Job, options: Options, started: float) -> Outcome:
    try:
        data, notes = formats.encode_photo(photo, job.fmt, options.quality)
    except SrganError as err:
        return Outcome(job, "failed", str(err))
    except Exception as err:  # an encoder's own refusal (Pillow, pypng, tifffile)
        return Outcome(job, "failed", f"cannot encode it as {job.fmt.name}: {_first_line(err)}")
    try:
        files.write_atomic(data, job.target, overwrite=options.overwrite)
    except FileExistsError:  # it appeared while this one was being made: never replaced
        return _exists(job, options)
    except OSError as err:
        return Outcome(job, "failed", f"cannot write {job.target}: {err.strerror or err}")
    return Outcome(job, "done", size=photo.size, input_size=input_size, seconds=time.monotonic() - started,
                   notes=photo.notes + notes)


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
        return Outcome(job, "failed", "out of memory")
    except Exception as err:  # e.g. an ONNX Runtime failure on this one image
        return Outcome(job, "failed", _first_line(err))


class _Counter:
    """An on_window hook that also counts the LR pixels of the current job."""

    def __init__(self, forward: OnWindow | None) -> None:
        self.forward, self.total = forward, 0

    def __call__(self, pixels: int) -> None:
        self.total += pixels
        if self.forward:
            self.forward(pixels)


def _drain(writes: deque[tuple[Job, Future[Outcome]]], report: Callable[[Outcome], object], keep: int = 0) -> None:
    """Report the oldest writes until `keep` are left. A write leaves the queue only once it has finished, so an
    interrupt while waiting for it leaves it there for the final drain to report: a file written is a file counted."""
    while len(writes) > keep:
        job, future = writes[0]
        try:
            outcome = future.result()
        except Exception as err:
            outcome = Outcome(job, "failed", f"cannot write {job.target}: {_first_line(err)}")
        writes.popleft()
        report(outcome)


def run_batch(jobs: Sequence[Job], upscale: UpscaleStep, options: Options, report: Callable[[Outcome], object],
              on_window: OnWindow | None = None, on_plan: Callable[[list[Job]], object] | None = None) -> None:
    """Upscale every job, decoding the next files and encoding/writing the last while the current one runs.

    Outputs are installed without replacing files that appeared meanwhile (unless `options.overwrite`). On Ctrl-C
    or SIGTERM (a KeyboardInterrupt in this thread) the file being upscaled is dropped, the writes under way finish
    and are reported, and the interrupt goes on up.

    Args:
        jobs: from `collect_jobs`.
        upscale: (Photo, on_window) -> Photo, the model step (e.g. `Upscaler.upscale_photo`).
        options: writing rules.
        report: receives each Outcome as it completes, in input order.
        on_window: progress hook forwarded to the tiler (LR pixels done).
        on_plan: called with the jobs that will run, after those ended early are reported and before any work.
    """
    todo, ended = plan(jobs, options)
    for outcome in ended:
        report(outcome)
    if on_plan:
        on_plan(todo)
    with ThreadPoolExecutor(max_workers=3) as pool:
        reads = deque(pool.submit(_read, job, options) for job in todo[:2])
        writes: deque[tuple[Job, Future[Outcome]]] = deque()
        try:
            for index, job in enumerate(todo):
                photo = reads.popleft().result()
                if index + 2 < len(todo):
                    reads.append(pool.submit(_read, todo[index + 2], options))
                result = _step(job, photo, upscale, options, on_window)
                del photo
                if isinstance(result, Outcome):
                    _drain(writes, report)
                    report(result)
                else:
                    _drain(writes, report, keep=1)
                    photo, input_size, started = result
                    writes.append((job, pool.submit(_write, photo, input_size, job, options, started)))
            _drain(writes, report)
        except BaseException:
            for future in reads:
                future.cancel()
            _finish_writes(writes, report)
            raise


def _finish_writes(writes: deque[tuple[Job, Future[Outcome]]], report: Callable[[Outcome], object]) -> None:
    """After an interrupt, report every write under way. They finish anyway (the pool waits for them), so a second
    Ctrl-C (or a signal handled twice) while waiting must not leave a written file out of the report."""
    while writes:
        try:
            _drain(writes, report)
        except KeyboardInterrupt:
            continue


def _step(job: Job, photo: Photo | SrganError, upscale: UpscaleStep, options: Options,
          on_window: OnWindow | None) -> Outcome | tuple[Photo, tuple[int, ...], float]:
    """Upscale one job: a failed/skipped Outcome, or what `_write` needs (photo, input size, start time)."""
    if job.target.exists() and not options.overwrite:  # another run wrote it since the batch began
        return _exists(job, options)
    started = time.monotonic()
    counter = _Counter(on_window)
    result = _upscale(job, photo, upscale, counter)
    if isinstance(result, Outcome):
        result.lr_pixels = counter.total
        return result
    return result, (() if isinstance(photo, SrganError) else photo.size), started
