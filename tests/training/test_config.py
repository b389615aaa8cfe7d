"""`srgan train` options: --config files under the flags, --print-config, the shipped recipes, and every refusal made
before TensorFlow is imported, leaving no run folder."""

import dataclasses
import json
import subprocess
import sys

import pytest

from srgan_cli.evaluation import degradations
from srgan_cli.training.config import TrainConfig
from tests.training.helpers import REPO, TINY, train

RECIPES = [("srresnet_x4.yaml", "weights/srresnet_x4.config.json"), ("srgan_x4.yaml", "weights/srgan_x4.config.json")]
RUN_SPECIFIC = {"data", "val", "init", "lr_decay_from"}


def printed(*args):
    result = train(*args, "--print-config")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_sets_options_flags_override_it_and_the_run_records_the_result(photos, tmp_path, suffix):
    pytest.importorskip("tensorflow")
    options = {"data": str(photos), "steps": 3, "lr": 1e-3, "arch_params": {"blocks": 1, "channels": 8},
               "hr_size": 24, "batch_size": 2, "sample_every": 0, "checkpoint_every": 2}
    config = tmp_path / f"run{suffix}"
    config.write_text(json.dumps(options) if suffix == ".json" else
                      "".join(f"{k}: {json.dumps(v)}\n" for k, v in options.items()).replace("0.001", "1e-3"))
    result = train("--config", config, "--runs", tmp_path, "--name", "c", "--steps", "2", "--channels", "4", "-q")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert (saved["steps"], saved["lr"], saved["hr_size"]) == (2, 1e-3, 24)
    assert saved["arch_params"] == {"blocks": 1, "channels": 4, "activation": "prelu"}


def test_print_config_prints_the_resolved_config_and_does_not_train(photos, tmp_path):
    config = tmp_path / "gan.yaml"
    config.write_text(f"data: {photos}\nphase: gan\nsteps: 1000\nlr: 2.0e-5\n")
    shown = printed("--config", config, "--runs", tmp_path, "--name", "p", "--adv-weight", "0.01")
    assert (shown["phase"], shown["lr"], shown["adv_weight"]) == ("gan", 2e-5, 0.01)
    assert shown["lr_decay_every"] == 500  # resolved: half the steps for gan
    assert TrainConfig.from_dict(shown) == TrainConfig.from_dict(shown).resolved()
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("recipe", "recorded"), RECIPES)
def test_shipped_recipes_reproduce_the_models_recorded_settings(photos, monkeypatch, recipe, recorded):
    monkeypatch.chdir(REPO)  # the recipes' paths are relative to the repository root, as the model card's commands
    shown = printed("--config", f"configs/{recipe}", "--data", photos, "--val", photos, "--runs", photos / "none")
    want = dataclasses.asdict(TrainConfig.from_dict(json.loads((REPO / recorded).read_text())))
    assert {k: v for k, v in shown.items() if k not in RUN_SPECIFIC} == \
        {k: v for k, v in want.items() if k not in RUN_SPECIFIC}


def test_realistic_recipes_record_the_degradation_of_their_runs(photos, monkeypatch):
    monkeypatch.chdir(REPO)
    stage2 = printed("--config", "configs/srresnet_x4_real.yaml", "--data", photos, "--val", photos,
                     "--init", photos, "--runs", photos / "none")  # stage 1's run folder is not in the repo
    mix = degradations.params_to_dict(degradations.load_params(REPO / "configs" / "degradation_real.json"))
    assert stage2["degradation_params"] == mix and stage2["lr_decay_every"] == 6000
    real = ["--config", "configs/srresnet_x4_real_stage1.yaml", "--data", photos, "--val", photos,
            "--runs", photos / "none"]
    shown = printed(*real)
    same = ("first", "second", "second_order_prob", "final_sinc_prob", "clean_prob")
    assert {k: shown["degradation_params"][k] for k in same} == {k: mix[k] for k in same}
    assert shown["degradation_params"]["lr_damage_prob"] == 0  # the run predates the first-order branch
    assert (shown["pixel_loss"], shown["lr"], shown["lr_decay_every"], shown["lr_decay_factor"], shown["ema"],
            shown["steps"], shown["batch_size"]) == ("l1", 1e-4, 8000, 0.5, 0.999, 40000, 16)
    assert shown["val_degrade"] == "clean;jpeg:75;noise:6,jpeg:75;jpeg:40"
    with_mix = printed(*real, "--degradation-config", "configs/degradation_real.json")
    assert with_mix["degradation_params"] == mix  # a flag overrides the file


