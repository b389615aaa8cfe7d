"""Upscale a data lake of photos on a Dask cluster: one Upscaler per worker, fsspec I/O, no-replace writes.

    pip install '.[dask]' s3fs        # in the repository; and the fsspec driver of your store: s3fs, gcsfs, adlfs...
    python examples/dask_upscale.py s3://lake/photos s3://lake/photos_x4 --scheduler tcp://10.0.0.5:8786 \\
        --skip-existing --json results.jsonl
    python examples/dask_upscale.py photos/ out/ --local 4 --threads 2     # 4 worker processes on this machine

Outputs mirror the input tree, named as `srgan upscale` names them (photo.jpg -> photo_x4.jpg). Every file gets one
result record (one JSON line, the fields of `srgan upscale --json` plus the worker); a file that cannot be read,
upscaled or written fails in one line and the job goes on. Re-running with --skip-existing resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from srgan_cli.errors import SrganError
from srgan_cli.upscale import files, formats, imaging
from srgan_cli.upscale.batch import EXISTS, EXISTS_FAILED
from srgan_cli.upscale.inference import Upscaler, UpscaleSettings
from srgan_cli.upscale.jobs import output_name

PLUGIN = "srgan-upscaler"
Job = tuple[str, str, str]  # (input URL, output URL, output format)
Record = dict[str, Any]


@dataclass
class Output:
    """How outputs are named and written: `srgan upscale`'s options of the same names.

    Attributes:
        fmt: output format ('png', 'jpg', 'webp', 'tiff'); None: the input's own, else PNG.
        storage_options: fsspec options of the input and output stores (credentials, endpoint...).
    """

    fmt: str | None = None
    suffix: str = "_x4"
    quality: int = 95
    overwrite: bool = False
    skip_existing: bool = False
    max_pixels: int = 200_000_000
    storage_options: dict[str, Any] = field(default_factory=dict)


class UpscalerPlugin(WorkerPlugin):
    """One thread-safe Upscaler per worker process, shared by its threads; opened when the worker starts. A model
    that cannot be opened there becomes every record's one-line reason, never a crashed worker.

    Args:
        settings: what `srgan upscale` would be given (model, device, tile, threads...).
    """

    def __init__(self, settings: UpscaleSettings):
        self.settings = settings
        self.upscaler: Upscaler | None = None
        self.error = ""

    def setup(self, worker: Any) -> None:
        try:
            self.upscaler = Upscaler.from_settings(self.settings)
        except Exception as err:
            self.error = f"cannot open the model on {worker.address}: {one_line(err)}"


def one_line(err: BaseException) -> str:
    """An error as one line: srgan's own as written, anything else with its type."""
    text = str(err).splitlines()[0][:300] if str(err) else ""
    return text if isinstance(err, SrganError) else f"{type(err).__name__}: {text}".rstrip(": ")


def list_jobs(source: str, target: str, output: Output) -> list[Job]:
    """Every photo under `source` (sorted, hidden files and `target`'s tree left out) and where it goes.

    Args:
        source: folder or prefix URL of the inputs (s3://lake/photos, gs://..., /local/path).
        target: folder or prefix URL the outputs mirror the input tree under.
        output: naming and storage options.

    Raises:
        SrganError: nothing at `source`.
    """
    in_fs, in_root = fsspec.core.url_to_fs(source, **output.storage_options)
    out_fs, out_root = fsspec.core.url_to_fs(target, **output.storage_options)
    in_root, out_root = in_root.rstrip("/"), out_root.rstrip("/")
    if not in_fs.exists(in_root):
        raise SrganError("no such folder or prefix")
    jobs = []
    for path in sorted(in_fs.find(in_root)):
        relative = PurePosixPath(path).relative_to(in_root)
        inside_target = in_fs.unstrip_protocol(path).startswith(out_fs.unstrip_protocol(out_root) + "/")
        if relative.suffix.lower() not in formats.READ_SUFFIXES or relative.name.startswith(".") or inside_target:
            continue
        filename, fmt = output_name(relative, output.suffix, output.fmt)
        name = PurePosixPath(out_root, relative.parent, filename)
        jobs.append((in_fs.unstrip_protocol(path), out_fs.unstrip_protocol(str(name)), fmt.name))
    return jobs


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def read_photo(fs: Any, path: str, max_pixels: int) -> imaging.Photo:
    """Decode a photo as `srgan upscale` does; a remote one through a local temporary copy."""
    if _is_local(fs):
        return imaging.read_photo(path, max_pixels)
    with tempfile.NamedTemporaryFile(suffix=PurePosixPath(path).suffix) as copy:
        with fs.open(path, "rb") as remote:
            shutil.copyfileobj(remote, copy)
        copy.flush()
        return imaging.read_photo(copy.name, max_pixels)


def write_output(fs: Any, path: str, data: bytes, overwrite: bool) -> None:
    """Write a whole file that never replaces one that exists, unless `overwrite`.

    Local and network file systems: a temporary file renamed into place without replacing (srgan's own
    `write_atomic`). Object stores: one PUT (readers never see part of an object) through fsspec's exclusive
    write, `pipe_file(mode="create")`, which stores that do conditional writes make atomic.

    Raises:
        FileExistsError: the output exists and `overwrite` is False.
    """
    if _is_local(fs):
        files.write_atomic(data, path, overwrite=overwrite)
    else:
        fs.pipe_file(path, data, mode="overwrite" if overwrite else "create")


def failed(job: Job, reason: str = "") -> Record:
    """A failed file's record, with the fields of `srgan upscale --json`."""
    return {"input": job[0], "output": job[1], "status": "failed", "input_size": [], "size": [], "seconds": 0.0,
            "reason": reason, "notes": []}


