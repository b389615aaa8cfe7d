"""The training object: networks, optimizers, losses and the distributed pretrain / GAN step functions."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from srgan_cli.training import archs, ldl, losses
from srgan_cli.training.config import TrainConfig
from srgan_cli.training.discriminator import make_discriminator
from srgan_cli.training.precision import float32_policy, needs_loss_scaling
from srgan_cli.training.teacher import Teacher


def _adam(lr: float) -> keras.optimizers.Optimizer:
    """Adam (beta1 0.9), with loss scaling under the float16 policy."""
    adam = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9)
    scaled = needs_loss_scaling(keras.mixed_precision.global_policy().name)
    return keras.optimizers.LossScaleOptimizer(adam) if scaled else adam


class Trainer:
    """SRResNet pre-training (pixel loss) or SRGAN training (content + adversarial), under a tf.distribute strategy.

    Args:
        config: the run configuration.
        strategy: where variables live and steps run.

    Raises:
        SrganError: the --teacher model cannot be used (missing, not an SR model, another scale).
    """

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy) -> None:
        self.config, self.strategy = config, strategy
        self.average: Any = None  # a WeightAverage of the generator, set by the training loop when the run keeps one
        gan = config.phase == "gan"
        self.scale = archs.get(config.arch).scale
        config.arch_params.update(archs.params_of(config.arch, config.arch_params))  # config.json records them all
        with strategy.scope():
            self._build_networks(config, gan)
        self.pixel_loss = losses.pixel_loss(config.pixel_loss)
        scale = losses.feature_scale(config.content_loss, config.vgg_weights)
        self.content_loss = losses.content_loss_fn(config.content_loss, self.extractor, scale)
        self.d_loss_fn, self.g_adv_fn = losses.gan_losses(config.gan_loss)
        self.teacher = Teacher(config.teacher, self.scale) if gan and config.teacher else None
        step = self._gan_step if gan else self._pretrain_step
        self._step = tf.function(lambda lr, hr: self._distributed(step, lr, hr))
        self._d_step = tf.function(lambda lr, hr: self._distributed(self._discriminator_step, lr, hr)) if gan else None

    def _build_networks(self, config: TrainConfig, gan: bool) -> None:
        self.generator = archs.build_generator(config.arch, config.arch_params)
        self.g_optimizer = _adam(config.lr)
        self.discriminator: Any = make_discriminator(config.discriminator, config.hr_size) if gan else None
        self.d_optimizer: Any = _adam(config.lr) if gan else None
        self.extractor: Any = None
        if gan and config.content_loss != "mse":
            with float32_policy():  # bfloat16 features round the content loss of a near-right SR to noise
                self.extractor = losses.build_feature_extractor(config.content_loss, config.vgg_weights or None)
        # LDL's stable reference: a copy holding the weight average, refreshed before each step
        self.reference: Any = None
        if gan and config.ldl_weight and config.ema:
            self.reference = archs.build_generator(config.arch, config.arch_params)
            self.reference.trainable = False
        for optimizer, model in ((self.g_optimizer, self.generator), (self.d_optimizer, self.discriminator)):
            if optimizer is not None and model is not None:
                optimizer.build(model.trainable_variables)  # not lazily inside a replica context

    def set_learning_rate(self, lr: float) -> None:
        for opt in (self.g_optimizer, self.d_optimizer):
            if opt is not None:
                opt.learning_rate.assign(lr)

    def train_step(self, lr: Any, hr: Any, generator: bool = True) -> dict[str, float]:
        """One optimisation step on a (distributed) batch; returns a dict of float losses.

        Args:
            lr, hr: the (distributed) LR and HR batches.
            generator: False in a GAN run: update only the discriminator (its warm-up).
        """
        if generator and self.reference is not None:
            source = self.average.values if self.average is not None else self.generator.get_weights()
            self.reference.set_weights(source)
        step = self._step if generator or self._d_step is None else self._d_step
        result = {k: float(v) for k, v in step(lr, hr).items()}
        if self.average is not None:
            self.average.update(self.generator)
        return result

    def _distributed(self, step: Any, lr: Any, hr: Any) -> dict[str, Any]:
        per_replica = self.strategy.run(step, args=(lr, hr))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    def _replica_mean(self, loss: Any) -> Any:
        return ops.cast(loss, "float32") / self.strategy.num_replicas_in_sync

    def _apply(self, optimizer: Any, model: keras.Model, tape: tf.GradientTape, scaled_loss: Any) -> None:
        """Apply gradients of a loss already passed through optimizer.scale_loss inside the tape."""
        optimizer.apply(tape.gradient(scaled_loss, model.trainable_variables), model.trainable_variables)

    def _pretrain_step(self, lr: Any, hr: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            sr = ops.cast(self.generator(lr, training=True), "float32")
            loss = self._replica_mean(self.pixel_loss(hr, sr))
            scaled = self.g_optimizer.scale_loss(loss)  # loss scaling under mixed precision, identity otherwise
        self._apply(self.g_optimizer, self.generator, tape, scaled)
        return {"g_loss": loss}

    def _gan_step(self, lr: Any, hr: Any) -> dict[str, Any]:
        d_loss = self.discriminator_update(lr, hr)
        return {**self.generator_update(lr, hr), "d_loss": d_loss}

    def _discriminator_step(self, lr: Any, hr: Any) -> dict[str, Any]:
        return {"d_loss": self.discriminator_update(lr, hr)}

    def _logits(self, images: Any) -> Any:
        return ops.cast(self.discriminator(images, training=True), "float32")

    def discriminator_update(self, lr: Any, hr: Any) -> Any:
        """One discriminator step on the --gan-loss (real HR crops against generated ones); G is only run."""
        sr = ops.cast(self.generator(lr, training=False), "float32")
        with tf.GradientTape() as tape:
            d_loss = self._replica_mean(self.d_loss_fn(self._logits(hr), self._logits(sr)))
            scaled = self.d_optimizer.scale_loss(d_loss)
        self._apply(self.d_optimizer, self.discriminator, tape, scaled)
        return d_loss

    def _weighted_terms(self, hr: Any, sr: Any, targets: dict[str, Any] | None = None) -> dict[str, Any]:
        """The optional generator loss terms by log name, each times its --*-weight (0 leaves a term out).

        Args:
            hr, sr: the batch's photos and the generator's output.
            targets: computed outside the gradient tape: 'reference' (the averaged generator's SR, for LDL) and
                'teacher' (the teacher's SR of the same LR batch).
        """
        c, targets = self.config, targets or {}
        terms = (("lattice_term", c.lattice_weight, losses.lattice_loss),
                 ("lowfreq_term", c.lowfreq_weight, losses.lowfreq_loss),
                 ("colour_term", c.colour_weight, losses.colour_loss),
                 ("pixel_term", c.pixel_weight, self.pixel_loss),
                 ("overshoot_term", c.overshoot_weight, losses.overshoot_loss),
                 ("ldl_term", c.ldl_weight, lambda h, s: ldl.ldl_loss(h, s, targets.get("reference"))),
                 ("teacher_term", c.teacher_weight, lambda h, s: ops.mean(ops.abs(targets["teacher"] - s))))
        return {name: weight * self._replica_mean(loss(hr, sr)) for name, weight, loss in terms if weight}

    def _targets(self, lr: Any, hr: Any) -> dict[str, Any]:
        """What the LDL and teacher terms compare against, computed without gradient."""
        targets = {}
        if self.reference is not None:
            targets["reference"] = ops.cast(self.reference(lr, training=False), "float32")
        if self.teacher is not None:
            out = tf.numpy_function(self.teacher, [ops.cast(lr, "float32")], tf.float32, stateful=False)
            targets["teacher"] = tf.ensure_shape(out, hr.shape)
        return targets

    def generator_update(self, lr: Any, hr: Any) -> dict[str, Any]:
        """One generator step on content + adv_weight * adversarial (+ the weighted extra terms: lattice, lowfreq,
        colour, pixel, overshoot, LDL, teacher) loss; discriminator, VGG and teacher stay frozen.

        The generator's BatchNorm layers run in inference mode, on the statistics of pre-training: with batch
        statistics the losses would judge a function that `upscale` never computes (a probe fine-tuned that way on
        96x96 crops ended 3-4 levels brighter at inference), and a fine-tune of a few thousand steps has no business
        moving them.
        """
        targets = self._targets(lr, hr)
        relativistic = self.config.gan_loss == "ragan"
        with tf.GradientTape() as tape:
            sr = ops.cast(self.generator(lr, training=False), "float32")
            content = self._replica_mean(self.content_loss(hr, sr))
            real_logits = self._logits(hr) if relativistic else None
            adv = self._replica_mean(self.g_adv_fn(real_logits, self._logits(sr)))
            extra = self._weighted_terms(hr, sr, targets)
            g_loss = content + self.config.adv_weight * adv + sum(extra.values())
            scaled = self.g_optimizer.scale_loss(g_loss)
        self._apply(self.g_optimizer, self.generator, tape, scaled)
        return {"g_loss": g_loss, "content_loss": content, "adv_loss": adv, **extra}
