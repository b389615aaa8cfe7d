"""ONNX Runtime inference: device choice without silent fallback, the model contract, and the Upscaler API."""

import contextlib
import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.upscale import imaging
from srgan_cli.upscale.tiling import DEFAULT_PAD, DEFAULT_TILE, self_ensemble, upscale_tiled

log = logging.getLogger("srgan")
BYTES_PER_LR_PIXEL = 17_000  # peak ONNX Runtime memory of the 16x64 x4 generator per window LR pixel (measured 16.9 kB)
RANGES = {"0,1": (0.0, 1.0), "0,255": (0.0, 255.0), "-1,1": (-1.0, 1.0)}


WEIGHTS_DIRS = (Path(__file__).parent / "weights", Path(__file__).parent.parent / "weights")  # installed, checkout


def default_model_path():
    """The model named by weights/default.txt (installed as srgan_cli/weights), or None while none is shipped."""
    for base in WEIGHTS_DIRS:
        pointer = base / "default.txt"
        if pointer.is_file() and (base / pointer.read_text().strip()).is_file():
            return base / pointer.read_text().strip()
    return None


def shipped_models():
    """Names of the ONNX models shipped in weights/ (e.g. ['srresnet_x4'])."""
    return sorted({path.stem for base in WEIGHTS_DIRS if base.is_dir() for path in base.glob("*.onnx")})


def resolve_model(model):
    """An existing model path: `model` itself, or the shipped model of that name ('srresnet_x4')."""
    path = Path(model)
    if path.is_file():
        return path
    if path.name == str(model) and path.suffix in ("", ".onnx"):
        for base in WEIGHTS_DIRS:
            if (base / f"{path.stem}.onnx").is_file():
                return base / f"{path.stem}.onnx"
    names = ", ".join(shipped_models()) or "none"
    raise SrganError(f"{model}: model file not found (shipped models, usable by name: {names})")


def cpu_count():
    """CPUs this process may use (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_device(device):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> (kind, gpu index)."""
    if device in ("auto", "cpu", "cuda"):
        return device, 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return "cuda", int(device[5:])
    raise UsageError(f"--device {device!r}: use auto, cpu, cuda or cuda:N")


