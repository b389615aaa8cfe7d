"""The adversarial-training options: U-Net discriminator, RaGAN, LDL, a distillation teacher, each from the CLI."""

import json

import numpy as np
import pytest

from tests.tiny_models import make_sr_model
from tests.training.helpers import TINY, train

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from srgan_cli.errors import SrganError, UsageError  # noqa: E402
from srgan_cli.training import ldl, losses  # noqa: E402
from srgan_cli.training.averaging import WeightAverage  # noqa: E402
from srgan_cli.training.config import TrainConfig  # noqa: E402
from srgan_cli.training.discriminator import SpectralConv2D, build_unet_discriminator  # noqa: E402
from srgan_cli.training.teacher import Teacher  # noqa: E402
from srgan_cli.training.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.tf
GAN32 = [*TINY, "--hr-size", "32", "--phase", "gan", "--content-loss", "mse", "-q"]  # the later --hr-size wins


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def bce(label, logits):
    p = sigmoid(logits)
    return float(np.mean(-(label * np.log(p) + (1 - label) * np.log(1 - p))))


def tiny_trainer(**options):
    config = TrainConfig(**{"phase": "gan", "arch_params": {"blocks": 1, "channels": 8}, "hr_size": 32,
                            "content_loss": "mse", "lr": 1e-3, **options})
    return Trainer(config, tf.distribute.get_strategy())


def batch(n=2, hr=32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, hr // 4, hr // 4, 3), dtype=np.float32),
            rng.random((n, hr, hr, 3), dtype=np.float32) * 2 - 1)


def trainable(model):
    return [np.array(w) for w in model.trainable_weights]


def all_changed(before, model):
    return all(not np.array_equal(a, b) for a, b in zip(before, trainable(model), strict=True))


def test_unet_discriminator_gives_per_pixel_logits_and_is_spectrally_normalised():
    d = build_unet_discriminator(8)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 40, 3)).astype("float32")
    assert d(x).shape == (2, 32, 40, 1)
    convs = [layer for layer in d.layers if isinstance(layer, (keras.layers.Conv2D, SpectralConv2D))]
    assert [isinstance(c, SpectralConv2D) for c in convs] == [False] + [True] * 8 + [False]
    assert [c.strides for c in convs[1:5]] == [2, 2, 2, 1] and convs[-1].filters == 1
    assert len([layer for layer in d.layers if isinstance(layer, keras.layers.UpSampling2D)]) == 3
    d(x, training=True)
    for conv in convs[1:-1]:
        for _ in range(200):  # the power iteration (one step per training call) converges on the top singular value
            conv.normalized_kernel(training=True)
        kernel = np.asarray(conv.normalized_kernel()).reshape(-1, conv.filters)
        assert np.linalg.svd(kernel, compute_uv=False)[0] == pytest.approx(1.0, rel=2e-2)
    conv = convs[2]
    before = np.asarray(d(x))
    conv.kernel.assign(np.asarray(conv.kernel) * 10.0)  # a spectrally normalised conv ignores the kernel's scale
    np.testing.assert_allclose(np.asarray(d(x)), before, rtol=1e-4, atol=1e-5)


def test_unet_discriminator_saves_and_loads_in_safe_mode(tmp_path):
    d = build_unet_discriminator(8)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 24, 3)).astype("float32")
    d(x, training=True)
    d.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(d(x)), atol=1e-6)


def test_gan_losses_take_per_crop_and_per_pixel_logits():
    rng = np.random.default_rng(2)
    for shape in ((4, 1), (2, 8, 8, 1)):
        real, fake = rng.normal(size=shape).astype("float32"), rng.normal(size=shape).astype("float32")
        d_loss, g_loss = losses.gan_losses("bce")
        assert float(d_loss(real, fake)) == pytest.approx(bce(1, real) + bce(0, fake), rel=1e-5)
        assert float(g_loss(real, fake)) == pytest.approx(bce(1, fake), rel=1e-5)


def test_ragan_losses_equal_their_formula_on_fixed_logits():
    real = np.array([[2.0], [0.5], [-1.0]], "float32")
    fake = np.array([[-0.5], [1.0], [-2.0]], "float32")
    d_loss, g_loss = losses.gan_losses("ragan")
    real_rel, fake_rel = real - fake.mean(), fake - real.mean()
    assert float(d_loss(real, fake)) == pytest.approx(bce(1, real_rel) + bce(0, fake_rel), rel=1e-5)
    assert float(g_loss(real, fake)) == pytest.approx(bce(0, real_rel) + bce(1, fake_rel), rel=1e-5)
    assert float(g_loss(real, fake + 3.0)) < float(g_loss(real, fake))  # fakes judged more real: G's loss falls
    with pytest.raises(SrganError):
        losses.gan_losses("wgan")


