"""Training data as a tf.data pipeline: random HR crops of the photos, with bicubic or realistically damaged LR."""

import tensorflow as tf

from srgan_cli.evaluation.degradations import DegradationParams, degrade_crop
from srgan_cli.training.patches import random_crop


def bicubic_downscale(hr, scale=4):
    """x`scale` bicubic downscale with antialiasing, rounded to 8-bit levels: matches Pillow's BICUBIC resize.

    Args:
        hr (tf.Tensor): float32 (..., H, W, 3) in 0..255.
        scale (int): downscaling factor.

    Returns:
        tf.Tensor: float32 (..., H/scale, W/scale, 3) in 0..255, integer-valued.
    """
    size = (tf.shape(hr)[-3] // scale, tf.shape(hr)[-2] // scale)
    lr = tf.image.resize(hr, size, method="bicubic", antialias=True)
    return tf.clip_by_value(tf.round(lr), 0.0, 255.0)


def to_training_pair(hr_uint8, scale=4):
    """uint8 HR batch -> (LR in [0,1], HR in [-1,1]), the value ranges of the paper."""
    hr = tf.cast(hr_uint8, tf.float32)
    lr = bicubic_downscale(hr, scale)
    return lr / 255.0, hr / 127.5 - 1.0


def make_dataset(images, hr_size, batch_size, seed, first_step=0, scale=4, degradation=None, pipeline=0, pipelines=1,
                 replicas=1):
    """Infinite tf.data pipeline of (lr, hr) batches starting at step `first_step`.

    With several input pipelines (one per worker) pipeline `p` makes only its slice of every global batch: crops
    step * batch_size + p * batch_size / pipelines + k for k < batch_size / pipelines, in batches of
    batch_size / replicas (one per local replica), so all pipelines together draw exactly the crops of one process.

    Args:
        images (list): decoded uint8 photos (the in-memory cache).
        hr_size (int): HR crop side; LR side is hr_size // scale.
        batch_size (int): global batch size.
        seed (int): run seed.
        first_step (int): step to start from (for exact resumption).
        scale (int): SR factor.
        degradation (DegradationParams | None): None: the protocol's bicubic LR; else the realistic pipeline,
            drawn from (seed, crop index) alone.
        pipeline (int): this input pipeline (worker), 0 <= pipeline < pipelines.
        pipelines (int): input pipelines in all (workers); must divide batch_size.
        replicas (int): replicas in all; the batches this yields hold batch_size / replicas crops.

    Returns:
        tf.data.Dataset: yields float32 (B, h, w, 3) LR in [0,1] and (B, H, W, 3) HR in [-1,1].
    """
    share, per_replica = batch_size // pipelines, batch_size // replicas
    ds = tf.data.Dataset.range(first_step * share, 2**62)
    if pipelines > 1:
        ds = ds.map(lambda i: i // share * batch_size + pipeline * share + i % share)
    if degradation is None:
        ds = ds.map(_crop_op(images, hr_size, seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(per_replica, drop_remainder=True)
        ds = ds.map(lambda hr: to_training_pair(hr, scale), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        pair = _damaged_pair_op(images, hr_size, seed, degradation)
        ds = ds.map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(per_replica, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def distributed_batches(strategy, images, hr_size, batch_size, seed, first_step=0, scale=4, degradation=None):
    """Iterator of `strategy`'s per-replica batches: each worker crops only its own slice of every global batch.

    Args:
        strategy (tf.distribute.Strategy): the run's strategy; batch_size must split evenly over its replicas.
        (the rest as `make_dataset`)
    """
    def pipeline(context):
        return make_dataset(images, hr_size, batch_size, seed, first_step, scale, degradation,
                            context.input_pipeline_id, context.num_input_pipelines, context.num_replicas_in_sync)
    return iter(strategy.distribute_datasets_from_function(pipeline))


def _crop_op(images, hr_size, seed):
    def crop(index):
        return random_crop(images, index, hr_size, seed)

    def crop_op(index):
        hr = tf.numpy_function(crop, [index], tf.uint8, stateful=False)
        return tf.ensure_shape(hr, (hr_size, hr_size, 3))
    return crop_op


def _damaged_pair_op(images, hr_size, seed, params: DegradationParams):
    lr_size = hr_size // params.scale

    def pair(index):
        hr = random_crop(images, index, hr_size, seed)
        return degrade_crop(hr, seed, int(index), params), hr

    def pair_op(index):
        lr, hr = tf.numpy_function(pair, [index], (tf.uint8, tf.uint8), stateful=False)
        lr = tf.ensure_shape(lr, (lr_size, lr_size, 3))
        hr = tf.ensure_shape(hr, (hr_size, hr_size, 3))
        return tf.cast(lr, tf.float32) / 255.0, tf.cast(hr, tf.float32) / 127.5 - 1.0
    return pair_op
