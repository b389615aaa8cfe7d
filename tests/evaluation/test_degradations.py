"""Tests of the Real-ESRGAN-style degradations: determinism, drawn ranges, kernels, filtering, noise, JPEG, specs."""

import io
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation import degradations as deg


def smooth_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a gentle texture and a little noise, uint8 H x W x 3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = [60 + 120 * xx / width + 20 * np.sin(yy / 9 + c) * np.cos(xx / 13 - c) for c in range(3)]
    image = np.stack(base, axis=2) + 15 * yy[:, :, None] / height + rng.normal(0, 2, (height, width, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_json(path, data) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


# ----------------------------------------------------------------------------------------------- determinism


def test_degrade_crop_is_deterministic_with_exact_shape():
    hr = smooth_photo(64, 48)
    params = deg.DegradationParams()
    first = deg.degrade_crop(hr, 7, 3, params)
    assert first.shape == (16, 12, 3) and first.dtype == np.uint8
    assert first.tobytes() == deg.degrade_crop(hr, 7, 3, params).tobytes()
    assert first.tobytes() != deg.degrade_crop(hr, 7, 4, params).tobytes()
    assert first.tobytes() != deg.degrade_crop(hr, 8, 3, params).tobytes()


def test_every_random_branch_gives_the_exact_lr_shape():
    hr = smooth_photo(32, 32, seed=1)
    params = deg.DegradationParams()
    shapes = {deg.degrade_crop(hr, 0, index, params).shape for index in range(40)}
    assert shapes == {(8, 8, 3)}


def test_draw_then_apply_equals_degrade_crop():
    hr = smooth_photo(64, 64, seed=2)
    params = deg.DegradationParams()
    plan = deg.draw_plan(np.random.default_rng((5, 9, 0x5EED)), params, hr.shape)
    np.testing.assert_array_equal(deg.apply_plan(hr, plan), deg.degrade_crop(hr, 5, 9, params))


def test_hr_size_not_a_multiple_of_the_scale_is_refused():
    with pytest.raises(SrganError, match="multiple of the scale 4"):
        deg.degrade_crop(smooth_photo(30, 32), 0, 0, deg.DegradationParams())


# ----------------------------------------------------------------------------------------------- drawn ranges


def inside(value: float, bounds) -> bool:
    return bounds[0] - 1e-12 <= value <= bounds[1] + 1e-12


def check_blur(step: deg.Blur, rp: deg.RoundParams) -> None:
    size = step.kernel.shape[0]
    assert step.kernel.shape == (size, size) and size % 2 == 1 and size in rp.kernel_sizes
    assert abs(step.kernel.sum() - 1) < 1e-6
    if step.kind == "sinc":
        assert inside(step.cutoff, (math.pi / 3, math.pi) if size < 13 else (math.pi / 5, math.pi))
        return
    assert step.kind in rp.kernel_list
    assert inside(step.sigma_x, rp.blur_sigma) and inside(step.sigma_y, rp.blur_sigma)
    assert inside(step.theta, (-math.pi, math.pi))
    if step.kind.endswith("_iso") or step.kind == "iso":
        assert step.sigma_x == step.sigma_y and step.theta == 0
    if step.kind.startswith("generalized"):
        assert inside(step.beta, rp.betag_range)
    if step.kind.startswith("plateau"):
        assert inside(step.beta, rp.betap_range)


def check_resize(step: deg.Resize, rp: deg.RoundParams, base: tuple[int, int]) -> None:
    assert step.mode in ("area", "bilinear", "bicubic")
    assert inside(step.factor, rp.resize_range)
    assert step.size == (max(8, int(base[0] * step.factor)), max(8, int(base[1] * step.factor)))


def check_noise(step: deg.Noise, rp: deg.RoundParams) -> None:
    assert step.kind in ("gaussian", "poisson") and isinstance(step.gray, bool)
    assert inside(step.amount, rp.noise_range if step.kind == "gaussian" else rp.poisson_scale_range)
    assert isinstance(step.seed, int) and step.seed >= 0


def check_plan(plan: deg.DegradationPlan, params: deg.DegradationParams, hr: tuple[int, int]) -> dict:
    """Assert every drawn value lies in its configured range; return what was seen, to check the draws vary."""
    lr = (hr[0] // 4, hr[1] // 4)
    seen: dict = {"kinds": set(), "modes": set(), "noise": set(), "stages": set(), "orders": set()}
    current = hr
    for step in plan.steps:
        seen["stages"].add(step.stage)
        rp = params.second if step.stage == "second" else params.first
        if isinstance(step, deg.Blur):
            check_blur(step, rp)
            seen["kinds"].add(step.kind)
        elif isinstance(step, deg.Resize) and step.stage != "final":
            check_resize(step, rp, current if step.stage == "first" else lr)
            current = step.size
            seen["modes"].add(step.mode)
        elif isinstance(step, deg.Resize):
            assert step.size == lr and step.mode in ("area", "bilinear", "bicubic")
        elif isinstance(step, deg.Noise):
            check_noise(step, rp)
            seen["noise"].add((step.kind, step.gray))
        elif isinstance(step, deg.Jpeg):
            bounds = params.second.jpeg_range if step.stage == "final" else rp.jpeg_range
            assert isinstance(step.quality, int) and inside(step.quality, bounds)
        else:
            assert isinstance(step, deg.Sinc) and inside(step.cutoff, (math.pi / 3, math.pi))
            assert step.kernel.shape[0] in params.first.kernel_sizes and abs(step.kernel.sum() - 1) < 1e-6
    seen["orders"].add(tuple(type(step).__name__ for step in plan.steps if step.stage == "final"))
    return seen


def draw_many(params: deg.DegradationParams, hr: tuple[int, int], count: int = 300) -> dict:
    merged: dict = {}
    for index in range(count):
        plan = deg.draw_plan(np.random.default_rng((1, index, 0x5EED)), params, (*hr, 3))
        assert plan.lr_size == (hr[0] // 4, hr[1] // 4)
        for key, values in check_plan(plan, params, hr).items():
            merged.setdefault(key, set()).update(values)
    return merged


def test_default_draws_stay_in_range_and_cover_every_choice():
    seen = draw_many(deg.DegradationParams(), (64, 48))
    assert seen["kinds"] == set(deg.KERNEL_KINDS) | {"sinc"}
    assert seen["modes"] == {"area", "bilinear", "bicubic"}
    assert seen["noise"] == {("gaussian", False), ("gaussian", True), ("poisson", False), ("poisson", True)}
    assert seen["stages"] == {"first", "second", "final"}
    assert len(seen["orders"]) == 4  # [resize, sinc?, jpeg] and [jpeg, resize, sinc?]


def test_overridden_draws_stay_in_the_overridden_ranges(tmp_path):
    override = {
        "second_order_prob": 0.5,
        "final_sinc_prob": 0.0,
        "first": {"blur_sigma": [0.5, 1.0], "kernel_sizes": [9, 15], "betag_range": [2, 3], "jpeg_range": [60, 70]},
        "second": {"noise_range": [1, 5], "poisson_scale_range": [0.1, 0.2], "resize_range": [0.5, 1.0]},
    }
    params = deg.load_params(write_json(tmp_path / "deg.json", override))
    seen = draw_many(params, (64, 64))
    orders = seen["orders"]
    assert orders == {("Resize", "Jpeg"), ("Jpeg", "Resize")}  # never a final sinc
    plans = [deg.draw_plan(np.random.default_rng(i), params, (64, 64, 3)) for i in range(100)]
    with_second = sum(any(step.stage == "second" for step in plan.steps) for plan in plans)
    assert 25 <= with_second <= 75


def test_clean_prob_one_is_exactly_pillow_bicubic():
    hr = smooth_photo(64, 48, seed=3)
    expected = np.asarray(Image.fromarray(hr).resize((12, 16), Image.BICUBIC))
    params = replace(deg.DegradationParams(), clean_prob=1.0)
    for index in range(3):
        np.testing.assert_array_equal(deg.degrade_crop(hr, 0, index, params), expected)


# ----------------------------------------------------------------------------------------------- image operations


def test_jpeg_produces_8x8_blocking():
    image = smooth_photo(96, 96, seed=4).astype(np.float32)

    def boundary_ratio(picture: np.ndarray) -> float:
        steps = np.abs(np.diff(picture, axis=1)).mean(axis=(0, 2))  # steps[j]: between columns j and j + 1
        at_block_edge = (np.arange(steps.size) + 1) % 8 == 0
        return float(steps[at_block_edge].mean() / steps[~at_block_edge].mean())

    assert boundary_ratio(image) < 1.15
    assert boundary_ratio(deg.jpeg_compress(image, 10)) > 2.5


def test_jpeg_round_trip_equals_pillow_save_then_open():
    image = smooth_photo(40, 24, seed=6)
    for pixels in (image, image[:, :, :1]):
        buffer = io.BytesIO()
        Image.fromarray(pixels.squeeze(2) if pixels.shape[2] == 1 else pixels).save(buffer, format="JPEG", quality=35)
        expected = np.asarray(Image.open(buffer)).reshape(pixels.shape)
        np.testing.assert_array_equal(deg.jpeg_compress(pixels.astype(np.float32), 35), expected)


def test_gaussian_noise_has_the_requested_sigma():
    flat = np.full((96, 96, 3), 128, np.float32)
    colour = deg.add_gaussian_noise(flat, 10.0, False, np.random.default_rng(0)) - flat
    gray = deg.add_gaussian_noise(flat, 10.0, True, np.random.default_rng(0)) - flat
    assert colour.std() == pytest.approx(10.0, rel=0.03) and gray.std() == pytest.approx(10.0, rel=0.03)
    assert np.array_equal(gray[:, :, 0], gray[:, :, 1]) and np.array_equal(gray[:, :, 1], gray[:, :, 2])
    assert not np.array_equal(colour[:, :, 0], colour[:, :, 1])


def test_poisson_noise_follows_the_8bit_shot_noise_model():
    ramp = np.tile(np.repeat(np.arange(256, dtype=np.float32), 8)[None, :, None], (32, 1, 3))  # all 256 levels
    noisy = deg.add_poisson_noise(ramp, 2.0, False, np.random.default_rng(0))
    at_100 = (noisy - ramp)[ramp == 100]
    # vals = 256: std = sqrt(100 * 256 / 255) * 255 / 256 * scale, on 0..255.
    assert at_100.std() == pytest.approx(2.0 * math.sqrt(100 * 256 / 255) * 255 / 256, rel=0.1)
    assert abs(at_100.mean()) < 1.5
    gray = deg.add_poisson_noise(ramp, 1.0, True, np.random.default_rng(0)) - ramp
    assert np.array_equal(gray[:, :, 0], gray[:, :, 2]) and gray.std() > 3


@pytest.mark.parametrize(
    "kernel",
    [
        deg.gaussian_kernel(7, 1.5, 1.5, 0.0),
        deg.gaussian_kernel(21, 3.0, 0.4, 1.0),
        deg.generalized_gaussian_kernel(13, 2.0, 1.0, -0.5, 0.5),
        deg.generalized_gaussian_kernel(9, 1.0, 1.0, 0.0, 4.0),
        deg.plateau_kernel(15, 1.2, 2.5, 2.0, 2.0),
        deg.sinc_kernel(7, math.pi / 3),
        deg.sinc_kernel(21, math.pi / 5),
    ],
)
def test_kernels_are_odd_and_sum_to_one(kernel):
    size = kernel.shape[0]
    assert kernel.shape == (size, size) and size % 2 == 1 and kernel.dtype == np.float64
    assert abs(kernel.sum() - 1) < 1e-6
    assert kernel[size // 2, size // 2] == kernel.max()


def second_moments(kernel: np.ndarray) -> tuple[float, float, float]:
    half = kernel.shape[0] // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    return float((kernel * xx * xx).sum()), float((kernel * yy * yy).sum()), float((kernel * xx * yy).sum())


def test_gaussian_rotation():
    var_x, var_y, cov = second_moments(deg.gaussian_kernel(21, 3.0, 1.0, 0.0))
    assert var_x > 5 * var_y and abs(cov) < 1e-9  # theta = 0: wider along x (columns)
    var_x, var_y, _ = second_moments(deg.gaussian_kernel(21, 3.0, 1.0, math.pi / 2))
    assert var_y > 5 * var_x
    var_x, var_y, cov = second_moments(deg.gaussian_kernel(21, 3.0, 1.0, math.pi / 4))
    assert var_x == pytest.approx(var_y, rel=1e-6) and cov > 1.0
    iso = deg.gaussian_kernel(21, 2.0, 2.0, 0.7)
    np.testing.assert_allclose(iso, iso.T, atol=1e-15)


def test_bessel_and_sinc_kernel_values():
    values = deg.bessel_j1(np.array([1.0, 3.831705970207512, 10.0, 30.0]))
    expected = [0.44005058574493355, 0.0, 0.043472746168861436, -0.11875106261662294]
    np.testing.assert_allclose(values, expected, atol=1e-12)
    cutoff = 2.0
    kernel = deg.sinc_kernel(11, cutoff)
    # Neighbour over centre: (cutoff J1(cutoff) / (2 pi)) / (cutoff^2 / (4 pi)) = 2 J1(cutoff) / cutoff.
    assert kernel[5, 6] / kernel[5, 5] == pytest.approx(2 * 0.5767248077568734 / cutoff, rel=1e-9)


def direct_correlation(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    pad = kernel.shape[0] // 2
    padded = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.zeros(image.shape)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out


def test_filter2d_matches_identity_and_direct_filtering():
    image = np.random.default_rng(0).uniform(0, 255, (13, 17, 3)).astype(np.float32)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    np.testing.assert_allclose(deg.filter2d(image, delta), image, atol=2e-3)
    box = np.full((3, 3), 1 / 9)
    filtered = deg.filter2d(image, box)
    assert filtered.shape == image.shape and filtered.dtype == np.float32
    np.testing.assert_allclose(filtered, direct_correlation(image, box), atol=2e-3)
    lopsided = np.arange(25, dtype=np.float64).reshape(5, 5) / 300
    np.testing.assert_allclose(deg.filter2d(image, lopsided), direct_correlation(image, lopsided), atol=5e-3)
    tiny = image[:3, :4]  # the padding (3) is wider than the image: reflected again, as numpy's 'reflect'
    wide = deg.gaussian_kernel(7, 1.5, 0.8, 0.4)
    np.testing.assert_allclose(deg.filter2d(tiny, wide), direct_correlation(tiny, wide), atol=2e-3)


def test_resize_modes_give_the_requested_size():
    image = smooth_photo(40, 24).astype(np.float32)
    for mode in ("area", "bilinear", "bicubic"):
        resized = deg.resize(image, (10, 31), mode)
        assert resized.shape == (10, 31, 3) and resized.dtype == np.float32
        assert abs(resized.mean() - image.mean()) < 3


# ----------------------------------------------------------------------------------------------- parameters


def test_load_params_defaults_and_nested_override(tmp_path):
    assert deg.load_params(None) == deg.DegradationParams()
    params = deg.load_params(write_json(tmp_path / "p.json", {"clean_prob": 0.2, "second": {"noise_range": [1, 10]}}))
    assert params.clean_prob == 0.2
    assert params.second.noise_range == (1.0, 10.0)
    assert params.second.blur_prob == 0.8 and params.second.blur_sigma == (0.2, 1.5)  # other round-2 defaults kept
    assert params.first == deg.RoundParams() and params.first.noise_range == (1.0, 30.0)
    data = json.loads(json.dumps(deg.params_to_dict(params)))
    assert deg.params_from_dict(data) == params
    assert data["second"]["noise_range"] == [1.0, 10.0] and data["scale"] == 4


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"second": {"nois_range": [1, 2]}}, "second.nois_range"),
        ({"clean_prob": 1.5}, "clean_prob"),
        ({"first": {"gray_noise_prob": -0.1}}, "first.gray_noise_prob"),
        ({"first": {"blur_sigma": [3, 1]}}, "first.blur_sigma"),
        ({"second": {"resize_prob": [0.5, 0.4, 0.3]}}, "second.resize_prob"),
        ({"first": {"kernel_sizes": [7, 8]}}, "first.kernel_sizes"),
        ({"second": {"jpeg_range": [0, 95]}}, "second.jpeg_range"),
        ({"first": {"kernel_list": ["iso"]}}, "first.kernel_prob"),
        ({"scale": "4"}, "scale"),
        ({"first": 3}, "first"),
    ],
)
def test_load_params_rejects_bad_values_naming_file_and_key(tmp_path, override, key):
    path = write_json(tmp_path / "bad.json", override)
    with pytest.raises(SrganError) as caught:
        deg.load_params(path)
    message = str(caught.value)
    assert f"'{key}'" in message and path in message and "\n" not in message


def test_load_params_rejects_unreadable_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{clean_prob: 1}", encoding="utf-8")
    with pytest.raises(SrganError, match="not valid JSON"):
        deg.load_params(broken)
    with pytest.raises(SrganError, match="cannot read"):
        deg.load_params(tmp_path / "missing.json")


# ----------------------------------------------------------------------------------------------- evaluation spec


def test_parse_spec_examples():
    (jpeg,) = deg.parse_spec("jpeg:75")
    assert isinstance(jpeg, deg.Jpeg) and jpeg.quality == 75
    noise, jpeg = deg.parse_spec("noise:6,jpeg:75")
    assert (noise.kind, noise.amount, noise.gray, jpeg.quality) == ("gaussian", 6.0, False, 75)
    blur, jpeg = deg.parse_spec("blur:1.2, jpeg:60")
    assert isinstance(blur, deg.Blur) and blur.kernel.shape == (9, 9) and blur.sigma_x == 1.2 and jpeg.quality == 60
    gray, poisson = deg.parse_spec("graynoise:3,poisson:0.5")
    assert gray.gray and gray.kind == "gaussian" and (poisson.kind, poisson.amount) == ("poisson", 0.5)
    assert "jpeg" in deg.SPEC_HELP and "\n" not in deg.SPEC_HELP


@pytest.mark.parametrize(
    ("spec", "bad_part"),
    [
        ("jpeg:0", "jpeg:0"),
        ("jpeg:abc", "jpeg:abc"),
        ("noise:-1", "noise:-1"),
        ("foo:1", "foo:1"),
        ("jpeg", "jpeg"),
        ("jpeg:101", "jpeg:101"),
        ("noise:6,blur:nan", "blur:nan"),
        ("", ""),
        ("jpeg:75,", "jpeg:75,"),
    ],
)
def test_parse_spec_rejects_bad_specs(spec, bad_part):
    with pytest.raises(UsageError) as caught:
        deg.parse_spec(spec)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert repr(bad_part) in message and deg.SPEC_HELP in message


def test_apply_spec_is_deterministic_and_noise_has_its_sigma():
    lr = np.full((64, 64, 3), 120, np.uint8)
    lr[:, 32:] = 140
    steps = deg.parse_spec("noise:6")
    out = deg.apply_spec(lr, steps, seed=11)
    assert out.dtype == np.uint8 and out.shape == lr.shape
    np.testing.assert_array_equal(out, deg.apply_spec(lr, steps, seed=11))
    assert not np.array_equal(out, deg.apply_spec(lr, steps, seed=12))
    rms = math.sqrt(np.mean((out.astype(np.float64) - lr) ** 2))
    assert rms == pytest.approx(6.0, rel=0.06)


def test_apply_spec_steps_run_in_order_and_keep_the_shape():
    lr = smooth_photo(48, 40, seed=5)
    blurred = deg.apply_spec(lr, deg.parse_spec("blur:1.5"), seed=0)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(lr.astype(float), axis=1)).mean()
    a = deg.apply_spec(lr, deg.parse_spec("jpeg:20,blur:1.0"), seed=0)
    b = deg.apply_spec(lr, deg.parse_spec("blur:1.0,jpeg:20"), seed=0)
    assert a.shape == b.shape == lr.shape and not np.array_equal(a, b)
    gray = deg.apply_spec(lr[:, :, 0], deg.parse_spec("poisson:1,jpeg:50"), seed=0)
    assert gray.shape == (48, 40) and gray.dtype == np.uint8


def test_the_first_order_lr_damage_branch_draws_within_its_ranges_and_starts_from_the_protocols_lr():
    params = deg.params_from_dict({"lr_damage_prob": 1.0, "lr_damage": {
        "blur_prob": 0.5, "blur_sigma": [0.5, 1.0], "noise_prob": 0.5, "noise_range": [2, 4], "jpeg_range": [40, 50]}})
    seen = set()
    for index in range(200):
        plan = deg.draw_plan(np.random.default_rng((1, index)), params, (48, 48, 3))
        assert isinstance(plan.steps[0], deg.CleanBicubic)
        for step in plan.steps[1:]:
            seen.add(type(step).__name__)
            if isinstance(step, deg.Blur):
                assert 0.5 <= step.sigma_x <= 1.0 and step.kind == "iso"
            elif isinstance(step, deg.Noise):
                assert 2 <= step.amount <= 4 and step.kind == "gaussian"
            else:
                assert isinstance(step, deg.Jpeg) and 40 <= step.quality <= 50
    assert seen == {"Blur", "Noise", "Jpeg"}
    nothing = deg.params_from_dict({"lr_damage_prob": 1.0, "lr_damage": {
        "blur_prob": 0, "noise_prob": 0, "jpeg_prob": 0}})
    hr = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    clean = np.asarray(Image.fromarray(hr).resize((12, 12), Image.Resampling.BICUBIC))
    assert np.array_equal(deg.degrade_crop(hr, 0, 0, nothing), clean)
