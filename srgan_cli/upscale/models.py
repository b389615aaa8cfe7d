"""The shipped models: where `weights/` is, which model is the default, and models by name ('srresnet_x4')."""

from __future__ import annotations

from pathlib import Path

from srgan_cli.errors import SrganError, UsageError

# installed: srgan_cli/weights (the package srgan_cli.weights); a checkout: weights/ beside srgan_cli/
WEIGHTS_DIRS = (Path(__file__).parents[1] / "weights", Path(__file__).parents[2] / "weights")
VARIANTS = ("int8", "fp16")  # other precisions of a model, as <stem>_<precision>.onnx beside it (--precision)


def default_model_path() -> Path | None:
    """The model named by weights/default.txt, or None while none is shipped."""
    for base in WEIGHTS_DIRS:
        pointer = base / "default.txt"
        if pointer.is_file() and (base / pointer.read_text().strip()).is_file():
            return base / pointer.read_text().strip()
    return None


def shipped_models() -> list[str]:
    """Names of the ONNX models shipped in weights/ (e.g. ['srgan_x4', 'srresnet_x4']; not their int8/fp16 copies)."""
    return sorted({path.stem for base in WEIGHTS_DIRS if base.is_dir() for path in base.glob("*.onnx")
                   if not path.stem.endswith(tuple(f"_{v}" for v in VARIANTS))})


def resolve_model(model: str | Path | None) -> Path:
    """An existing model file: `model` itself, the shipped model of that name, or (None) the default model.

    Raises:
        UsageError: no model given and none shipped.
        SrganError: neither a file nor a shipped model's name (the message lists the shipped names).
    """
    if not model:
        default = default_model_path()
        if default is None:
            raise UsageError("no default model is installed yet: pass --model model.onnx")
        return default
    path = Path(model)
    if path.is_file():
        return path
    if path.name == str(model) and path.suffix in ("", ".onnx"):
        for base in WEIGHTS_DIRS:
            if (base / f"{path.stem}.onnx").is_file():
                return base / f"{path.stem}.onnx"
    names = ", ".join(shipped_models()) or "none"
    raise SrganError(f"{model}: model file not found (shipped models, usable by name: {names})")
