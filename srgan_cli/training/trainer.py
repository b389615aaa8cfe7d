"""The training object: networks, optimizers, losses and the distributed pretrain / GAN step functions."""

import keras
import tensorflow as tf
from keras import ops

from srgan_cli.training import archs, losses
from srgan_cli.training.discriminator import build_discriminator


def _adam(lr, mixed_precision=False):
    adam = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9)
    return keras.optimizers.LossScaleOptimizer(adam) if mixed_precision else adam


class Trainer:
    """SRResNet pre-training (pixel loss) or SRGAN training (content + adversarial), under a tf.distribute strategy.

    Args:
        config (TrainConfig): the run configuration.
        strategy (tf.distribute.Strategy): where variables live and steps run.
    """

    def __init__(self, config, strategy):
        self.config, self.strategy = config, strategy
        self.average = None  # a WeightAverage of the generator, set by the training loop when the run keeps one
        gan = config.phase == "gan"
        self.scale = archs.get(config.arch).scale
        config.arch_params.update(archs.params_of(config.arch, config.arch_params))  # config.json records them all
        with strategy.scope():
            self.generator = archs.build_generator(config.arch, config.arch_params)
            self.g_optimizer = _adam(config.lr, config.mixed_precision)
            self.discriminator = build_discriminator(config.hr_size) if gan else None
            self.d_optimizer = _adam(config.lr, config.mixed_precision) if gan else None
            extractor = None
            if gan and config.content_loss != "mse":
                extractor = losses.build_feature_extractor(config.content_loss, config.vgg_weights or None)
            self.extractor = extractor
            for optimizer, model in ((self.g_optimizer, self.generator), (self.d_optimizer, self.discriminator)):
                if optimizer is not None:
                    optimizer.build(model.trainable_variables)  # not lazily inside a replica context
        self.pixel_loss = losses.pixel_loss(config.pixel_loss)
        scale = losses.feature_scale(config.content_loss, config.vgg_weights)
        self.content_loss = losses.content_loss_fn(config.content_loss, extractor, scale)
        step = self._gan_step if gan else self._pretrain_step
        self._step = tf.function(lambda lr, hr: self._distributed(step, lr, hr))
        self._d_step = tf.function(lambda lr, hr: self._distributed(self._discriminator_step, lr, hr)) if gan else None

    def set_learning_rate(self, lr):
        for opt in (self.g_optimizer, self.d_optimizer):
            if opt is not None:
                opt.learning_rate.assign(lr)

    def train_step(self, lr, hr, generator=True):
        """One optimisation step on a (distributed) batch; returns a dict of float losses.

        Args:
            generator (bool): False in a GAN run: update only the discriminator (its warm-up).
        """
        step = self._step if generator or self._d_step is None else self._d_step
        result = {k: float(v) for k, v in step(lr, hr).items()}
        if self.average is not None:
            self.average.update(self.generator)
        return result

    def _distributed(self, step, lr, hr):
        per_replica = self.strategy.run(step, args=(lr, hr))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    def _replica_mean(self, loss):
        return ops.cast(loss, "float32") / self.strategy.num_replicas_in_sync

    def _apply(self, optimizer, model, tape, scaled_loss):
        """Apply gradients of a loss already passed through optimizer.scale_loss inside the tape."""
        optimizer.apply(tape.gradient(scaled_loss, model.trainable_variables), model.trainable_variables)

    def _pretrain_step(self, lr, hr):
        with tf.GradientTape() as tape:
            sr = ops.cast(self.generator(lr, training=True), "float32")
            loss = self._replica_mean(self.pixel_loss(hr, sr))
            scaled = self.g_optimizer.scale_loss(loss)  # loss scaling under mixed precision, identity otherwise
        self._apply(self.g_optimizer, self.generator, tape, scaled)
        return {"g_loss": loss}

    def _gan_step(self, lr, hr):
        d_loss = self.discriminator_update(lr, hr)
        return {**self.generator_update(lr, hr), "d_loss": d_loss}

    def _discriminator_step(self, lr, hr):
        return {"d_loss": self.discriminator_update(lr, hr)}

    def discriminator_update(self, lr, hr):
        """One discriminator step: real HR crops -> 1, generated -> 0; the generator is only run."""
        d = self.discriminator
        sr = ops.cast(self.generator(lr, training=False), "float32")
        with tf.GradientTape() as tape:
            real, fake = ops.cast(d(hr, training=True), "float32"), ops.cast(d(sr, training=True), "float32")
            d_loss = self._replica_mean(losses.discriminator_loss(real, fake))
            scaled = self.d_optimizer.scale_loss(d_loss)
        self._apply(self.d_optimizer, d, tape, scaled)
        return d_loss

    def _weighted_terms(self, hr, sr):
        """The optional generator loss terms by log name, each times its --*-weight (0 leaves a term out)."""
        c = self.config
        terms = (("lattice_term", c.lattice_weight, losses.lattice_loss),
                 ("lowfreq_term", c.lowfreq_weight, losses.lowfreq_loss),
                 ("pixel_term", c.pixel_weight, self.pixel_loss),
                 ("overshoot_term", c.overshoot_weight, losses.overshoot_loss))
        return {name: weight * self._replica_mean(loss(hr, sr)) for name, weight, loss in terms if weight}

    def generator_update(self, lr, hr):
        """One generator step on content + adv_weight * adversarial (+ lattice_weight * lattice + lowfreq_weight *
        lowfreq + pixel_weight * pixel + overshoot_weight * overshoot) loss; discriminator and VGG stay frozen.

        The generator's BatchNorm layers run in inference mode, on the statistics of pre-training: with batch
        statistics the losses would judge a function that `upscale` never computes (a probe fine-tuned that way on
        96x96 crops ended 3-4 levels brighter at inference), and a fine-tune of a few thousand steps has no business
        moving them.
        """
        with tf.GradientTape() as tape:
            sr = ops.cast(self.generator(lr, training=False), "float32")
            content = self._replica_mean(self.content_loss(hr, sr))
            fake_logits = ops.cast(self.discriminator(sr, training=True), "float32")
            adv = self._replica_mean(losses.adversarial_loss(fake_logits))
            extra = self._weighted_terms(hr, sr)
            g_loss = content + self.config.adv_weight * adv + sum(extra.values())
            scaled = self.g_optimizer.scale_loss(g_loss)
        self._apply(self.g_optimizer, self.generator, tape, scaled)
        return {"g_loss": g_loss, "content_loss": content, "adv_loss": adv, **extra}
