"""--mixed-precision's dtype policy (training/precision.py): float16 on GPUs, bfloat16 on CPUs that have it."""

import pytest

from srgan_cli.errors import SrganError
from srgan_cli.training.precision import cpu_has_bf16, dtype_policy, needs_loss_scaling


@pytest.mark.parametrize("mixed,gpus,bf16,policy", [
    (False, 1, True, "float32"), (False, 0, False, "float32"),
    (True, 2, False, "mixed_float16"), (True, 1, True, "mixed_float16"),
    (True, 0, True, "mixed_bfloat16"),
])
def test_the_policy_follows_the_hardware(mixed, gpus, bf16, policy):
    assert dtype_policy(mixed, gpus, bf16) == policy


def test_a_cpu_without_bfloat16_is_refused_in_one_line():
    with pytest.raises(SrganError, match="no bfloat16 instructions") as err:
        dtype_policy(True, 0, False)
    assert "\\n" not in str(err.value)


def test_only_float16_scales_the_loss():
    assert needs_loss_scaling("mixed_float16")
    assert not needs_loss_scaling("mixed_bfloat16") and not needs_loss_scaling("float32")


@pytest.mark.parametrize("flags,has", [("fpu avx512f avx512_bf16 sse", True), ("fpu amx_bf16 amx_tile", True),
                                       ("fpu avx512f avx512_vnni", False), ("fpu avx512_bf16x", False)])
def test_bf16_is_read_from_the_cpu_flags(tmp_path, flags, has):
    (tmp_path / "cpuinfo").write_text(f"processor\\t: 0\\nflags\\t\\t: {flags}\\n")
    assert cpu_has_bf16(tmp_path / "cpuinfo") is has


def test_an_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_has_bf16(tmp_path / "missing") is False