def test_ldl_map_is_zero_where_sr_equals_hr_and_large_on_an_artifact():
    rng = np.random.default_rng(3)
    hr = rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    sr = hr.copy()
    sr[:, 4:10, 4:10] += rng.normal(0, 0.3, (1, 6, 6, 3)).astype("float32")  # a noisy artifact, top left
    sr[:, 20:, 20:] += 0.05  # a smooth offset, bottom right: a residual without local variance
    weight = np.asarray(ldl.artifact_map(hr, sr))[0, ..., 0]
    assert weight.shape == (32, 32) and weight.min() >= 0
    assert np.all(weight[13:17, :] == 0) and np.all(weight[:, 13:17] == 0)  # over 3 px from any difference
    assert weight[4:10, 4:10].mean() > 50 * max(weight[22:30, 22:30].mean(), 1e-9)
    assert float(np.asarray(ldl.artifact_map(hr, hr)).max()) == 0.0
    assert float(ldl.ldl_loss(hr, hr)) == 0.0 and float(ldl.ldl_loss(hr, sr)) > 0
    # the moving average's output (the stable model): where it is further from HR than SR, no artifact is charged
    worse = hr + 2 * (sr - hr) + np.where(sr >= hr, 0.5, -0.5)  # further from HR than SR at every pixel
    worse = np.asarray(ldl.artifact_map(hr, sr, reference=worse))
    assert worse.max() == 0.0
    np.testing.assert_allclose(np.asarray(ldl.artifact_map(hr, sr, reference=hr)), weight[None, ..., None])


def test_config_rules_of_the_new_options():
    TrainConfig(discriminator="unet", hr_size=32, teacher="t.onnx", teacher_weight=1.0).check()
    for bad, option in (({"discriminator": "unet", "hr_size": 36}, "--hr-size"),
                        ({"discriminator": "patch"}, "--discriminator"), ({"gan_loss": "wgan"}, "--gan-loss"),
                        ({"ldl_weight": -1.0}, "--ldl-weight"), ({"teacher_weight": 1.0}, "--teacher-weight"),
                        ({"teacher": "t.onnx"}, "--teacher")):
        with pytest.raises(UsageError, match=option):
            TrainConfig(**bad).check()


@pytest.mark.parametrize("options", [{"discriminator": "unet"}, {"gan_loss": "ragan"},
                                     {"ldl_weight": 10.0, "ema": 0.9}, {"ldl_weight": 10.0}],
                         ids=["unet", "ragan", "ldl-ema", "ldl"])
def test_gan_step_with_each_option_updates_both_networks(options):
    trainer = tiny_trainer(**options)
    if options.get("ema"):
        trainer.average = WeightAverage(trainer.generator, options["ema"])
    g_before, d_before = trainable(trainer.generator), trainable(trainer.discriminator)
    step = trainer.train_step(*batch())
    assert all(np.isfinite(list(step.values())))
    assert all_changed(g_before, trainer.generator)
    d_changed = [not np.array_equal(a, b) for a, b in zip(d_before, trainable(trainer.discriminator), strict=True)]
    # a relativistic loss is blind to a shift of every logit: the last layer's bias gets no gradient (but round-off)
    assert all(d_changed[:-1]) and (d_changed[-1] or options.get("gan_loss") == "ragan")
    if "ldl_weight" in options:
        assert step["ldl_term"] > 0
        extra = step["g_loss"] - step["content_loss"] - trainer.config.adv_weight * step["adv_loss"]
        assert extra == pytest.approx(step["ldl_term"], rel=1e-3)


def test_ldl_term_uses_the_weight_average_as_reference():
    trainer = tiny_trainer(ldl_weight=10.0, ema=0.9)
    lr, hr = batch()
    trainer.average = WeightAverage(trainer.generator, 0.9)
    trainer.average.values = [w + 0.5 for w in trainer.average.values]  # an average far from the generator
    sr = trainer.generator(lr, training=False)
    average = [w.copy() for w in trainer.average.values]
    term = trainer.train_step(lr, hr)["ldl_term"]
    assert all(np.array_equal(a, b) for a, b in zip(trainer.reference.get_weights(), average, strict=True))
    reference = trainer.reference(lr, training=False)  # holds the average the step compared against
    masked, own = (10.0 * float(ldl.ldl_loss(hr, sr, ref)) for ref in (reference, None))
    assert term == pytest.approx(masked, rel=1e-3) and masked != pytest.approx(own, rel=1e-2)


