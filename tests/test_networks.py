"""The Keras networks and training object: paper structure, serialization, and which weights a step may change."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from srgan_cli.training import losses  # noqa: E402
from srgan_cli.training.archs.srresnet import build_generator  # noqa: E402
from srgan_cli.training.config import TrainConfig  # noqa: E402
from srgan_cli.training.discriminator import build_discriminator  # noqa: E402
from srgan_cli.training.layers import PixelShuffle, Rescale  # noqa: E402
from srgan_cli.training.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.tf


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_generator_follows_the_paper():
    g = build_generator()
    convs = layers_of(g, keras.layers.Conv2D)
    assert len(convs) == 1 + 2 * 16 + 1 + 2 + 1
    assert [c.kernel_size for c in (convs[0], convs[-1])] == [(9, 9), (9, 9)]
    assert [c.filters for c in convs[-3:]] == [256, 256, 3]
    assert len(layers_of(g, PixelShuffle)) == 2 and len(layers_of(g, keras.layers.BatchNormalization)) == 33
    assert not layers_of(g, keras.layers.UpSampling2D) and not layers_of(g, keras.layers.Lambda)
    assert 1.5e6 < g.count_params() < 1.6e6


def test_generator_is_x4_on_any_size_with_tanh_range():
    g = build_generator(blocks=2, channels=8)
    sr = np.asarray(g(np.random.rand(2, 7, 5, 3).astype("float32")))
    assert sr.shape == (2, 28, 20, 3) and sr.min() >= -1 and sr.max() <= 1


def test_discriminator_follows_the_paper():
    d = build_discriminator(96)
    convs = layers_of(d, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.strides[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert len(layers_of(d, keras.layers.BatchNormalization)) == 7
    dense = layers_of(d, keras.layers.Dense)
    assert [x.units for x in dense] == [1024, 1] and layers_of(d, keras.layers.Flatten)
    assert d(np.zeros((2, 96, 96, 3), "float32")).shape == (2, 1)


def test_unet_discriminator_follows_real_esrgan():
    from srgan_cli.training.discriminator import SpectralConv2D, make_discriminator

    d = make_discriminator("unet")
    convs = [layer for layer in d.layers if isinstance(layer, (keras.layers.Conv2D, SpectralConv2D))]
    assert [c.filters for c in convs] == [64, 128, 256, 512, 256, 128, 64, 64, 64, 1]
    assert [c.kernel_size if isinstance(c, SpectralConv2D) else c.kernel_size[0] for c in convs] == \
        [3, 4, 4, 4, 3, 3, 3, 3, 3, 3]
    assert [type(c) is SpectralConv2D for c in convs] == [False] + [True] * 8 + [False]
    assert not layers_of(d, keras.layers.BatchNormalization) and len(layers_of(d, keras.layers.Add)) == 3
    assert 4.3e6 < d.count_params() < 4.5e6  # Real-ESRGAN's UNetDiscriminatorSN: 4,376,897 (and u vectors here)
    assert d(np.zeros((1, 48, 64, 3), "float32")).shape == (1, 48, 64, 1)


def test_pixel_shuffle_uses_depth_to_space_dcr_order():
    x = np.arange(2 * 3 * 12, dtype="float32").reshape(1, 2, 3, 12)
    expected = x.reshape(1, 2, 3, 2, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(1, 4, 6, 3)
    np.testing.assert_array_equal(np.asarray(PixelShuffle(2)(x)), expected)


def test_saved_models_load_in_safe_mode(tmp_path):
    g = build_generator(blocks=1, channels=8)
    x = keras.Input((None, None, 3))
    model = keras.Model(x, Rescale(0.5, 0.5, clip=(0, 1))(g(x)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    lr = np.random.rand(1, 5, 6, 3).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(lr)), np.asarray(model(lr)), atol=1e-6)


def tiny_trainer(phase, content_loss="mse", vgg_weights=None, hr_size=24, **weights):
    config = TrainConfig(phase=phase, arch_params={"blocks": 1, "channels": 8}, hr_size=hr_size,
                         content_loss=content_loss, vgg_weights=vgg_weights, lr=1e-3, **weights)
    return Trainer(config, tf.distribute.get_strategy())


def batch(n=2, hr=24):
    rng = np.random.default_rng(0)
    return (rng.random((n, hr // 4, hr // 4, 3), dtype=np.float32),
            rng.random((n, hr, hr, 3), dtype=np.float32) * 2 - 1)


def snapshot(model, trainable_only=False):
    return [np.array(w) for w in (model.trainable_weights if trainable_only else model.weights)]


def changed(before, model, trainable_only=False):
    return [not np.array_equal(a, b) for a, b in zip(before, snapshot(model, trainable_only), strict=False)]


def test_pretrain_step_changes_every_generator_weight():
    trainer = tiny_trainer("pretrain")
    before = snapshot(trainer.generator, trainable_only=True)
    trainer.train_step(*batch())
    assert all(changed(before, trainer.generator, trainable_only=True))


def test_gan_step_updates_both_networks_but_not_the_generators_batchnorm_statistics():
    trainer = tiny_trainer("gan")
    g_before, d_before = snapshot(trainer.generator, True), snapshot(trainer.discriminator, True)
    statistics = [np.array(w) for w in trainer.generator.non_trainable_weights]
    losses_ = trainer.train_step(*batch())
    assert set(losses_) == {"g_loss", "content_loss", "adv_loss", "d_loss"}
    assert all(changed(g_before, trainer.generator, True)) and all(changed(d_before, trainer.discriminator, True))
    assert statistics and all(np.array_equal(a, np.asarray(b))
                              for a, b in zip(statistics, trainer.generator.non_trainable_weights, strict=False))


def test_lattice_loss_charges_a_4px_grid_far_more_than_noise_of_the_same_power():
    yy, xx = np.mgrid[0:64, 0:64]
    grid = np.where((yy % 4 == 0) & (xx % 4 == 0), 0.3, -0.02)[None, ..., None] * np.ones((2, 1, 1, 3))
    grid = (grid - grid.mean()).astype("float32")
    noise = np.random.default_rng(0).normal(0, grid.std(), grid.shape).astype("float32")
    hr = np.zeros_like(grid)
    on_grid, on_noise = float(losses.lattice_loss(hr, grid)), float(losses.lattice_loss(hr, noise))
    assert on_grid == pytest.approx(np.mean(grid ** 2), rel=1e-4)  # all of a pure grid's power
    assert on_noise < on_grid / 30  # noise: about 1/64 of its power (8x8-pixel LR windows)
    assert float(losses.lattice_loss(hr, hr + 0.5)) == 0.0  # a plain offset does not repeat with the lattice


def test_lowfreq_loss_charges_a_tint_and_not_texture_inside_a_4px_block():
    hr = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    texture = np.tile(np.array([[1, -1, 1, -1], [-1, 1, -1, 1]] * 2, "float32")[None, ..., None], (2, 4, 4, 3))
    tint = np.zeros_like(hr)
    tint[..., 0] = 0.1
    assert float(losses.lowfreq_loss(hr, hr + 0.2 * texture)) == pytest.approx(0.0, abs=1e-10)
    assert float(losses.lowfreq_loss(hr, hr + tint)) == pytest.approx(0.01 / 3, rel=1e-4)


def test_colour_loss_charges_a_crop_wide_tint_linearly_and_not_texture_or_local_error():
    hr = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    texture = np.tile(np.array([[1, -1], [-1, 1]], "float32")[None, ..., None], (2, 8, 8, 3))
    local = np.zeros_like(hr)
    local[:, :8] = 0.3
    local[:, 8:] = -0.3  # half the crop brighter, half darker: no crop-wide drift
    tint = np.zeros_like(hr)
    tint[..., 2] = 0.004  # half a level of blue, in [-1, 1] units
    assert float(losses.colour_loss(hr, hr + 0.2 * texture + local)) == pytest.approx(0.0, abs=1e-7)
    assert float(losses.colour_loss(hr, hr + tint)) == pytest.approx(0.004 / 3, rel=1e-3)
    assert float(losses.colour_loss(hr, hr - 2 * tint)) == pytest.approx(0.008 / 3, rel=1e-3)  # linear, either sign
    assert float(losses.lowfreq_loss(hr, hr + tint)) < 1e-5  # where the block loss hardly sees it


def test_overshoot_loss_charges_a_halo_and_not_a_soft_edge():
    hr = np.full((1, 16, 16, 3), -0.5, "float32")
    hr[:, :, 8:] = 0.5
    soft, halo = hr.copy(), hr.copy()
    soft[:, :, 7], soft[:, :, 8] = -0.2, 0.2
    halo[:, :, 9] = 0.9
    assert float(losses.overshoot_loss(hr, soft)) == 0.0 and float(losses.overshoot_loss(hr, hr)) == 0.0
    assert float(losses.overshoot_loss(hr, halo)) == pytest.approx(0.16 / 16, rel=1e-4)  # one column of 16 over by 0.4


@pytest.mark.parametrize("term, loss", [("lattice", losses.lattice_loss), ("lowfreq", losses.lowfreq_loss),
                                        ("colour", losses.colour_loss), ("pixel", losses.pixel_loss("mse")),
                                        ("overshoot", losses.overshoot_loss)])
def test_gan_step_adds_the_weighted_extra_loss(term, loss):
    trainer = tiny_trainer("gan", hr_size=32, **{f"{term}_weight": 10.0})
    lr, hr = batch(hr=32)
    hr = hr * 0.01 - 0.9  # a nearly flat photo, so that even an untrained generator leaves its local range
    sr = trainer.generator(lr, training=False)  # what the step computes before updating (BatchNorm in inference mode)
    expected = 10.0 * float(loss(hr, sr))
    step = trainer.train_step(lr, hr)
    extra = step["g_loss"] - step["content_loss"] - trainer.config.adv_weight * step["adv_loss"]
    assert expected > 0 and extra == pytest.approx(expected, rel=1e-3)


def test_discriminator_warmup_step_leaves_the_generator_untouched():
    trainer = tiny_trainer("gan")
    g_before, d_before = snapshot(trainer.generator), snapshot(trainer.discriminator, True)
    assert set(trainer.train_step(*batch(), generator=False)) == {"d_loss"}
    assert not any(changed(g_before, trainer.generator)) and all(changed(d_before, trainer.discriminator, True))


def test_generator_step_keeps_discriminator_and_vgg_frozen():
    trainer = tiny_trainer("gan", content_loss="vgg22", vgg_weights=losses.RANDOM)
    d_before, vgg_before = snapshot(trainer.discriminator, True), snapshot(trainer.extractor)
    g_before = snapshot(trainer.generator, True)
    trainer.generator_update(*batch())
    assert not any(changed(d_before, trainer.discriminator, True))
    assert not any(changed(vgg_before, trainer.extractor))
    assert trainer.extractor.trainable_weights == []
    assert any(changed(g_before, trainer.generator, True))


def test_vgg54_content_loss_is_scaled_feature_mse():
    extractor = losses.build_feature_extractor("vgg54", None)
    loss = losses.content_loss_fn("vgg54", extractor)
    hr = np.random.rand(1, 32, 32, 3).astype("float32") * 2 - 1
    assert float(loss(hr, hr)) == 0.0
    expected = np.mean((np.asarray(extractor(hr)) - np.asarray(extractor(-hr))) ** 2) / 12.75 ** 2
    assert float(loss(hr, -hr)) == pytest.approx(expected, rel=1e-4)


def test_random_vgg_is_fixed_and_its_loss_is_relative_to_the_feature_rms():
    from tests.conftest import photo_array

    hr = photo_array(48, 48)[None].astype("float32") / 127.5 - 1
    first, second = (losses.build_feature_extractor("vgg54", losses.RANDOM) for _ in range(2))
    assert np.array_equal(np.asarray(first(hr)), np.asarray(second(hr)))  # same weights on every build (resume)
    scale = losses.feature_scale("vgg54", losses.RANDOM)
    assert scale != losses.VGG_SCALE and losses.feature_scale("vgg54", "imagenet") == losses.VGG_SCALE
    assert losses.feature_scale("mse", losses.RANDOM) == losses.VGG_SCALE  # --content-loss mse ignores it
    loss = losses.content_loss_fn("vgg54", first, scale)
    expected = scale * np.mean((np.asarray(first(hr)) - np.asarray(first(-hr))) ** 2)
    assert float(loss(hr, -hr)) == pytest.approx(expected, rel=1e-4)
    assert 0.05 < scale * np.mean(np.asarray(first(hr)) ** 2) < 5  # about RMS-sized (the paper scale: ~22)
    assert float(loss(hr, hr)) == 0.0


def test_vgg_weights_file_in_the_keras_applications_layout_is_loaded(tmp_path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    stand_in = tmp_path / losses.VGG_FILE  # the name and layout of the file keras.applications downloads
    with h5py.File(stand_in, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, vgg)
    extractor = losses.build_feature_extractor("vgg54", str(stand_in))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    expected = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)(losses.VggPreprocess()(x))
    np.testing.assert_allclose(np.asarray(extractor(x)), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_missing_vgg_weights_name_both_remedies(tmp_path):
    from srgan_cli.errors import SrganError

    with pytest.raises(SrganError) as err:
        losses.build_feature_extractor("vgg54", str(tmp_path / "missing.h5"))
    message = str(err.value)
    assert "--vgg-weights" in message and "internet" in message and "random" in message and "\n" not in message


@pytest.mark.parametrize("activation", ["prelu", "relu"])
def test_phase_tail_variant_computes_the_same_function(activation):
    from srgan_cli.training.archs.srresnet import phase_tail_weights

    g = build_generator(blocks=2, channels=8, activation=activation)
    rng = np.random.default_rng(0)
    g.set_weights([np.abs(w) + 0.5 if "variance" in v.path else w + rng.normal(0, 0.05, w.shape).astype("float32")
                   for v, w in zip(g.weights, g.get_weights(), strict=False)])
    fast = build_generator(blocks=2, channels=8, fast=True, activation=activation)
    fast.set_weights(phase_tail_weights(g.get_weights()))
    lr = rng.random((2, 13, 17, 3), dtype=np.float32)
    expected = np.asarray(g(lr))
    assert expected.std() > 0.05
    np.testing.assert_allclose(np.asarray(fast(lr)), expected, atol=1e-5)
    assert [c.filters for c in layers_of(fast, keras.layers.Conv2D)][-1] == 12


def test_relu_body_keeps_only_the_heads_prelu_and_refuses_other_activations():
    relu = build_generator(blocks=2, channels=8, activation="relu")
    assert len(layers_of(relu, keras.layers.PReLU)) == 1  # the head's
    assert len(layers_of(relu, keras.layers.ReLU)) == 2 + 2  # one per block, one per upsampler
    assert len(layers_of(build_generator(blocks=2, channels=8), keras.layers.PReLU)) == 1 + 2 + 2
    with pytest.raises(ValueError, match="activation 'gelu'"):
        build_generator(blocks=1, channels=8, activation="gelu")
