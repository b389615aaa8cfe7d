"""Distil a shipped generator into a student of another activation (ReLU: an int8 model fuses it into its convs).

The student starts from the teacher's weights (the PReLU slopes dropped), and learns the teacher's SR of the
teacher's own input distribution: bicubic x1/4 LR crops of the training photos (`srgan evaluate`'s degrade), and
for a teacher trained on realistic damage (config.json `degradation`), half of every batch damaged by the teacher's
own degradation pipeline. The BatchNorm statistics stay frozen, as in the GAN phase. Saves `student.weights.h5`
and `state.json` every --save-every steps; a rerun with the same --out resumes from them (the learning-rate
schedule by step). `student.config.json` lets `srgan export` read the student; `srgan export STUDENT.onnx --int8
--reference TEACHER.onnx` checks its int8 copy against the teacher.

    python scripts/distil_student.py --teacher weights/srgan_x4 --data ../shared/data/train/bsds500 --out runs/relu
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def load_lr_photos(folder: Path, scale: int, side: int) -> list[np.ndarray]:
    """The LR of every readable photo whose LR holds a `side` crop (unreadable and small ones are left out)."""
    from srgan_cli.errors import SrganError
    from srgan_cli.evaluation.evaluate import degrade
    from srgan_cli.training.patches import find_photos
    from srgan_cli.upscale.imaging import read_rgb8

    photos = []
    for path in find_photos(folder):
        try:
            lr = degrade(read_rgb8(path), scale)
        except SrganError:
            continue
        if min(lr.shape[:2]) >= side:
            photos.append(lr)
    if not photos:
        raise SystemExit(f"{folder}: no readable photo of at least {side * scale} px")
    return photos


def batches(photos: list[np.ndarray], batch: int, side: int, seed: int, start: int):
    """Endless float32 LR batches in [0, 1]; batch i depends only on (seed, i)."""
    i = start
    while True:
        rng = np.random.default_rng([seed, i])
        crops = []
        for _ in range(batch):
            photo = photos[int(rng.integers(len(photos)))]
            y, x = (int(rng.integers(0, n - side + 1)) for n in photo.shape[:2])
            crop = np.rot90(photo[y:y + side, x:x + side], int(rng.integers(4)))
            crops.append(crop[:, ::-1] if rng.integers(2) else crop)
        yield i, np.stack(crops).astype(np.float32) / 255.0
        i += 1


def mixed_batches(folder: Path, params, batch: int, side: int, scale: int, seed: int, start: int):
    """Endless batches, half bicubic LR (as `batches`) and half LR from the realistic pipeline `params`."""
    from srgan_cli.evaluation.evaluate import degrade
    from srgan_cli.training.patches import load_photos, patch_pairs

    hr_photos = load_photos(folder, side * scale).images  # decoded once: the clean half is their bicubic LR
    clean = batches([degrade(hr, scale) for hr in hr_photos], batch - batch // 2, side, seed, start)
    for i, lr in clean:
        damaged, _ = patch_pairs(hr_photos, batch // 2, side * scale, seed, i * (batch // 2), scale, params)
        yield i, np.concatenate([lr, damaged.astype(np.float32) / 255.0])


def student_from_teacher(teacher, student) -> None:
    """Copy every weight but the PReLU slopes the student does not have (matched in layer order)."""
    def weighted(model):
        return [layer for layer in model.layers if layer.weights]
    kinds = [type(layer).__name__ for layer in weighted(student)]
    teacher_layers = weighted(teacher)
    source = [layer for layer in teacher_layers
              if type(layer).__name__ != "PReLU" or layer is teacher_layers[1]]  # the head's PReLU stays
    if [type(layer).__name__ for layer in source] != kinds:
        raise SystemExit("teacher and student layers do not line up")
    for src, dst in zip(source, weighted(student), strict=True):
        dst.set_weights(src.get_weights())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", type=Path, required=True, help="weights stem: STEM.weights.h5 and STEM.config.json")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--activation", default="relu")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr-size", type=int, default=32, help="LR crop side")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (cosine to 1%% of it)")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import keras
    import tensorflow as tf

    from srgan_cli.evaluation import degradations
    from srgan_cli.training import archs
    from srgan_cli.training.config import TrainConfig
    from srgan_cli.training.runfolder import write_atomically

    config = TrainConfig.load(args.teacher.with_name(args.teacher.name + ".config.json"))
    teacher = archs.build_generator(config.arch, config.arch_params)
    teacher.load_weights(str(args.teacher.with_name(args.teacher.name + ".weights.h5")))
    params = {**archs.params_of(config.arch, config.arch_params), "activation": args.activation}
    student = archs.build_generator(config.arch, params)
    args.out.mkdir(parents=True, exist_ok=True)
    config.arch_params, config.init = params, f"distilled from {args.teacher} (scripts/distil_student.py)"
    config.save(args.out / "student.config.json")
    state_file, weights_file = args.out / "state.json", args.out / "student.weights.h5"
    start = 0
    if state_file.exists() and weights_file.exists():
        student.load_weights(str(weights_file))
        start = json.loads(state_file.read_text())["step"]
    else:
        student_from_teacher(teacher, student)
    optimizer = keras.optimizers.Adam(learning_rate=args.lr)
    optimizer.build(student.trainable_variables)

    @tf.function
    def step(lr):
        target = teacher(lr, training=False)
        with tf.GradientTape() as tape:
            sr = student(lr, training=False)
            loss = tf.reduce_mean(tf.abs(sr - target))
        optimizer.apply(tape.gradient(loss, student.trainable_variables), student.trainable_variables)
        mse = tf.reduce_mean(tf.square((sr - target) / 2))
        return loss, mse

    scale = archs.get(config.arch).scale
    if config.degradation == "bicubic":
        crops = batches(load_lr_photos(args.data, scale, args.lr_size), args.batch, args.lr_size, args.seed, start)
    else:
        damage = degradations.params_from_dict(config.degradation_params, "teacher config degradation_params")
        crops = mixed_batches(args.data, damage, args.batch, args.lr_size, scale, args.seed, start)
    started, logged = time.time(), []
    for i, lr in crops:
        if i >= args.steps:
            break
        optimizer.learning_rate.assign(args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * i / args.steps))))
        loss, mse = step(tf.constant(lr))
        logged.append(float(mse))
        if (i + 1) % args.save_every == 0 or i + 1 == args.steps:
            write_atomically(student.save_weights, weights_file)
            write_atomically(lambda path, done=i + 1: path.write_text(json.dumps({"step": done, **params})),
                             state_file)
            psnr = -10 * math.log10(max(np.mean(logged), 1e-12))
            print(f"step {i + 1} psnr_vs_teacher {psnr:.2f} dB  {time.time() - started:.0f} s", flush=True)
            logged = []


if __name__ == "__main__":
    main()
