"""`srgan train` refuses option values that would crash, hang or mislead a run: one line, a non-zero exit, before
the run folder exists; and warns about a GAN run without a pretrained generator."""

import errno
import json
import tempfile

import pytest

from srgan_cli.cli import train as train_command
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.evaluation import degradations
from srgan_cli.training.config import TrainConfig, merge
from tests.training.helpers import TINY, train

REALISTIC = ["--degradation", "realistic", "--steps", "1", "-q"]


def one_line(result):
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def fake_training(monkeypatch):
    """Replace the TensorFlow part of `srgan train` (strategy and loop) with a stub that trains nothing."""
    from srgan_cli.training import loop

    monkeypatch.setattr(loop, "make_strategy", lambda *args, **kwargs: object())
    monkeypatch.setattr(loop, "train", lambda plan, progress=None, strategy=None: (plan.config.steps, None))


@pytest.mark.parametrize(("params", "key", "bounds"), [
    ({"lr_damage": {"blur_sigma": [1e6, 1e6], "blur_prob": 1}, "lr_damage_prob": 1}, "lr_damage.blur_sigma",
     "[0.1, 10] px"),
    ({"first": {"resize_range": [1, 1000], "resize_prob": [1, 0, 0]}, "second_order_prob": 0},
     "first.resize_range", "[0.1, 4]"),
    ({"first": {"blur_sigma": [1e-300, 1e-300], "blur_prob": 1, "sinc_prob": 0}}, "first.blur_sigma", "[0.1, 10]"),
    ({"second": {"betag_range": [0.5, 1e9]}}, "second.betag_range", "[0.1, 10]"),
    ({"first": {"kernel_sizes": [7, 100001]}}, "first.kernel_sizes", "from 3 to 31"),
    ({"second": {"noise_range": [1, 1e300]}}, "second.noise_range", "[0, 255]"),
    ({"first": {"poisson_scale_range": [-1, 1]}}, "first.poisson_scale_range", "[0, 255]"),
    ({"scale": 2}, "scale", "must be 4"),
    ({"scale": 3}, "scale", "must be 4"),
])
def test_degradation_values_that_crash_or_hang_training_are_refused_at_load(photos, tmp_path, monkeypatch, params, key,
                                                                           bounds):
    pytest.importorskip("tensorflow")
    fake_training(monkeypatch)  # were one accepted, the test fails instead of hanging
    config = tmp_path / "deg.json"
    config.write_text(json.dumps(params))
    for extra in ([], ["--print-config"]):
        result = train("--data", photos, "--runs", tmp_path, "--name", "d", *TINY, *REALISTIC,
                       "--degradation-config", config, *extra)
        line = one_line(result)
        assert result.exit_code == 1 and f"'{key}'" in line and bounds in line, line
    assert not (tmp_path / "d").exists()


def test_the_default_and_real_esrgan_degradations_lie_within_the_bounds():
    defaults = degradations.params_to_dict(degradations.DegradationParams())
    assert degradations.params_from_dict(defaults) == degradations.DegradationParams()


@pytest.mark.parametrize(("flags", "option", "reason"), [
    (["--channels", "0"], "--channels", "whole number >= 1, got 0"),
    (["--channels", "-3"], "--channels", "whole number >= 1, got -3"),
    (["--blocks", "-1"], "--blocks", "whole number >= 0, got -1"),
    (["--seed", "-1"], "--seed", "must be in [0, 4294967295]"),
    (["--seed", str(2**32)], "--seed", "must be in [0, 4294967295]"),
])
def test_out_of_range_flags_are_usage_errors(photos, tmp_path, flags, option, reason):
    for extra in ([], ["--print-config"]):
        result = train("--data", photos, "--runs", tmp_path, "--name", "o", *TINY, "--steps", "1", "-q", *flags,
                       *extra)
        line = one_line(result)
        assert result.exit_code == 2 and line.startswith(f"error: {option}: ") and reason in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("yaml", "option", "reason"), [
    ("hr_size: 32.0", "--hr-size", "must be a whole number, got 32.0"),
    ("batch_size: 2.5", "--batch-size", "must be a whole number, got 2.5"),
    ("steps: '10'", "--steps", 'must be a whole number, got "10"'),
    ("seed: true", "--seed", "must be a whole number, got true"),
    ("lr_decay_every: 1.5", "--lr-decay-every", "must be a whole number"),
    ("data: 5", "--data", "must be text, got 5"),
    ("arch_params: 5", "config key 'arch_params'", "must be a mapping of names to values, got 5"),
    ("arch_params: {blocks: 2.0}", "--blocks", "whole number >= 0, got 2.0"),
    ("degradation_params: [1]", "config key 'degradation_params'", "must be a mapping"),
    ("mixed_precision: 1", "--mixed-precision", "must be true or false, got 1"),
    ("5: 3", "unknown option 5", ""),
])
def test_config_values_of_the_wrong_type_are_usage_errors(photos, tmp_path, yaml, option, reason):
    config = tmp_path / "run.yaml"
    config.write_text(f"{yaml}\n" if yaml.startswith("data") else f"data: {photos}\n{yaml}\n")
    for extra in ([], ["--print-config"], ["--channels", "8"]):
        result = train("--config", config, "--runs", tmp_path, "--name", "t", "-q", *extra)
        line = one_line(result)
        assert result.exit_code == 2 and line.startswith(f"error: {option}") and reason in line, line
    assert not (tmp_path / "t").exists()