def _session_options(ort, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.log_severity_level = 3
    return options


def _shrink_options(ort):
    """Run options that hand the CPU arena's free memory back to the system at the end of the run."""
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def _cuda_session(ort, model, options, gpu):
    """A session really running on the CUDA EP, or None (quietly: no ORT spam on CPU-only machines)."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    if sys.platform.startswith("linux") and not os.path.exists("/dev/nvidiactl"):
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        with contextlib.suppress(Exception):
            ort.preload_dlls()
    ort.set_default_logger_severity(4)
    try:
        # HEURISTIC: cuDNN's default exhaustive algorithm search costs 0.3-1.3 s for every new input shape
        cuda = {"device_id": gpu, "cudnn_conv_algo_search": "HEURISTIC"}
        providers = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
        session = ort.InferenceSession(model, options, providers=providers)
        return session if session.get_providers()[0] == "CUDAExecutionProvider" else None
    except Exception:
        return None
    finally:
        ort.set_default_logger_severity(2)


def open_session(model, device="auto", threads=None):
    """Open an ONNX Runtime session on the requested device.

    Args:
        model (str | Path | bytes): ONNX file or serialized model.
        device (str): 'auto' (CUDA when it really works, else CPU), 'cpu', 'cuda' or 'cuda:N'.
        threads (int | None): CPU threads (default: the CPUs this process may use).

    Returns:
        tuple: (onnxruntime.InferenceSession, device actually used as 'cpu' or 'cuda:N').
    """
    import onnxruntime as ort

    kind, gpu = parse_device(device)
    model = str(model) if isinstance(model, Path) else model
    options = _session_options(ort, threads)
    if kind in ("auto", "cuda"):
        session = _cuda_session(ort, model, options, gpu)
        if session is not None:
            return session, f"cuda:{gpu}"
        if kind == "cuda":
            raise SrganError(f"--device {device}: CUDA is not usable here (needs an NVIDIA GPU, onnxruntime-gpu and "
                             "CUDA 13 / cuDNN 9: pip install 'onnxruntime-gpu[cuda,cudnn]'); use --device cpu")
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]), "cpu"
    except Exception as err:
        raise SrganError(f"not a usable ONNX model ({str(err).splitlines()[0][:200]})") from None


@dataclass(frozen=True)
class Contract:
    """How to feed the model: input name, layout, value range and scale."""

    input_name: str
    layout: str
    value_range: tuple
    scale: int


def _metadata(session):
    return session.get_modelmeta().custom_metadata_map or {}


def _check_input(session, layout):
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise SrganError(f"the model has {len(inputs)} inputs; an SR model takes one image tensor")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise SrganError(f"the model's input has rank {len(shape)}; expected a 4-D image batch ({layout})")
    channels = shape[3] if layout == "NHWC" else shape[1]
    if isinstance(channels, int) and channels != 3:
        raise SrganError(f"the model's input has {channels} channels in {layout} layout; expected 3 (RGB)")
    return inputs[0].name


def _probe_scale(session, name, layout, lo):
    probe = np.full((1, 16, 16, 3) if layout == "NHWC" else (1, 3, 16, 16), lo, dtype=np.float32)
    try:
        out = session.run(None, {name: probe})[0]
    except Exception as err:
        raise SrganError(f"the model fails on a 16x16 input ({str(err).splitlines()[0][:160]})") from None
    h, w = (out.shape[1], out.shape[2]) if layout == "NHWC" else (out.shape[2], out.shape[3])
    if out.ndim != 4 or h != w or h % 16:
        raise SrganError(f"the model maps 16x16 to {h}x{w}: not an integer-scale SR model")
    return h // 16


def read_contract(session, scale=None, layout=None, value_range=None):
    """The model contract from `srgan export` metadata, overridden by explicit values, else probed."""
    meta = _metadata(session)
    layout = (layout or meta.get("layout") or "NHWC").upper()
    if layout not in ("NHWC", "NCHW"):
        raise UsageError(f"--layout {layout}: use NHWC or NCHW")
    range_key = (value_range or meta.get("value_range") or "0,1").replace(" ", "")
    if range_key not in RANGES:
        raise UsageError(f"--range {range_key}: use 0,1 or 0,255 or -1,1")
    name = _check_input(session, layout)
    scale = scale or (int(meta["scale"]) if "scale" in meta else None)
    scale = scale or _probe_scale(session, name, layout, RANGES[range_key][0])
    return Contract(name, layout, RANGES[range_key], int(scale))


def auto_tile(pad, budget_bytes=None):
    """Largest kept tile whose window fits the memory budget (default: 1/4 of available memory, at most 2 GB)."""
    if budget_bytes is None:
        budget_bytes = min(2 << 30, _available_memory() // 4)
    side = int((budget_bytes / BYTES_PER_LR_PIXEL) ** 0.5)
    return max(32, side - 2 * pad)


def _available_memory():
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class Upscaler:
    """Runs an SR ONNX model on photos, tile by tile; holds no per-call state, so it is thread-safe.

    Args:
        model_path (str | Path | None): ONNX model (default: the shipped model).
        device (str): 'auto', 'cpu', 'cuda' or 'cuda:N'.
        tile (int | None): kept tile side in LR pixels; 0 runs the whole image; None sizes it from memory.
        tile_pad (int): context pixels on each side of a tile.
        tta (bool): average the 8 flips/rotations.
        alpha (str): 'bicubic' or 'model' upscaling of transparency.
        threads (int | None): CPU threads.
        scale, layout, value_range: contract overrides for models without srgan metadata.
    """

    def __init__(self, model_path=None, device="auto", tile=DEFAULT_TILE, tile_pad=DEFAULT_PAD, tta=False,
                 alpha="bicubic", threads=None, scale=None, layout=None, value_range=None):
        model_path = model_path or default_model_path()
        if model_path is None:
            raise UsageError("no default model is installed yet: pass --model model.onnx")
        model_path = resolve_model(model_path)
        if alpha not in ("bicubic", "model"):
            raise UsageError(f"--alpha {alpha}: use bicubic or model")
        self.session, self.device = open_session(Path(model_path), device, threads)
        self.contract = read_contract(self.session, scale, layout, value_range)
        self.tile = auto_tile(tile_pad) if tile is None else tile
        self.tile_pad, self.tta, self.alpha = tile_pad, tta, alpha
        import onnxruntime as ort
        self._release = _shrink_options(ort)

    @property
    def scale(self):
        return self.contract.scale

    def run_window(self, window, run_options=None):
        """float32 (h, w, 3) in [0,1] -> float32 (h*s, w*s, 3) in [0,1] through the model."""
        lo, hi = self.contract.value_range
        batch = window[None] * (hi - lo) + lo
        if self.contract.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        feed = {self.contract.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        out = self.session.run(None, feed, run_options)[0]
        if self.contract.layout == "NCHW":
            out = out.transpose(0, 2, 3, 1)
        return (out[0] - lo) / (hi - lo)

    def upscale_array(self, image, out_dtype=np.float32, gray=False, on_window=None):
        """float32 HxWx3 in [0,1] -> upscaled HxWx(3 or 1) array in `out_dtype` (uint8/uint16 are quantized)."""
        run = self_ensemble(self.run_window) if self.tta else self.run_window
        finish = _finisher(out_dtype, gray)
        return upscale_tiled(image, run, self.scale, self.tile, self.tile_pad, finish=finish, on_window=on_window)

    def upscale_photo(self, photo, outscale=None, on_window=None):
        """Upscale a decoded Photo (any mode) -> Photo with the same mode, bit depth and metadata."""
        top = photo.max_value
        rgb = photo.color.astype(np.float32) / top
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        if photo.alpha is not None:
            rgb = bleed_transparent(rgb, photo.alpha > 0)
        gray = photo.color.shape[2] == 1
        color = self.upscale_array(rgb, photo.color.dtype, gray, on_window)
        alpha = None if photo.alpha is None else self._upscale_alpha(photo.alpha, top)
        result = imaging.Photo(color, alpha, photo.icc, photo.exif, photo.dpi, list(photo.notes))
        self.release_memory()
        return resize_photo(result, outscale / self.scale) if outscale and outscale != self.scale else result

    def release_memory(self):
        """Give the arena's buffers back to the system (between images: keeps the peak of a batch low)."""
        if self.device == "cpu":
            self.run_window(np.zeros((4, 4, 3), np.float32), self._release)

    def _upscale_alpha(self, alpha, top):
        if self.alpha == "model":
            plane = np.repeat(alpha.astype(np.float32)[..., None] / top, 3, axis=2)
            return self.upscale_array(plane, alpha.dtype, gray=True)[..., 0]
        height, width = alpha.shape
        return resize_plane(alpha, (width * self.scale, height * self.scale), Image.BICUBIC)

    def upscale(self, image):
        """PIL.Image (L, LA, RGB, RGBA, P, CMYK, I;16) -> upscaled PIL.Image of the same kind."""
        return imaging.photo_to_image(self.upscale_photo(imaging.photo_from_image(image)))


def _finisher(out_dtype, gray):
    out_dtype = np.dtype(out_dtype)
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(out_dtype)

    def finish(block):
        if gray:
            block = block @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
        if top is None:
            return block.astype(out_dtype)
        return np.round(np.clip(block, 0.0, 1.0) * top).astype(out_dtype)
    return finish


def resize_plane(plane, size, resample=Image.LANCZOS):
    """Resize one HxW channel of any integer dtype in float precision, rounding back to its dtype."""
    dtype = plane.dtype
    out = np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, resample))
    if np.issubdtype(dtype, np.integer):
        out = np.clip(np.round(out), 0, np.iinfo(dtype).max)
    return out.astype(dtype)


