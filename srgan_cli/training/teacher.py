"""Distillation teacher: another SR model in ONNX, run by ONNX Runtime on the CPU, whose output a generator learns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.errors import SrganError
from srgan_cli.upscale.contract import check_result, read_contract
from srgan_cli.upscale.session import open_session

PROBE_SIDE = 16  # the teacher is tried once on a 16x16 input when it is opened


class Teacher:
    """An ONNX SR model as a numpy function: LR batches in [0,1] -> its SR batches in [-1,1] (the generator's range).

    The model's contract (layout, value range, scale) is read as `srgan upscale` reads it: from `srgan export`
    metadata, else probed. One ONNX Runtime session, created here, serves every call (sessions are thread-safe).

    Args:
        path: the teacher's .onnx file.
        scale: the scale of the generator being trained; the teacher must have the same.
        threads: ONNX Runtime's CPU threads (default: all the CPUs this process may use).

    Raises:
        SrganError: the file is missing, not a usable SR model, of another scale, or fails on a probe.
    """

    def __init__(self, path: str | Path, scale: int, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SrganError(f"--teacher {self.path}: not found")
        try:
            self.session, _ = open_session(self.path, "cpu", threads)
            self.contract = read_contract(self.session)
        except SrganError as err:
            raise SrganError(f"--teacher {self.path}: {err}") from None
        if self.contract.scale != scale:
            raise SrganError(f"--teacher {self.path}: a x{self.contract.scale} model (from "
                             f"{self.contract.scale_from}); this run trains a x{scale} generator")
        batch = self.session.get_inputs()[0].shape[0]
        self.batched = not isinstance(batch, int) or batch < 1  # a fixed batch of 1: one image a call
        self(np.zeros((1, PROBE_SIDE, PROBE_SIDE, 3), np.float32))

    def __call__(self, lr: Any) -> np.ndarray:
        """The teacher's SR of an LR batch.

        Args:
            lr: float32 (B, h, w, 3) in [0,1].

        Returns:
            float32 (B, h*scale, w*scale, 3) in [-1,1], clipped to that range as an image is.

        Raises:
            SrganError: the model fails or returns what no image is.
        """
        lr = np.asarray(lr, np.float32)
        parts = [lr] if self.batched else [lr[i:i + 1] for i in range(len(lr))]
        out = np.concatenate([self._run(part) for part in parts])
        return (np.clip(out, 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run(None, self.contract.feed(batch))[0]
        except Exception as err:
            raise SrganError(f"--teacher {self.path}: failed on a batch of {batch.shape} "
                             f"({str(err).splitlines()[0][:160]})") from None
        try:
            out = check_result(out, batch.shape[1:3], self.contract, batch=len(batch))
        except SrganError as err:
            raise SrganError(f"--teacher {self.path}: {err}") from None
        return self.contract.unfeed(out)
