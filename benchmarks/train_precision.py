"""Training step time under float32 and under --mixed-precision's CPU policy (mixed_bfloat16), side by side in one
run, for the pretrain and GAN steps (target: bfloat16 at least 1.2x faster where the CPU has bfloat16 instructions)."""

import os

from _common import alternating_best, parser, report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
POLICIES = ("float32", "mixed_bfloat16")


def stepper(phase, policy, args):
    """A callable running `args.steps` training steps of a fresh trainer built under `policy`."""
    import keras
    import numpy as np
    import tensorflow as tf

    from srgan_cli.training.config import TrainConfig
    from srgan_cli.training.trainer import Trainer

    keras.mixed_precision.set_global_policy(policy)
    config = TrainConfig(phase=phase, batch_size=args.batch_size, hr_size=args.hr_size, content_loss="vgg54",
                         vgg_weights="random", discriminator="unet", gan_loss="ragan",
                         arch_params={"blocks": args.blocks, "channels": args.channels})
    trainer = Trainer(config, tf.distribute.get_strategy())
    keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    lr = tf.constant(rng.random((args.batch_size, args.hr_size // 4, args.hr_size // 4, 3), dtype=np.float32))
    hr = tf.constant(rng.random((args.batch_size, args.hr_size, args.hr_size, 3), dtype=np.float32) * 2 - 1)

    def run():
        for _ in range(args.steps):
            trainer.train_step(lr, hr)
    return run


def main():
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hr-size", type=int, default=96)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    args = p.parse_args()

    from srgan_cli.training.precision import cpu_has_bf16

    rows, ratios = [], {}
    for phase in ("pretrain", "gan"):
        runs = {policy: stepper(phase, policy, args) for policy in POLICIES}
        best = alternating_best(runs, args.repeat)
        for policy in POLICIES:
            rows.append({"what": f"{phase} step, {policy} (batch {args.batch_size}, {args.hr_size} px)",
                         "seconds_each": best[policy] / args.steps})
        ratios[f"{phase}_bf16_speedup"] = best["float32"] / best["mixed_bfloat16"]
    report("train_precision", rows, args, {**ratios, "cpu_has_bf16": cpu_has_bf16(),
                                           "target": "bf16 >= 1.2x float32 where cpu_has_bf16"})


if __name__ == "__main__":
    main()
