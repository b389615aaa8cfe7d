"""benchmarks/gpu.py --dry-run: every GPU code path (fp16, tiles, batched tiles, I/O binding) runs on the CPU EP."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_gpu_benchmark_dry_run():
    done = subprocess.run([sys.executable, "gpu.py", "--dry-run", "--json", "--repeat", "1"], cwd=BENCHMARKS,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    cases = {(row["group"], row["case"]): row for row in result["rows"]}
    wanted = ("whole image", "whole image, io_binding", "tiles 16+4, batch 4", "tiles 16+4, batch 8, io_binding")
    for group in ("cpu fp32", "cpu fp16"):
        for case in wanted:
            assert isinstance(cases[group, case]["out_MP_per_s"], float), cases[group, case]
    cpu_cases = {case for group, case in cases if group.startswith("cpu (")}
    assert cpu_cases >= {"tiles 16+4, batch 1", "tiles 16+4, batch 4"}
    assert result["fp16_tiles_max_diff_levels"] <= 2 and result["fp16_whole_psnr_vs_fp32"] > 50
    assert result["tensorflow_imported"] is False
