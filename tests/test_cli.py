"""The skseg command: every subcommand runs, helps, and names bad paths."""

import json
import re

import numpy as np
import pytest

from skseg.cli import build_parser, main

from .conftest import assert_frozen, assert_same_weights, write_signature_folder

COMMANDS = ["demo", "fit", "verify", "evaluate", "benchmark"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: skseg {command}" in capsys.readouterr().out


def test_top_level_help_lists_the_commands():
    help_text = build_parser().format_help()
    assert all(command in help_text for command in COMMANDS)


@pytest.fixture(scope="module")
def signature_folder(tmp_path_factory):
    return write_signature_folder(tmp_path_factory.mktemp("signatures"), random_state=0)


@pytest.fixture(scope="module")
def saved_model(signature_folder, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1"]) == 0
    return path


def test_fit_then_verify(saved_model, signature_folder, capsys):
    genuine = sorted((signature_folder / "w0" / "genuine").glob("*.png"))
    forged = sorted((signature_folder / "w0" / "forged").glob("*.png"))
    capsys.readouterr()
    assert main(["verify", str(saved_model), str(forged[0]), *map(str, genuine[:3]),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] in ("genuine", "forged")
    assert len(result["per_reference"]) == 3
    assert result["score"] == pytest.approx(np.mean(result["per_reference"]))
    assert main(["verify", str(saved_model), str(genuine[3]), str(genuine[0])]) == 0
    assert "Verdict:" in capsys.readouterr().out


def test_joblib_models_work_too(signature_folder, tmp_path, capsys):
    path = tmp_path / "model.joblib"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1"]) == 0
    assert main(["evaluate", str(path), str(signature_folder)]) == 0
    out = capsys.readouterr().out
    assert "Skilled forgeries: EER" in out and "Random forgeries: EER" in out


def test_margin_reaches_the_verifier(signature_folder, tmp_path, capsys):
    from skseg.io import load

    path = tmp_path / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--margin", "0.7"]) == 0
    assert load(path).get_params()["clf__margin"] == 0.7
    capsys.readouterr()
    assert main(["fit", str(signature_folder), "-o", str(tmp_path / "bad.safetensors"),
                 "--epochs", "1", "--margin", "0"]) == 1
    assert "'margin' parameter" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()


def test_local_weight_reaches_the_verifier(signature_folder, tmp_path, capsys):
    from skseg.io import load

    path = tmp_path / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--local-weight", "0.25"]) == 0
    model = load(path)
    assert model.get_params()["clf__local_weight"] == 0.25
    assert model[-1].net_.module_.local is not None
    capsys.readouterr()
    assert main(["fit", str(signature_folder), "-o", str(tmp_path / "bad.safetensors"),
                 "--epochs", "1", "--local-weight", "2"]) == 1
    assert "'local_weight' parameter" in capsys.readouterr().err


def test_size_weight_reaches_the_verifier(signature_folder, tmp_path, capsys):
    from skseg.io import load

    path = tmp_path / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--size-weight", "0.25"]) == 0
    model = load(path)
    assert model.get_params()["clf__size_weight"] == 0.25 and model[-1].size_weight_ == 0.25
    capsys.readouterr()
    assert main(["fit", str(signature_folder), "-o", str(tmp_path / "bad.safetensors"),
                 "--epochs", "1", "--size-weight", "-1"]) == 1
    assert "'size_weight' parameter" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()
    with pytest.raises(SystemExit):
        main(["fit", str(signature_folder), "-o", str(path), "--size-weight", "big"])
    assert "expected 'auto' or a number, got 'big'" in capsys.readouterr().err


def test_patch_weight_reaches_the_verifier_and_its_masks_the_preprocessor(
        signature_folder, tmp_path, capsys):
    from skseg.cli import _as_pipeline
    from skseg.io import load

    path = tmp_path / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--patch-weight", "0.25"]) == 0
    model = load(path)
    assert model[0].stroke_masks and model[-1].patch_weight_ == 0.25
    assert model[-1].patch_net_ is not None
    # The saved pipeline verifies from paths; a bare verifier gets a preprocessor that
    # keeps the masks it needs.
    assert main(["evaluate", str(path), str(signature_folder)]) == 0
    assert "Skilled forgeries: EER" in capsys.readouterr().out
    assert _as_pipeline(model[-1])[0].stroke_masks
    assert main(["fit", str(signature_folder), "-o", str(tmp_path / "bad.safetensors"),
                 "--epochs", "1", "--patch-weight", "-1"]) == 1
    assert "'patch_weight' parameter" in capsys.readouterr().err


def test_ink_size_unit_is_saved_and_needs_recorded_resolutions(
        signature_folder, tmp_path, capsys):
    from skseg.io import load

    folder = write_signature_folder(tmp_path / "dpi", random_state=0, dpi=(300, 300))
    path = tmp_path / "inches.safetensors"
    assert main(["fit", str(folder), "-o", str(path), "--epochs", "1",
                 "--ink-size-unit", "inches"]) == 0
    assert load(path)[0].ink_size_unit == "inches"
    capsys.readouterr()
    # The fixture's PNGs record no resolution: refused, naming a file.
    assert main(["fit", str(signature_folder), "-o", str(tmp_path / "bad.safetensors"),
                 "--epochs", "1", "--ink-size-unit", "inches"]) == 1
    assert "records none" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()


def test_benchmark_writes_json_and_plots(signature_folder, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.json"
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--epochs", "1"]) == 0
    report = json.loads(out.read_text())
    assert len(report["folds"]) == 2
    assert set(report["summary"]) >= {"eer_skilled", "eer_random", "auc_skilled", "train_seconds"}
    assert (tmp_path / "bench_roc.png").exists() and (tmp_path / "bench_det.png").exists()
    printed = capsys.readouterr().out
    assert "eer_skilled" in printed
    # The kernels torch and numpy chose, next to the device: figures compare within one.
    env = report["environment"]
    assert f"{env['cpu_capability']}; numpy {', '.join(env['numpy_simd'])})" in printed


def test_demo_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--writers", "6", "--genuine", "4", "--epochs", "1",
                 "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Held-out writers: EER" in out and "threshold" in out
    assert (tmp_path / "demo_roc.png").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["verify", "{tmp}/missing.safetensors", "{tmp}/q.png", "{tmp}/r.png"], "no model file"),
        (["fit", "{tmp}/no-such-folder", "-o", "{tmp}/m.safetensors"], "no-such-folder"),
        (["evaluate", "{model}", "{tmp}/no-such-folder"], "no-such-folder"),
        (["verify", "{model}", "{tmp}/missing.png", "{tmp}/also-missing.png"], "missing.png"),
    ],
)
def test_bad_paths_give_a_clear_error(argv, match, tmp_path, saved_model, capsys):
    argv = [a.format(tmp=tmp_path, model=saved_model) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"skseg {argv[0]}: error:")
    assert match in err


def test_benchmark_runs_only_the_chosen_folds(signature_folder, tmp_path):
    out = tmp_path / "one.json"
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "4",
                 "--only-folds", "2", "--epochs", "1"]) == 0
    assert [f["fold"] for f in json.loads(out.read_text())["folds"]] == [2]
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--only-folds", "5", "--epochs", "1"]) == 1


