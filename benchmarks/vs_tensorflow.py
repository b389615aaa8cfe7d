"""Against what a user would run instead: the same weights through Keras (`tf.function`, the fastest TensorFlow path,
and `model.predict`) and through srgan's ONNX Runtime path, on the same photo in the same run."""

import os
from pathlib import Path

import numpy as np
from _common import ROOT, best_time, parser, report
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = parser(__doc__)
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "srresnet_x4.weights.h5",
                   help="generator .weights.h5 (config.json beside it) or run folder; exported on the fly")
    p.add_argument("--photo", type=Path, default=ROOT / "examples" / "chelsea.png")
    p.add_argument("--crop", type=int, default=160, help="LR crop side taken from the photo (0: whole photo)")
    args = p.parse_args()

    import tensorflow as tf

    from srgan_cli.training.export import fast_variant, load_generator, to_onnx, with_unit_range
    from srgan_cli.upscale.inference import Upscaler

    generator, config, _ = load_generator(args.weights)
    model = with_unit_range(generator)
    onnx_file = ROOT / "benchmarks" / ".vs_tf.onnx"
    exported = to_onnx(with_unit_range(fast_variant(generator, config)))  # as srgan export
    onnx_file.write_bytes(exported.SerializeToString())
    photo = np.asarray(Image.open(args.photo).convert("RGB"), dtype=np.float32) / 255.0
    lr = photo[:args.crop, :args.crop] if args.crop else photo
    batch = lr[None]
    fn = tf.function(lambda x: model(x, training=False))
    upscaler = Upscaler(onnx_file, device="cpu", tile=0)
    times = {
        "onnxruntime (srgan upscale path)": best_time(lambda: upscaler.run_window(lr), args.repeat),
        "keras via tf.function": best_time(lambda: fn(batch).numpy(), args.repeat),
        "keras model.predict": best_time(lambda: model.predict(batch, verbose=0), args.repeat),
    }
    diff = float(np.abs(upscaler.run_window(lr) - fn(batch).numpy()[0]).max())
    out_pixels = lr.shape[0] * lr.shape[1] * 16
    base = times["keras via tf.function"]
    rows = [{"path": k, "seconds": v, "out_MP_per_s": out_pixels / v / 1e6, "speed_vs_tf_function": base / v}
            for k, v in times.items()]
    onnx_file.unlink()
    report("vs_tensorflow", rows, args, {"input": f"{lr.shape[1]}x{lr.shape[0]} LR", "max_abs_diff": diff,
                                         "target": "onnxruntime speed_vs_tf_function >= 1.0"})


if __name__ == "__main__":
    main()