def test_teacher_term_pulls_the_generator_toward_the_teachers_output(tmp_path):
    path = make_sr_model(tmp_path / "teacher.onnx", metadata={"scale": "4"})
    lr, hr = batch()
    target = Teacher(path, 4)(lr)
    assert target.shape == hr.shape and target.min() >= -1 and target.max() <= 1

    def distance(generator):
        return float(np.mean(np.abs(target - np.asarray(generator(lr, training=False)))))
    after = {}
    for weight in (0.0, 100.0):
        keras.utils.set_random_seed(0)  # the same starting generator with and without the teacher
        options = {"teacher": str(path), "teacher_weight": weight} if weight else {}
        trainer = tiny_trainer(adv_weight=0.0, lr=1e-2, **options)
        start = distance(trainer.generator)
        first = trainer.train_step(lr, hr)
        if weight:
            assert first["teacher_term"] == pytest.approx(weight * start, rel=1e-3)
        for _ in range(19):
            trainer.train_step(lr, hr)
        after[weight] = distance(trainer.generator)
    assert after[100.0] < 0.85 * start and after[100.0] < 0.8 * after[0.0]  # measured: 0.42 against 0.51 and 0.57


def test_teacher_of_another_scale_or_missing_is_refused(tmp_path):
    x2 = make_sr_model(tmp_path / "x2.onnx", scale=2)
    for path, words in ((x2, "x2 model"), (tmp_path / "none.onnx", "not found")):
        with pytest.raises(SrganError, match=words) as err:
            tiny_trainer(teacher=str(path), teacher_weight=1.0)
        assert "--teacher" in str(err.value)


OPTIONS = {"unet": ["--discriminator", "unet"], "ragan": ["--gan-loss", "ragan"], "ldl": ["--ldl-weight", "1"],
           "teacher": ["--teacher-weight", "1"]}


@pytest.mark.parametrize("name", OPTIONS)
def test_two_step_gan_run_records_the_option_and_saves_loadable_models(name, photos, tmp_path):
    flags = OPTIONS[name]
    if name == "teacher":
        flags = [*flags, "--teacher", make_sr_model(tmp_path / "teacher.onnx", metadata={"scale": "4"})]
    base = ["--data", photos, "--runs", tmp_path, "--name", name, *GAN32, "--d-warmup", "1", "--ema", "0.9"]
    result = train(*base, "--steps", "2", *flags)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / name / "config.json").read_text())
    expected = {"unet": ("discriminator", "unet"), "ragan": ("gan_loss", "ragan"), "ldl": ("ldl_weight", 1.0),
                "teacher": ("teacher_weight", 1.0)}[name]
    assert config[expected[0]] == expected[1] and config["hr_size"] == 32 and config["ema"] == 0.9
    if name == "teacher":
        assert config["teacher"] == str(tmp_path / "teacher.onnx")
    header = (tmp_path / name / "log.csv").read_text().splitlines()[0]
    assert "d_loss" in header
    if name in ("ldl", "teacher"):  # the weighted term has its own column
        assert f"{name}_term" in header.split(",")
    keras.saving.load_model(tmp_path / name / "generator.keras", safe_mode=True)
    if name == "unet":  # the spectral-norm discriminator comes back from its checkpoint
        result = train(*base, "--steps", "3", "--resume")
        assert result.exit_code == 0, result.output


def test_vgg54_with_a_stand_in_imagenet_weights_file_through_the_cli(photos, tmp_path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    stand_in = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"  # the name and layout of the real file
    with h5py.File(stand_in, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, vgg)
    base = ["--data", photos, "--runs", tmp_path, "--name", "vgg", *GAN32, "--steps", "1"]
    result = train(*base, "--content-loss", "vgg54", "--vgg-weights", stand_in)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "vgg" / "config.json").read_text())
    assert config["content_loss"] == "vgg54" and config["vgg_weights"] == str(stand_in)



def test_teacher_reads_any_contract_like_srgan_upscale(tmp_path):
    plain = make_sr_model(tmp_path / "plain.onnx", metadata={"scale": "4"})
    foreign = make_sr_model(tmp_path / "foreign.onnx", layout="NCHW", value_range=(0.0, 255.0),
                            metadata={"layout": "NCHW", "value_range": "0,255"})
    lr, _ = batch()
    ours, theirs = Teacher(plain, 4)(lr), Teacher(foreign, 4)(lr)
    assert len(lr) > 1 and theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1e-5)  # the same function, fed in its own layout and range