def test_benchmark_with_an_extra_training_corpus(signature_folder, tmp_path, capsys):
    extra = write_signature_folder(tmp_path / "extra", random_state=1)
    out = tmp_path / "extra.json"
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--only-folds", "0", "--epochs", "1", "--extra-training", str(extra)]) == 0
    assert "also trains on 4 writers, 28 images" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["extra_training"]["n_writers"] == 4
    # The same folder twice would test writers it trained on.
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--epochs", "1", "--extra-training", str(signature_folder)]) == 1
    assert "shares 28 image file(s)" in capsys.readouterr().err


def test_benchmark_pretrained_on_another_corpus(signature_folder, tmp_path, capsys):
    from skseg.io import load

    other = write_signature_folder(tmp_path / "other", random_state=1)
    out = tmp_path / "pretrained.json"
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--only-folds", "0", "--epochs", "1", "--lr", "3e-4",
                 "--pretrain-data", str(other), "--pretrain-epochs", "1"]) == 0
    assert "Pretraining once on 4 writers, 28 images" in capsys.readouterr().out
    settings = json.loads(out.read_text())["settings"]
    assert settings["pretraining"]["n_writers"] == 4
    # The pretraining keeps the default learning rate; the folds fine-tune with --lr.
    assert settings["pretraining"]["verifier"]["lr"] == 1e-3
    assert settings["pretraining"]["verifier"]["max_epochs"] == 1
    assert settings["verifier"]["lr"] == 3e-4
    # The pretrained model is kept next to the report, ready to fine-tune from.
    saved = tmp_path / "pretrained_pretrained.safetensors"
    pretrained = load(saved).named_steps["clf"]  # the pretraining's model, not a fold's
    assert (pretrained.lr, pretrained.validation_fraction) == (1e-3, 0)
    tuned = tmp_path / "tuned.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(tuned), "--start-from", str(saved),
                 "--epochs", "1"]) == 0
    assert f"Fine-tuning {saved} from its weights" in capsys.readouterr().out
    # Pretraining on the writers under test, or options without the corpus, are refused.
    assert main(["benchmark", str(signature_folder), "-o", str(out), "--folds", "2",
                 "--pretrain-data", str(signature_folder)]) == 1
    assert "pretrain_data shares 28 image file(s)" in capsys.readouterr().err
    assert main(["benchmark", str(signature_folder), "--pretrain-epochs", "1"]) == 1
    assert "--pretrain-epochs sets the pretraining on --pretrain-data" in capsys.readouterr().err


