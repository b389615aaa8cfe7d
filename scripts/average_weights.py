"""Average generator weight files of one training trajectory into one .weights.h5 (SWA; network interpolation).

Checkpoints taken along the same fine-tuning run lie in one basin; their mean usually scores above each of them
(stochastic weight averaging, Izmailov et al. 2018). `srgan train --ema` keeps such an average during a run; this
script builds one from checkpoints already saved. With `--mix`, the weighted mean of a fidelity generator and the
adversarial one fine-tuned from it trades sharpness against artifacts (network interpolation, Wang et al. 2018).

    python scripts/average_weights.py runs/a/best_generator.weights.h5 runs/b/generator.weights.h5 \
        --config runs/a/config.json -o averaged.weights.h5 [--mix 0.3 0.7]
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from srgan_cli.training import archs  # noqa: E402
from srgan_cli.training.config import TrainConfig  # noqa: E402


def average_weights(paths, generator, mix=None):
    """Element-wise mean of the weights stored in `paths`, loaded one by one into `generator` (of their shape).

    Args:
        mix (list[float] | None): one weight per path, normalised to sum 1; None: equal weights.
    """
    mix = np.asarray(mix if mix is not None else [1.0] * len(paths), dtype=np.float64)
    mix = mix / mix.sum()
    total = None
    for path, share in zip(paths, mix, strict=False):
        generator.load_weights(path)
        weights = [share * w for w in generator.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights, strict=False)]
    return [t.astype(np.float32) for t in total]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path, help="generator .weights.h5 files")
    parser.add_argument("--config", required=True, type=Path, help="a config.json of the runs (network shape)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="averaged .weights.h5 to write")
    parser.add_argument("--mix", nargs="+", type=float, help="one weight per file (normalised): a weighted mean")
    args = parser.parse_args(argv)
    if args.mix is not None and (len(args.mix) != len(args.weights) or min(args.mix) < 0 or sum(args.mix) <= 0):
        parser.error("--mix needs one non-negative weight per file, not all zero")
    config = TrainConfig.load(args.config)
    generator = archs.build_generator(config.arch, config.arch_params)
    generator.set_weights(average_weights(args.weights, generator, args.mix))
    partial = args.output.with_name(args.output.name.removesuffix(".weights.h5") + ".partial.weights.h5")
    generator.save_weights(partial)
    os.replace(partial, args.output)
    shutil.copy(args.config, args.output.with_name(args.output.name.removesuffix(".weights.h5") + ".config.json"))
    print(f"wrote {args.output}: the {'weighted ' if args.mix else ''}mean of {len(args.weights)} generators")


if __name__ == "__main__":
    main()