def resize_photo(photo, factor):
    """Final high-quality (Lanczos) resize of an upscaled photo by `factor`, for --outscale."""
    width, height = photo.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    color = np.stack([resize_plane(photo.color[..., c], size) for c in range(photo.color.shape[2])], axis=2)
    alpha = None if photo.alpha is None else resize_plane(photo.alpha, size)
    return imaging.Photo(color, alpha, photo.icc, photo.exif, photo.dpi, photo.notes)


def bleed_transparent(rgb, visible):
    """Replace colour under fully transparent pixels by that of the nearest visible ones (pyramid fill).

    Models mix neighbouring colours; the arbitrary (often black) colour of invisible pixels would otherwise
    leak into visible edges as a dark halo.
    """
    if visible.all() or not visible.any():
        return rgb
    weight = visible.astype(np.float32)[..., None]
    return np.where(weight > 0, rgb, _pyramid_fill(rgb * weight, weight))


def _pyramid_fill(weighted, weight):
    """Colour average of the nearest non-empty cells at each point (weighted: colour*weight, weight: HxWx1)."""
    height, width = weight.shape[:2]
    filled = np.divide(weighted, weight, out=np.zeros_like(weighted), where=weight > 0)
    if (weight > 0).all() or max(height, width) == 1:
        return filled
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    pool = lambda a: np.pad(a, pad).reshape((height + 1) // 2, 2, (width + 1) // 2, 2, -1).sum(axis=(1, 3))  # noqa: E731
    coarse = _pyramid_fill(pool(weighted), pool(weight))
    coarse_up = coarse.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return np.where(weight > 0, filled, coarse_up)
