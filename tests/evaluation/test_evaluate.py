"""`srgan evaluate` (evaluate.py): the protocol on a tiny set, `--degrade` sections, `--niqe`, strict JSON."""

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srgan_cli.cli import app
from srgan_cli.errors import UsageError
from srgan_cli.evaluation import evaluate as protocol
from srgan_cli.evaluation.metrics import psnr_y
from srgan_cli.evaluation.niqe import niqe
from srgan_cli.upscale.inference import Upscaler
from tests.conftest import photo_array


def strict_json(path):
    """The file as JSON, refusing the non-standard Infinity/NaN that json.dumps writes by default."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def run_evaluate(*args):
    return CliRunner().invoke(app, ["evaluate", *map(str, args), "--device", "cpu"])


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo_array(50, 43, seed=i)).save(folder / f"im{i}.png")
    return folder


def test_evaluate_reports_bicubic_and_model_per_image_and_mean(model_path, tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo_array(50, 43, seed=i)).save(folder / f"im{i}.png")
    result = CliRunner().invoke(app, ["evaluate", str(folder), "--model", str(model_path), "--device", "cpu",
                                      "--json", str(tmp_path / "s.json"), "--save", str(tmp_path / "crops")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "s.json").read_text())["Tiny"]["clean"]
    assert set(report["images"]) == {"im0", "im1"} and set(report["mean"]) == {"bicubic", "tiny"}
    assert 20 < report["mean"]["bicubic"]["psnr"] < 60 and 0 < report["mean"]["tiny"]["ssim"] <= 1
    assert isinstance(report["mean"]["tiny"]["grid"], float) and report["mean"]["bicubic"]["tint"] < 1
    assert report["mean"]["bicubic"]["halo"] >= 0
    crop = Image.open(tmp_path / "crops" / "Tiny" / "im0.png")
    assert crop.size == (3 * 40, 40)  # bicubic | model | original, 48x40 HR after mod-crop


def test_evaluate_tta_scores_the_self_ensemble_beside_the_plain_model(model_path, tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    Image.fromarray(photo_array(40, 36, seed=5)).save(folder / "im.png")
    result = CliRunner().invoke(app, ["evaluate", str(folder), "--model", str(model_path), "--device", "cpu",
                                      "--tta", "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    mean = json.loads((tmp_path / "s.json").read_text())["Tiny"]["clean"]["mean"]
    assert list(mean) == ["bicubic", "tiny", "tiny+tta"]
    assert mean["tiny+tta"]["psnr"] != pytest.approx(mean["tiny"]["psnr"], abs=1e-6)


def test_evaluate_refuses_an_image_too_small_to_score_in_one_line(model_path, tmp_path):
    folder = tmp_path / "Small"
    folder.mkdir()
    Image.fromarray(photo_array(9, 10)).save(folder / "tiny.png")
    result = CliRunner().invoke(app, ["evaluate", str(folder), "--model", str(model_path), "--device", "cpu"])
    assert result.exit_code == 1 and "tiny.png" in result.output and "too small" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_evaluate_names_a_damaged_image_in_one_line(model_path, tmp_path):
    folder = tmp_path / "Broken"
    folder.mkdir()
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = CliRunner().invoke(app, ["evaluate", str(folder), "--model", str(model_path), "--device", "cpu"])
    assert result.exit_code == 1 and "bad.png" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_degrade_damages_the_lr_the_same_way_every_run_and_bicubic_sees_the_damage(model_path, folder, tmp_path):
    for run in ("a", "b"):
        result = run_evaluate(folder, "--model", model_path, "--degrade", "clean", "--degrade", "jpeg:40",
                              "--degrade", "noise:6", "--json", tmp_path / f"{run}.json")
        assert result.exit_code == 0, result.output
        assert "Tiny (2 images)" in result.output and "Tiny (2 images, LR damaged by jpeg:40)" in result.output
    first, second = strict_json(tmp_path / "a.json")["Tiny"], strict_json(tmp_path / "b.json")["Tiny"]
    assert list(first) == ["clean", "jpeg:40", "noise:6"]
    assert first == second  # the same damage on every run, noise included
    for spec in ("jpeg:40", "noise:6"):
        for method in ("bicubic", "tiny"):
            assert first[spec]["mean"][method]["psnr"] < first["clean"]["mean"][method]["psnr"], (spec, method)


def test_the_bicubic_and_model_rows_are_computed_from_the_same_damaged_lr(model_path, folder):
    upscaler = Upscaler(model_path, device="cpu")
    damage = protocol.parse_damage(["noise:8"])
    results = protocol.evaluate_folder(folder, {"tiny": upscaler}, damage=damage)["noise:8"]
    for result in results:
        hr = protocol.load_hr(folder / f"{result.name}.png", 4)
        lr = protocol.damaged_lr(hr, 4, damage["noise:8"], result.name)
        assert not np.array_equal(lr, protocol.degrade(hr, 4))
        assert np.array_equal(lr, protocol.damaged_lr(hr, 4, damage["noise:8"], result.name))
        model_sr = upscaler.upscale_array(lr.astype(np.float32) / 255.0, np.uint8)
        assert result.scores["bicubic"].psnr == psnr_y(protocol.bicubic_upscale(lr, 4), hr)
        assert result.scores["tiny"].psnr == psnr_y(model_sr, hr)
    assert results[0].scores["bicubic"].psnr != results[1].scores["bicubic"].psnr


def test_degrade_specs_are_parsed_once_each_and_bad_ones_are_usage_errors(model_path, folder):
    assert list(protocol.parse_damage([])) == ["clean"]
    assert list(protocol.parse_damage(["jpeg: 75", "clean", "jpeg:75"])) == ["jpeg:75", "clean"]
    with pytest.raises(UsageError):
        protocol.parse_damage(["jpeg:200"])
    result = run_evaluate(folder, "--model", model_path, "--degrade", "sharpen:2")
    assert result.exit_code == 2 and "sharpen" in result.output and "Traceback" not in result.output


def test_niqe_scores_every_method_and_the_originals(model_path, tmp_path):
    folder = tmp_path / "Big"
    folder.mkdir()
    hr_pixels = photo_array(208, 200, seed=3)
    Image.fromarray(hr_pixels).save(folder / "big.png")
    result = run_evaluate(folder, "--model", model_path, "--niqe", "--json", tmp_path / "n.json")
    assert result.exit_code == 0, result.output
    assert "NIQE" in result.output and "original" in result.output
    report = strict_json(tmp_path / "n.json")["Big"]["clean"]
    image, mean = report["images"]["big"], report["mean"]
    assert set(image) == {"bicubic", "tiny", "original"} and set(mean) == set(image)
    assert image["original"] == {"niqe": pytest.approx(niqe(hr_pixels, border=4))}
    for method in ("bicubic", "tiny"):
        assert math.isfinite(image[method]["niqe"]) and mean[method]["niqe"] == image[method]["niqe"]
    assert image["bicubic"]["niqe"] != image["original"]["niqe"]
    result = run_evaluate(folder, "--model", model_path, "--json", tmp_path / "plain.json")
    plain = strict_json(tmp_path / "plain.json")["Big"]["clean"]["images"]["big"]
    assert set(plain) == {"bicubic", "tiny"} and "niqe" not in plain["bicubic"]  # not computed without --niqe
    assert "NIQE" not in result.output


def test_json_is_strict_non_finite_scores_are_null(model_path, tmp_path):
    folder = tmp_path / "Flat"
    folder.mkdir()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(folder / "gray.png")  # bicubic is exact: PSNR inf
    result = run_evaluate(folder, "--model", model_path, "--niqe", "--json", tmp_path / "f.json")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "f.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    image = strict_json(tmp_path / "f.json")["Flat"]["clean"]["images"]["gray"]
    assert image["bicubic"]["psnr"] is None  # inf
    assert image["bicubic"]["niqe"] is None and image["original"]["niqe"] is None  # too small for NIQE: nan
    assert json.loads(protocol.to_json({"x": [math.inf, -math.inf, math.nan, 1.5]})) == {"x": [None, None, None, 1.5]}


def test_models_of_different_scales_are_refused(model_path, tmp_path, folder):
    from tests.tiny_models import make_sr_model

    x2 = make_sr_model(tmp_path / "x2.onnx", scale=2, metadata={"scale": 2})
    result = run_evaluate(folder, "--model", model_path, "--model", x2)
    assert result.exit_code == 2 and "different scales" in result.output and "Traceback" not in result.output


def test_an_unwritable_json_file_is_one_error_line(model_path, folder, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    result = run_evaluate(folder, "--model", model_path, "-q", "--json", tmp_path / "taken" / "s.json")
    assert result.exit_code == 1 and "cannot write" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option,where", [("--json", "folder"), ("--save", "file")])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(model_path, folder, tmp_path, monkeypatch,
                                                                    option, where):
    def never(*args, **kwargs):
        raise AssertionError("evaluated before checking where the results go")

    monkeypatch.setattr(protocol, "evaluate_folder", never)
    target = tmp_path / "taken"
    target.mkdir() if where == "folder" else target.write_text("a file")
    result = run_evaluate(folder, "--model", model_path, option, target)
    assert result.exit_code == 1 and "taken" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_two_models_with_the_same_stem_get_two_columns(model_path, folder, tmp_path):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "model.onnx").write_bytes(model_path.read_bytes())
    result = run_evaluate(folder, "--model", tmp_path / "a" / "model.onnx", "--model", tmp_path / "b" / "model.onnx",
                          "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    assert list(strict_json(tmp_path / "s.json")["Tiny"]["clean"]["mean"]) == ["bicubic", "a/model", "b/model"]


def test_an_image_too_small_to_score_is_skipped_with_a_note(model_path, folder, tmp_path):
    Image.fromarray(photo_array(9, 10)).save(folder / "tiny.png")
    result = run_evaluate(folder, "--model", model_path, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    assert "tiny.png" in result.output and "too small" in result.output and "skipped" in result.output
    assert set(strict_json(tmp_path / "s.json")["Tiny"]["clean"]["images"]) == {"im0", "im1"}


def test_an_unreadable_image_is_skipped_with_a_note_and_the_others_scored(model_path, tmp_path):
    folder = tmp_path / "Mixed"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo_array(64, 64, seed=i)).save(folder / f"im{i}.png")
    (folder / "zero.png").write_bytes(b"")
    result = run_evaluate(folder, "--model", model_path, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    note = [line for line in result.output.splitlines() if "zero.png" in line]
    assert len(note) == 1 and note[0].startswith("note: ") and note[0].endswith("not an image: skipped"), note
    assert "Mixed (2 images)" in result.output and "Traceback" not in result.output
    assert set(strict_json(tmp_path / "s.json")["Mixed"]["clean"]["images"]) == {"im0", "im1"}


def test_evaluate_folder_reports_unreadable_and_too_small_images_through_on_skip(model_path, folder):
    (folder / "zero.png").write_bytes(b"")
    Image.fromarray(photo_array(9, 10)).save(folder / "tiny.png")
    notes: list[str] = []
    results = protocol.evaluate_folder(folder, {"tiny": Upscaler(model_path, device="cpu")}, on_skip=notes.append)
    assert [r.name for r in results["clean"]] == ["im0", "im1"]
    assert sorted(note.split(": ")[0].rsplit("/", 1)[-1] for note in notes) == ["tiny.png", "zero.png"]
    assert all(note.endswith(": skipped") for note in notes)


def test_a_folder_with_no_scoreable_image_is_one_error_line_naming_one(model_path, tmp_path):
    folder = tmp_path / "Nothing"
    folder.mkdir()
    (folder / "zero.png").write_bytes(b"")
    Image.fromarray(photo_array(9, 10)).save(folder / "tiny.png")
    result = run_evaluate(folder, "--model", model_path, "--json", tmp_path / "s.json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "1 more images that cannot be scored" in result.output
    assert not (tmp_path / "s.json").exists()

def test_a_folder_that_does_not_exist_is_a_usage_error(model_path, tmp_path):
    result = run_evaluate(tmp_path / "Set5", "--model", model_path)
    assert result.exit_code == 2 and "Set5" in result.output and "Traceback" not in result.output


def test_evaluate_reports_progress_per_image(model_path, folder):
    seen = []
    protocol.evaluate_folder(folder, {"tiny": Upscaler(model_path, device="cpu")}, on_image=seen.append)
    assert [path.name for path in seen] == ["im0.png", "im1.png"]


def test_image_names_that_look_like_markup_are_shown_as_they_are(model_path, tmp_path):
    folder = tmp_path / "Marked"
    folder.mkdir()
    Image.fromarray(photo_array(40, 40)).save(folder / "IMG [draft].png")
    result = run_evaluate(folder, "--model", model_path)
    assert result.exit_code == 0, result.output
    assert "IMG [draft]" in result.output


def test_evaluate_scores_each_file_as_given_an_int8_copy_too(model_path, folder, tmp_path):
    """An `_int8.onnx` file is scored as itself (it was refused as 'itself the int8 model'), beside its fp32 model."""
    int8 = tmp_path / "tiny_int8.onnx"
    int8.write_bytes(model_path.read_bytes())
    result = run_evaluate(folder, "--model", model_path, "--model", int8, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    mean = json.loads((tmp_path / "s.json").read_text())["Tiny"]["clean"]["mean"]
    assert mean["tiny_int8"]["psnr"] == mean["tiny"]["psnr"]  # the same bytes, each scored as given