def test_a_generator_without_residual_blocks_is_accepted():
    assert TrainConfig(arch_params={"blocks": 0, "channels": 8}).resolved().arch_params["blocks"] == 0


def test_resume_names_the_flag_or_key_of_a_changed_architecture_parameter():
    base = TrainConfig(arch_params={"blocks": 2, "channels": 8, "activation": "prelu"})
    with pytest.raises(UsageError, match=r"^--channels cannot change on --resume \(the run has 8\)"):
        merge(base, {"arch_params": {"channels": 16}}, resume=True)
    with pytest.raises(UsageError, match=r"^config key 'arch_params.activation' cannot change on --resume"):
        merge(base, {"arch_params": {"blocks": 2, "activation": "relu"}}, resume=True)
    with pytest.raises(UsageError, match=r"^--hr-size cannot change on --resume \(the run has 96\)"):
        merge(base, {"hr_size": 32}, resume=True)


def test_runs_under_a_file_is_one_line_before_training_leaving_nothing(photos, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    fake_training(monkeypatch)  # refused before the loop starts
    (tmp_path / "afile").write_text("")
    for runs in (tmp_path / "afile", tmp_path / "afile" / "deeper"):
        result = train("--data", photos, "--runs", runs, "--name", "w", *TINY, "--steps", "1", "-q")
        line = one_line(result)
        assert result.exit_code == 1 and line == f"error: cannot write the run folder {runs / 'w'}: " \
            f"{tmp_path / 'afile'} is a file, not a folder"
    assert (tmp_path / "afile").is_file() and not (tmp_path / "afile").read_text()


def test_a_read_only_run_folder_is_one_line_and_a_probe_leaves_nothing(tmp_path, monkeypatch):
    train_command.check_writable(tmp_path / "new" / "run")  # writable: probed in the nearest folder, nothing made
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "run").mkdir()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SrganError, match=r"^cannot write the run folder .*run: Read-only file system$"):
        train_command.check_writable(tmp_path / "run")  # --resume: the folder exists
    with pytest.raises(SrganError, match="Read-only file system"):
        train_command.check_writable(tmp_path / "a" / "b")
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize(("flags", "warned"), [(["--phase", "gan"], True), (["--phase", "gan", "--init", "."], False),
                                               (["--phase", "pretrain"], False)])
def test_a_gan_run_without_init_warns_that_its_generator_starts_random(photos, tmp_path, monkeypatch, flags, warned):
    pytest.importorskip("tensorflow")
    fake_training(monkeypatch)
    result = train("--data", photos, "--runs", tmp_path, "--name", "g", *TINY, "--steps", "1", "-q", *flags)
    assert result.exit_code == 0, result.output
    warning = "warning: --phase gan without --init: adversarial training starts from a random generator"
    assert (warning in result.output) == warned, result.output


def test_val_degrade_is_parsed_before_anything_is_read(photos, tmp_path):
    result = train("--data", photos, "--runs", tmp_path, "--name", "v", "--val", photos, "--val-degrade",
                   "clean;jpeg:abc", "--print-config")
    assert result.exit_code == 2 and "jpeg:abc" in result.output
    assert not (tmp_path / "v").exists()


def test_val_degrade_without_val_warns_that_it_is_unused(photos, tmp_path, monkeypatch, caplog):
    pytest.importorskip("tensorflow")
    fake_training(monkeypatch)
    result = train("--data", photos, "--runs", tmp_path, "--name", "v", *TINY, "--steps", "1", "--val-degrade",
                   "jpeg:75")
    warned = result.output + " ".join(r.getMessage() for r in caplog.records)
    assert result.exit_code == 0 and "--val-degrade jpeg:75 without --val" in warned
