"""Training speed: steps/s of pretrain and gan steps (paper configuration) and of the input pipelines alone (bicubic
and realistic degradations), in one run (target: each pipeline delivers batches at least 5x faster than the
training step consumes them)."""

import os
import time
from pathlib import Path

from _common import parser, report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rate(fn, steps):
    fn()  # warm-up: tracing and first batch
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - start)


def main():
    p = parser(__doc__)
    p.add_argument("--data", type=Path, required=True, help="folder of training photos")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--content-loss", default="mse", help="gan content loss (vgg54 needs --vgg-weights offline)")
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--degradation-config", default=None, help="realistic pipeline parameters (default: built-in)")
    args = p.parse_args()

    import tensorflow as tf

    from srgan_cli.evaluation.degradations import load_params
    from srgan_cli.training import data, patches
    from srgan_cli.training.config import TrainConfig
    from srgan_cli.training.trainer import Trainer

    images = patches.load_photos(args.data, 96).images
    batches = iter(data.make_dataset(images, 96, args.batch_size, seed=0))
    realistic = iter(data.make_dataset(images, 96, args.batch_size, seed=0,
                                       degradation=load_params(args.degradation_config)))
    rows = [{"what": "input pipeline alone (bicubic)", "per_s": rate(lambda: next(batches), args.steps * 10)},
            {"what": "input pipeline alone (realistic)", "per_s": rate(lambda: next(realistic), args.steps * 2)}]
    for phase in ("pretrain", "gan"):
        config = TrainConfig(phase=phase, batch_size=args.batch_size, content_loss=args.content_loss,
                             vgg_weights=args.vgg_weights or "imagenet")
        trainer = Trainer(config, tf.distribute.get_strategy())
        rows.append({"what": f"{phase} step (batch {args.batch_size})",
                     "per_s": rate(lambda: trainer.train_step(*next(batches)), args.steps)})  # noqa: B023
    for row in rows:
        row["seconds_each"] = 1 / row["per_s"]
    pipeline, damaged, pretrain = rows[0]["per_s"], rows[1]["per_s"], rows[2]["per_s"]
    report("train_speed", rows, args, {"pipeline_over_pretrain_step": pipeline / pretrain,
                                       "realistic_pipeline_over_pretrain_step": damaged / pretrain,
                                       "gan_content_loss": args.content_loss, "target": "pipeline >= 5x step rate"})


if __name__ == "__main__":
    main()
