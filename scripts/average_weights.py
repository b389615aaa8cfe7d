"""Average generator weight files of one training trajectory (SWA, Izmailov et al. 2018) into one .weights.h5.

Checkpoints taken along the same fine-tuning run lie in one basin; their mean usually scores above each of them.
`srgan train --ema` keeps such an average during a run; this script builds one from checkpoints already saved.

    python scripts/average_weights.py runs/a/best_generator.weights.h5 runs/b/generator.weights.h5 \
        --config runs/a/config.json -o averaged.weights.h5
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srgan_cli.config import TrainConfig  # noqa: E402
from srgan_cli.networks import build_generator  # noqa: E402


def average_weights(paths, generator):
    """Element-wise mean of the weights stored in `paths`, loaded one by one into `generator` (of their shape)."""
    total = None
    for path in paths:
        generator.load_weights(path)
        weights = generator.get_weights()
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    return [t / len(paths) for t in total]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path, help="generator .weights.h5 files")
    parser.add_argument("--config", required=True, type=Path, help="a config.json of the runs (network shape)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="averaged .weights.h5 to write")
    args = parser.parse_args(argv)
    config = TrainConfig.load(args.config)
    generator = build_generator(config.blocks, config.channels)
    generator.set_weights(average_weights(args.weights, generator))
    partial = args.output.with_name(args.output.name.removesuffix(".weights.h5") + ".partial.weights.h5")
    generator.save_weights(partial)
    os.replace(partial, args.output)
    shutil.copy(args.config, args.output.with_name(args.output.name.removesuffix(".weights.h5") + ".config.json"))
    print(f"wrote {args.output}: the mean of {len(args.weights)} generators")


if __name__ == "__main__":
    main()
