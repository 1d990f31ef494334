"""`draftnas train` end to end on the quick shapes build: outputs, a decodable one-point draft, and
one-line exits for a resume of another space and an injected layer outside the target."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hostile_files import pickle_payload

from nas.cli import main
from nas.estimator import AcceptanceEstimator, ValidationSet
from specdec import DecodeConfig, DecodeShape, DraftModel, SpeculativeDecoder
from supernet.checkpoint import load_supernet
from supernet.corpus import build_corpus
from targets import load_target
from targets.embedded.shapes import ensure_built
from userdata import DataConfig, UserData, prompt_set


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ensure_built(home, budget="test")
    return home


@pytest.fixture
def shapes_env(home, monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(home))
    monkeypatch.setenv("DRAFTNAS_SHAPES_BUDGET", "test")


@pytest.fixture(scope="module")
def eagle_run(home, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("eagle")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRAFTNAS_HOME", str(home))
        patch.setenv("DRAFTNAS_SHAPES_BUDGET", "test")
        assert main(["train", "target=shapes", "search_space=eagle", "budget=smoke",
                     "validation_prompts=3", f"run_dir={run_dir}"]) == 0
    return run_dir


def test_one_point_space_writes_supernet_and_a_draft_the_decoder_runs(eagle_run, shapes_env):
    for name in ("space.json", "metrics.csv", "loss.png", "checkpoints/latest", "draft",
                 "supernet/supernet.safetensors", "supernet/meta.json"):
        assert (eagle_run / name).exists(), name
    result = json.loads((eagle_run / "result.json").read_text())["result"]
    assert result["steps"] == 4 and result["space_size"] == 1 and result["samples_per_second"] > 0
    target = load_target("shapes")
    draft = DraftModel.from_pretrained(eagle_run / "draft", target)
    assert draft.config.provenance["search_space"] == "eagle"
    superdraft, _ = load_supernet(eagle_run / "supernet", target)
    for name, tensor in superdraft.subnet_weights(superdraft.space.largest()).items():
        assert torch.equal(draft.state_dict()[name], tensor), name
    text, image = prompt_set("shapes", "test", 1)[0]
    plain = SpeculativeDecoder(target).generate(prompt=text, images=[image], max_new_tokens=12)
    config = DecodeConfig(DecodeShape(depth=3, top_k=2, total_tokens=8))
    drafted = SpeculativeDecoder(target, draft, config).generate(prompt=text, images=[image],
                                                                 max_new_tokens=12)
    assert drafted.token_ids == plain.token_ids


def test_held_out_tau_is_the_saved_drafts_on_the_validation_prompts(eagle_run, shapes_env):
    result = json.loads((eagle_run / "result.json").read_text())["result"]
    held_out = result["held_out"]
    assert held_out["prompts"] == 3 and held_out["decode"] == "tree 6/4/32"
    target = load_target("shapes")
    data = UserData(DataConfig(source="shapes"), "shapes")
    prompts = data.take(target, "validation", 3, 24)  # the smoke budget's answer length
    corpus = build_corpus(target, prompts.inputs, 24, Path(os.environ["DRAFTNAS_HOME"]) / "corpus")
    estimator = AcceptanceEstimator(ValidationSet.build(target, corpus, [target.num_layers],
                                                        False))
    draft = DraftModel.from_pretrained(eagle_run / "draft", target).eval()
    expected = estimator.estimate(draft, DecodeShape.parse("tree 6/4/32"))
    assert held_out["draft"]["tau"] == round(expected.tau, 4)
    assert held_out["draft"]["acceptance_by_depth"] == [
        round(a, 4) for a in expected.acceptance_by_depth]


def test_resume_with_another_space_exits_2_with_one_line(eagle_run, shapes_env, tmp_path, capsys):
    other = tmp_path / "wider.yaml"
    other.write_text(Path("search_spaces/spaces/eagle.yaml").read_text()
                      .replace("intermediate_size: [3.0]", "intermediate_size: [2.0]"))
    capsys.readouterr()
    code = main(["train", "target=shapes", f"search_space={other}", "budget=smoke",
                 f"run_dir={eagle_run}", "resume=true"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "search space" in err and "intermediate_size" in err and "resume=false" in err


def test_injected_layer_outside_the_target_exits_2_with_one_line(shapes_env, tmp_path, capsys):
    space = tmp_path / "deep.yaml"
    space.write_text(Path("search_spaces/spaces/eagle.yaml").read_text()
                     .replace("- [top]", "- [9]"))
    code = main(["train", "target=shapes", f"search_space={space}", "budget=smoke",
                 f"run_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "9" in err


def test_unknown_feature_mode_exits_2(shapes_env, tmp_path, capsys):
    code = main(["train", "features=gpu", f"run_dir={tmp_path}"])
    assert code == 2 and "features" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated weights", "truncated state", "pickle payload"])
def test_resume_from_a_damaged_checkpoint_exits_2_naming_the_file(eagle_run, shapes_env, tmp_path,
                                                                   capsys, damage):
    run_dir = shutil.copytree(eagle_run, tmp_path / "run")
    latest = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text().strip()
    name = "supernet.safetensors" if damage == "truncated weights" else "state.pt"
    damaged = latest / name
    if damage == "pickle payload":
        pickle_payload(damaged, tmp_path / "MARKER")
    else:
        damaged.write_bytes(damaged.read_bytes()[:-64])
    capsys.readouterr()
    code = main(["train", "target=shapes", "search_space=eagle", "budget=smoke",
                 f"run_dir={run_dir}", "resume=true"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(damaged) in err, err
    assert not (tmp_path / "MARKER").exists()