@pytest.mark.parametrize("lr", ["nan", "inf", "-1", "0"])
def test_learning_rates_that_are_not_finite_and_positive_are_refused(photos, tmp_path, lr):
    result = train("--data", photos, "--runs", tmp_path, "--name", "lr", *TINY, "--lr", lr, "-q")
    assert result.exit_code == 2 and "--lr" in result.output and not (tmp_path / "lr").exists()


@pytest.mark.parametrize("name", ["", " ", "a/b", "..", ".", "../up"])
def test_a_run_name_is_one_folder_name(photos, tmp_path, name):
    result = train("--data", photos, "--runs", tmp_path / "runs", "--name", name, *TINY, "--steps", "1", "-q")
    assert result.exit_code == 2 and "--name" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "up").exists()


def test_resume_refuses_other_data(photos, tmp_path):
    pytest.importorskip("tensorflow")
    assert train("--data", photos, "--runs", tmp_path, "--name", "r", *TINY, "--steps", "1", "-q").exit_code == 0
    result = train("--runs", tmp_path, "--name", "r", "--resume", "--data", photos / "nested", "-q")
    assert result.exit_code == 2 and "--data cannot change on --resume" in result.output


def test_a_config_file_that_is_not_yaml_is_one_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("steps: [1, 2\nlr: {\n")
    result = train("--config", config, "--runs", tmp_path, "-q")
    assert result.exit_code == 2 and result.output.startswith(f"error: --config {config}: cannot read it")
    assert len(result.output.strip().splitlines()) == 1


REFUSE = """
import json, sys
from typer.testing import CliRunner
from srgan_cli.cli import app
results = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, ["train", *args])
    results.append([result.exit_code, "tensorflow" in sys.modules, result.output.strip()])
print(json.dumps(results))
"""


def test_refusals_happen_before_tensorflow_is_imported_and_leave_no_run_folder(photos, tmp_path):
    runs = tmp_path / "runs"
    common = ["--runs", str(runs), *TINY, "--steps", "1", "-q"]
    cases = [["--data", str(tmp_path / "nowhere"), "--name", "missing_data", *common],
             ["--name", "never_ran", "--resume", *common],
             ["--data", str(photos), "--name", "a/b", *common],
             ["--data", str(photos), "--name", "", *common],
             ["--data", str(photos), "--name", "nan", "--lr", "nan", *common],
             ["--data", str(photos), "--name", "init", "--init", str(tmp_path / "none.weights.h5"), *common]]
    done = subprocess.run([sys.executable, "-c", REFUSE, json.dumps(cases)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for args, (code, tensorflow, output) in zip(cases, json.loads(done.stdout), strict=True):
        assert code in (1, 2) and output.startswith("error:") and len(output.splitlines()) == 1, (args, output)
        assert not tensorflow, f"{args}: TensorFlow imported before refusing ({output})"
    assert not runs.exists()


def test_arch_params_given_go_on_top_of_the_runs_on_resume():
    """The run records every architecture default; a resume that names some of them changes nothing."""
    from srgan_cli.errors import UsageError
    from srgan_cli.training.config import merge

    base = TrainConfig(arch_params={"blocks": 2, "channels": 8, "activation": "relu"})
    assert merge(base, {"arch_params": {"channels": 8}}, resume=True).arch_params == base.arch_params
    with pytest.raises(UsageError, match="cannot change on --resume"):
        merge(base, {"arch_params": {"channels": 16}}, resume=True)
