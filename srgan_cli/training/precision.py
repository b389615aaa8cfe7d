"""What --mixed-precision means on this machine: float16 compute on GPUs, bfloat16 on CPUs that have it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from srgan_cli.errors import SrganError

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of x86 CPUs with bfloat16 arithmetic
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU does bfloat16 arithmetic in hardware (read from /proc/cpuinfo; False where it cannot be read)."""
    try:
        words = set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return False
    return any(flag in words for flag in BF16_FLAGS)


def dtype_policy(mixed: bool, gpus: int, bf16: bool) -> str:
    """The Keras dtype policy of a run.

    Args:
        mixed: --mixed-precision.
        gpus: GPUs TensorFlow sees.
        bf16: whether the CPU has bfloat16 instructions (`cpu_has_bf16`).

    Raises:
        SrganError: mixed precision asked for on a CPU without bfloat16 instructions, where it only slows training.
    """
    if not mixed:
        return "float32"
    if gpus:
        return "mixed_float16"
    if bf16:
        return "mixed_bfloat16"
    raise SrganError("--mixed-precision: no GPU, and this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16), "
                     "so it would train slower than float32; leave it off (--no-mixed-precision, also on --resume)")


def needs_loss_scaling(policy: str) -> bool:
    """float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none."""
    return policy == "mixed_float16"


@contextmanager
def float32_policy() -> Iterator[None]:
    """Build models under the float32 policy inside, whatever policy the process holds (restored after)."""
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
