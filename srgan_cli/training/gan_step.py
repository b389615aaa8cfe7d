"""The GAN step as pure functions of the weights for the JAX backend: stateless calls, jax.value_and_grad, jit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from srgan_cli.errors import SrganError
from srgan_cli.training import ldl, losses

State = tuple[Any, ...]  # (g_train, g_non, d_train, d_non, g_opt, d_opt, ema, vgg): lists of backend arrays


@dataclass(frozen=True)
class GanWeights:
    """The generator loss: weights of its terms, the GAN loss kind, the content loss's scale, the EMA decay.

    Attributes:
        content: VGG feature MSE (times content_scale); 0 with no feature extractor.
        pixel: L1 pixel loss.
        adv: adversarial loss.
        ldl: LDL's artifact-weighted L1 (reference: the moving average when ema > 0).
        teacher: L1 toward a teacher's SR of the same LR batch (`step`'s `target`).
        lattice, lowfreq, colour, overshoot: the losses of srgan_cli.training.losses of those names.
        gan_loss: 'bce' or 'ragan'.
        content_scale: factor on the feature MSE (losses.feature_scale).
        ema: decay of the generator's moving average (0: none).
    """

    content: float = 1.0
    pixel: float = 1.0
    adv: float = 5e-3
    ldl: float = 0.0
    teacher: float = 0.0
    lattice: float = 0.0
    lowfreq: float = 0.0
    colour: float = 0.0
    overshoot: float = 0.0
    gan_loss: str = "ragan"
    content_scale: float = losses.VGG_SCALE
    ema: float = 0.0


def _jax() -> Any:
    backend = keras.backend.backend()
    if backend != "jax":  # Keras's TensorFlow optimizers refuse stateless_apply; TensorFlow has `srgan train`
        raise SrganError(f"the stateless GAN step runs on the jax Keras backend (KERAS_BACKEND=jax), not {backend}; "
                         "with TensorFlow use `srgan train --phase gan`")
    import jax

    return jax


def value_and_grad(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn(params, *args) -> (loss, aux) turned into f(params, *args) -> ((loss, aux), gradients w.r.t. params).

    Raises:
        SrganError: a Keras backend other than jax.
    """
    return _jax().value_and_grad(fn, has_aux=True)  # type: ignore[no-any-return]


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn compiled by jax.jit."""
    return _jax().jit(fn)  # type: ignore[no-any-return]


class StatelessGan:
    """One discriminator update then one generator update, as `step(state, lr, hr) -> (state, logs)`.

    The generator's BatchNorm runs in inference mode (as the TensorFlow trainer's GAN phase); the discriminator in
    training mode; the feature extractor frozen. Both optimizers are Adam (beta1 0.9).

    Args:
        generator, discriminator: built Keras models (LR [0,1] -> SR [-1,1]; SR -> logits).
        extractor: the frozen VGG feature extractor, or None (no content term).
        weights: the loss terms and the EMA decay.
        lr: Adam's learning rate for both networks.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, extractor: keras.Model | None,
                 weights: GanWeights, lr: float) -> None:
        self.g, self.d, self.vgg, self.w = generator, discriminator, extractor, weights
        self.g_opt = keras.optimizers.Adam(lr, beta_1=0.9)
        self.d_opt = keras.optimizers.Adam(lr, beta_1=0.9)
        self.g_opt.build(generator.trainable_variables)
        self.d_opt.build(discriminator.trainable_variables)
        self.d_loss_fn, self.g_adv_fn = losses.gan_losses(weights.gan_loss)
        self._d_grad = value_and_grad(self._d_loss)
        self._g_grad = value_and_grad(self._g_loss)

    def initial_state(self) -> State:
        """The networks' and optimizers' current values (the moving average starts at the generator)."""
        def values(variables: Any) -> list[Any]:
            return [v.value for v in variables]
        g_train = values(self.g.trainable_variables)
        vgg = values(self.vgg.non_trainable_variables) if self.vgg is not None else []
        return (g_train, values(self.g.non_trainable_variables), values(self.d.trainable_variables),
                values(self.d.non_trainable_variables), values(self.g_opt.variables), values(self.d_opt.variables),
                list(g_train) if self.w.ema else [], vgg)

    def _generate(self, g_train: Any, g_non: Any, lr: Any) -> Any:
        return ops.cast(self.g.stateless_call(g_train, g_non, lr, training=False)[0], "float32")

    def _logits(self, d_train: Any, d_non: Any, images: Any) -> tuple[Any, Any]:
        logits, d_non = self.d.stateless_call(d_train, d_non, images, training=True)
        return ops.cast(logits, "float32"), d_non

    def _d_loss(self, d_train: Any, d_non: Any, sr: Any, hr: Any) -> tuple[Any, Any]:
        real, d_non = self._logits(d_train, d_non, hr)
        fake, d_non = self._logits(d_train, d_non, sr)
        return self.d_loss_fn(real, fake), d_non

    def _features(self, vgg: Any, images: Any) -> Any:
        return self.vgg.stateless_call([], vgg, images, training=False)[0]  # type: ignore[union-attr]

    def _g_loss(self, g_train: Any, g_non: Any, d_train: Any, d_non: Any, ema: Any, vgg: Any, lr: Any,
                hr: Any, target: Any) -> tuple[Any, dict[str, Any]]:
        w = self.w
        sr = self._generate(g_train, g_non, lr)
        fake, _ = self._logits(d_train, d_non, sr)
        real = self._logits(d_train, d_non, hr)[0] if w.gan_loss == "ragan" else None
        terms = {"adv_loss": self.g_adv_fn(real, fake)}
        if self.vgg is not None and w.content:
            terms["content_loss"] = w.content_scale * ops.mean(ops.square(self._features(vgg, hr)
                                                                          - self._features(vgg, sr)))
        if w.pixel:
            terms["pixel_loss"] = ops.mean(ops.abs(hr - sr))
        if w.ldl:
            reference = self._generate(ema, g_non, lr) if ema else None
            terms["ldl_loss"] = ldl.ldl_loss(hr, sr, reference)
        if w.teacher:
            terms["teacher_loss"] = ops.mean(ops.abs(target - sr))
        for name, loss in (("lattice", losses.lattice_loss), ("lowfreq", losses.lowfreq_loss),
                           ("colour", losses.colour_loss), ("overshoot", losses.overshoot_loss)):
            if getattr(w, name):
                terms[f"{name}_loss"] = loss(hr, sr)
        factors = {"adv_loss": w.adv, "content_loss": w.content, "pixel_loss": w.pixel, "ldl_loss": w.ldl,
                   "teacher_loss": w.teacher,
                   "lattice_loss": w.lattice, "lowfreq_loss": w.lowfreq, "colour_loss": w.colour,
                   "overshoot_loss": w.overshoot}
        total = sum(factors[name] * value for name, value in terms.items())
        return total, terms

    def d_step(self, state: State, lr: Any, hr: Any, target: Any = None) -> tuple[State, dict[str, Any]]:
        """Only the discriminator learns (its warm-up); the generator is run. `target` is not used."""
        g_train, g_non, d_train, d_non, g_opt, d_opt, ema, vgg = state
        sr = ops.stop_gradient(self._generate(g_train, g_non, lr))
        (d_loss, d_non), grads = self._d_grad(d_train, d_non, sr, hr)
        d_train, d_opt = self.d_opt.stateless_apply(d_opt, grads, d_train)
        return (g_train, g_non, d_train, d_non, g_opt, d_opt, ema, vgg), {"d_loss": d_loss}

    def step(self, state: State, lr: Any, hr: Any, target: Any = None) -> tuple[State, dict[str, Any]]:
        """One discriminator update, then one generator update against the updated discriminator.

        Args:
            state: the networks' and optimizers' values.
            lr, hr: the batch ([0,1] and [-1,1]).
            target: a teacher's SR of `lr` in [-1,1] (see `teaching`); needed when the weights have a teacher term.
        """
        state, logs = self.d_step(state, lr, hr)
        g_train, g_non, d_train, d_non, g_opt, d_opt, ema, vgg = state
        (g_loss, terms), grads = self._g_grad(g_train, g_non, d_train, d_non, ema, vgg, lr, hr, target)
        g_train, g_opt = self.g_opt.stateless_apply(g_opt, grads, g_train)
        if self.w.ema:
            ema = [e + (1.0 - self.w.ema) * (v - e) for e, v in zip(ema, g_train, strict=True)]
        return (g_train, g_non, d_train, d_non, g_opt, d_opt, ema, vgg), {**logs, "g_loss": g_loss, **terms}

    def publish(self, state: State, average: bool = True) -> None:
        """Write the state's generator (its moving average when kept and `average`) and discriminator into the
        Keras models, for saving."""
        g_train, g_non, d_train, d_non = state[:4]
        ema = state[6]
        pairs = ((self.g.trainable_variables, ema if average and ema else g_train),
                 (self.g.non_trainable_variables, g_non), (self.d.trainable_variables, d_train),
                 (self.d.non_trainable_variables, d_non))
        for variables, values in pairs:
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)


def teaching(teacher: keras.Model) -> Callable[[Any], Any]:
    """A frozen SR model as `f(lr) -> its SR in [-1,1]` (clipped as an image is), compiled by jax.jit; its weights
    are passed to the compiled function, not baked into it.

    Args:
        teacher: LR [0,1] -> SR [0,1], channels last (e.g. `ncnn.keras_model` of Real-ESRGAN x4plus).
    """
    trainable = [v.value for v in teacher.trainable_variables]
    non_trainable = [v.value for v in teacher.non_trainable_variables]

    def run(trainable: Any, non_trainable: Any, lr: Any) -> Any:
        sr = teacher.stateless_call(trainable, non_trainable, lr, training=False)[0]
        return ops.clip(ops.cast(sr, "float32"), 0.0, 1.0) * 2.0 - 1.0

    run_compiled = compiled(run)
    return lambda lr: run_compiled(trainable, non_trainable, lr)