def upscale_one(job: Job, output: Output, upscaler: Upscaler) -> Record:
    """Upscale one file; whatever happens, one record (status done, skipped or failed, with a one-line reason)."""
    source, target, fmt = job
    record = failed(job)
    started = time.monotonic()
    try:
        out_fs, out_path = fsspec.core.url_to_fs(target, **output.storage_options)
        if not output.overwrite and out_fs.exists(out_path):
            raise FileExistsError(out_path)
        in_fs, in_path = fsspec.core.url_to_fs(source, **output.storage_options)
        photo = read_photo(in_fs, in_path, output.max_pixels)
        result = upscaler.upscale_photo(photo)
        data, notes = formats.encode_photo(result, fmt, output.quality)
        write_output(out_fs, out_path, data, output.overwrite)
        record.update(status="done", input_size=list(photo.size), size=list(result.size), notes=result.notes + notes)
    except FileExistsError:
        record.update(status="skipped" if output.skip_existing else "failed",
                      reason=EXISTS if output.skip_existing else EXISTS_FAILED)
    except Exception as err:  # one file's failure is its record's reason, never the job's end
        record["reason"] = one_line(err)
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def upscale_chunk(jobs: Sequence[Job], output: Output) -> list[Record]:
    """One Dask task: a few files through this worker's Upscaler, a record each."""
    worker = get_worker()
    plugin = worker.plugins[PLUGIN]
    records = [upscale_one(job, output, plugin.upscaler) if plugin.upscaler is not None else
               failed(job, plugin.error) for job in jobs]
    return [{**record, "worker": worker.address} for record in records]


def _lost(jobs: Sequence[Job], err: BaseException) -> list[Record]:
    """The records of a task that never came back (its worker died too often, or the cluster went away)."""
    return [failed(job, f"task lost: {one_line(err)}") for job in jobs]


def run(client: Client, jobs: Sequence[Job], output: Output, settings: UpscaleSettings, chunk: int = 16,
        report: Callable[[Record], object] = print) -> Counter[str]:
    """Upscale `jobs` on the cluster behind `client`, a few tasks per worker thread in flight at a time.

    Args:
        client: a connected Dask client.
        jobs: from `list_jobs`.
        output: naming and storage options.
        settings: the Upscaler's settings (each worker opens the model once).
        chunk: files per task (fewer tasks for the scheduler; more files redone if a worker dies).
        report: called with each file's record as it arrives.

    Returns:
        How many files were done, skipped and failed.
    """
    if __name__ not in ("__main__", "dask_upscale"):  # workers import it by file name; a script goes by value
        raise SrganError(f"import this file as dask_upscale (sys.path.insert(0, 'examples')), not {__name__}")
    if __name__ != "__main__":
        client.upload_file(__file__)
    client.register_plugin(UpscalerPlugin(settings), name=PLUGIN)
    chunks = iter([jobs[i:i + chunk] for i in range(0, len(jobs), chunk)])
    window = 2 * max(1, sum(client.nthreads().values()))
    submitted = {client.submit(upscale_chunk, part, output, pure=False): part for part in _take(chunks, window)}
    counts: Counter[str] = Counter()
    queue = as_completed(list(submitted))
    for future in queue:
        part = submitted.pop(future)
        try:
            records = future.result()
        except Exception as err:
            records = _lost(part, err)
        for record in records:
            counts[record["status"]] += 1
            report(record)
        for more in _take(chunks, 1):
            submitted[new := client.submit(upscale_chunk, more, output, pure=False)] = more
            queue.add(new)
    return counts


def _take(chunks: Iterator[Sequence[Job]], count: int) -> list[Sequence[Job]]:
    return [part for _, part in zip(range(count), chunks, strict=False)]


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="input folder or prefix URL (s3://..., gs://..., a path)")
    parser.add_argument("target", help="output folder or prefix URL")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--local", type=_positive, default=2, help="else: a local cluster of this many worker processes")
    parser.add_argument("--model", help="ONNX file or shipped model name (default: the shipped model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads per worker process")
    parser.add_argument("--format", dest="fmt")
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--chunk", type=_positive, default=16, help="files per Dask task")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--skip-existing", action="store_true")
    parser.add_argument("--json", help="append one JSON line per file to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: exit 0 when every file is done or skipped, 1 when some failed."""
    args = _arguments(argv)
    output = Output(fmt=args.fmt, quality=args.quality, overwrite=args.overwrite, skip_existing=args.skip_existing)
    settings = UpscaleSettings(model=args.model, device=args.device, tile=args.tile, threads=args.threads)
    try:
        jobs = list_jobs(args.source, args.target, output)
    except (SrganError, OSError, ValueError) as err:  # nothing there, an unknown protocol, a store that refuses
        print(f"error: {args.source}: {one_line(err)}", file=sys.stderr)
        return 2
    if not jobs:
        print(f"warning: no photos under {args.source}", file=sys.stderr)
        return 0
    log = open(args.json, "a") if args.json else None  # noqa: SIM115 (closed below, after the whole run)

    def report(record: Record) -> None:
        if record["status"] == "failed":
            print(f"failed: {record['input']}: {record['reason']}", file=sys.stderr)
        if log:
            log.write(json.dumps(record) + "\n")
    cluster = None if args.scheduler else LocalCluster(n_workers=args.local, threads_per_worker=1, host="127.0.0.1",
                                                       dashboard_address=None)
    try:
        with Client(args.scheduler or cluster, timeout=60) as client:
            counts = run(client, jobs, output, settings, args.chunk, report)
    except OSError as err:  # no scheduler at that address, or the cluster went away
        print(f"error: the Dask cluster: {one_line(err)}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.close()
        if log:
            log.close()
    print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