def test_fit_on_two_corpora(signature_folder, tmp_path, capsys):
    extra = write_signature_folder(tmp_path / "extra", random_state=1)
    path = tmp_path / "two.safetensors"
    assert main(["fit", str(signature_folder), str(extra), "-o", str(path), "--epochs", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "training pairs" in line]
    assert [line.split(":")[0] for line in lines] == [str(signature_folder), str(extra)]
    assert path.exists()


def test_fit_start_from_fine_tunes_a_saved_model(saved_model, signature_folder, tmp_path,
                                                 capsys):
    from skseg.io import load

    other = write_signature_folder(tmp_path / "other", random_state=1)
    path = tmp_path / "tuned.safetensors"
    # A learning rate too small to move a weight: the tuned model keeps the saved weights.
    assert main(["fit", str(other), "-o", str(path), "--start-from", str(saved_model),
                 "--epochs", "1", "--lr", "1e-12"]) == 0
    assert f"Fine-tuning {saved_model}" in capsys.readouterr().out
    tuned, pretrained = load(path), load(saved_model)
    assert tuned[-1].lr == 1e-12 and tuned[-1].warm_start
    assert_same_weights(tuned[-1], pretrained[-1], rtol=1e-6, atol=1e-9)


def test_fit_start_from_can_keep_parameters_as_saved(saved_model, signature_folder, tmp_path,
                                                     capsys):
    from skseg.io import load

    other = write_signature_folder(tmp_path / "other", random_state=1)
    path = tmp_path / "tuned.safetensors"
    frozen = "backbone.features.[1-5].*"
    assert main(["fit", str(other), "-o", str(path), "--start-from", str(saved_model),
                 "--epochs", "1", "--freeze", frozen]) == 0
    assert f"keeping {frozen} as they are" in capsys.readouterr().out
    assert_frozen(load(path)[-1], load(saved_model)[-1], frozen)


@pytest.mark.parametrize("option, match", [
    (["--local-weight", "0"], "warm_start=True.*local_weight=0.0"),
    (["--freeze", "backbone.feature.1.*"],
     r"'backbone.feature.1.\*' matches no parameter of the network; its parameters are \['back"),
    (["--ink-size-unit", "inches"], "measures ink sizes in pixels"),
])
def test_fit_start_from_names_what_does_not_fit(saved_model, signature_folder, tmp_path, capsys,
                                                option, match):
    path = tmp_path / "bad.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--start-from", str(saved_model),
                 "--epochs", "1", *option]) == 1
    assert re.search(match, capsys.readouterr().err)
    assert not path.exists()


def test_freeze_needs_start_from(signature_folder, tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--freeze", "backbone.*"]) == 1
    assert "--freeze keeps parameters of the --start-from model" in capsys.readouterr().err
    assert not path.exists()


def test_validation_fraction_reaches_the_verifier(signature_folder, tmp_path, capsys):
    from skseg.io import load

    path = tmp_path / "every_writer.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--validation-fraction", "0"]) == 0
    clf = load(path)[-1]
    # Every writer trained: no validation writers, so no validation EER.
    assert clf.validation_fraction == 0 and np.isnan(clf.validation_eer_)
    # Fine-tuning it chooses its threshold on held-out writers again, unless told not to.
    tuned = tmp_path / "tuned.safetensors"
    for option, fraction in (([], 0.2), (["--validation-fraction", "0"], 0)):
        assert main(["fit", str(signature_folder), "-o", str(tuned), "--epochs", "1",
                     "--start-from", str(path), *option]) == 0
        clf = load(tuned)[-1]
        assert clf.validation_fraction == fraction
        assert np.isnan(clf.validation_eer_) == (fraction == 0)
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--validation-fraction", "1.5"]) == 1
    assert "validation_fraction" in capsys.readouterr().err


def test_mixed_precision_reaches_the_verifier(signature_folder, tmp_path, capsys):
    from skseg.io import load

    path = tmp_path / "model.safetensors"
    assert main(["fit", str(signature_folder), "-o", str(path), "--epochs", "1",
                 "--mixed-precision", "no"]) == 0
    assert load(path).get_params()["clf__mixed_precision"] == "no"
    with pytest.raises(SystemExit):
        main(["fit", str(signature_folder), "-o", str(path), "--mixed-precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
