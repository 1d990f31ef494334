"""`draftnas export` on a tiny LLaVA: the best or a chosen trial becomes a DraftModel checkpoint
with its provenance that decodes losslessly (refined or not); bad search directories, trials and
pairings exit 2 with one line. format=eagle3 on a deeper tiny Llama writes exactly the EAGLE-3
layout, and a reference EAGLE-3 forward over the written files computes what the draft computes;
a draft that does not fit is refused with one line naming why."""

import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from eagle3_reference import eagle3_forward
from safetensors.torch import load_file
from tiny_llava_dir import save_tiny_llava
from tiny_tables import write_table

from nas.candidates import Candidate
from nas.cli import main
from nas.export import ExportError, RefineConfig, eagle3_mismatches, write_eagle3
from nas.export.selection import select_trial
from nas.measured_shapes import decoded_tau, prepared
from nas.objectives import TrialResult
from nas.reports import Provenance, trials_frame, write_best, write_csv
from nas.searchers import TrialRecord
from search_spaces import DraftArch, ResolvedSpace, TargetDims, load_space
from specdec import DecodeConfig, DraftModel, SpeculativeDecoder
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from supernet import SuperDraft, SupernetMeta, draft_config, save_supernet
from supernet.corpus import cached_corpus
from supernet.loss import LossConfig
from targets import Target, load_target
from targets.tiny import tiny_inputs, tiny_target
from userdata import DataConfig, UserData

sys.path.insert(0, str(Path(__file__).parents[1] / "supernet"))
from deep_targets import deep_tiny_llama

SPACE_YAML = """
name: tiny_export
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [concat, cross_attention]
  injected_layers:
    - [top]
    - [1, top]
  vision_keep_ratio: [0.5, 1.0]
  draft_vocab_size: [0.5, full]
"""
BEST = DraftArch("concat", (2,), 1, 4, 64, 1.0, None)
OTHER = DraftArch("cross_attention", (1, 2), 2, 2, 32, 0.5, 64)
TOKENS_ONLY = DraftArch("none", (), 1, 2, 32, 1.0, None)
PREDICTED = {"tau": 2.5, "latency_ms": 1.25, "speedup": 1.8}
# On the 5-layer Llama: taps 2 and 4 fit EAGLE-3 (aux ids 1..4), `top` (5) does not.
DEEP_SPACE_YAML = """
name: tiny_eagle3
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [concat, add]
  injected_layers:
    - [2, 4]
    - [top]
  vision_keep_ratio: [1.0]
  draft_vocab_size: [0.5, full]
"""
EAGLE_LIKE = DraftArch("concat", (2, 4), 1, 2, 64, 1.0, 64)


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="module")
def target(target_dir) -> Target:
    return load_target(str(target_dir))


def resolved_space(target: Target, directory: Path, space_yaml: str) -> ResolvedSpace:
    path = directory / "space.yaml"
    path.write_text(space_yaml)
    return load_space(path).resolve(TargetDims.of(target))


def trained_like_supernet(target: Target, directory: Path, seed: int,
                          space_yaml: str = SPACE_YAML, shapes: tuple[DecodeShape, ...] = ()
                          ) -> Path:
    """A supernet saved as `draftnas train` saves it, with perturbed weights (open gates too)."""
    superdraft = SuperDraft(resolved_space(target, directory, space_yaml), target,
                            vocab_ranking=list(range(target.vocab_size - 1, -1, -1)))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in superdraft.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return save_supernet(directory / "supernet", superdraft,
                         SupernetMeta.of(superdraft, 1, shapes))


@pytest.fixture(scope="module")
def supernet(target, tmp_path_factory) -> Path:
    return trained_like_supernet(target, tmp_path_factory.mktemp("train"), seed=0)


def trial_result(arch: DraftArch, tau: float, latency_ms: float) -> TrialResult:
    return TrialResult(candidate=Candidate(arch, DEFAULT_SHAPE), tau=tau, chain_tau=tau, tree_tau=tau,
                       acceptance_by_depth=[0.5], latency_ms=latency_ms, draft_ms=0.5,
                       speedup=1.5)


def write_search(directory: Path, target: Target, supernet: Path, target_spec: str,
                 best_arch: DraftArch = BEST,
                 table: str = "hardware_profiles/tables/cpu.json") -> Path:
    """A search run directory as `draftnas search` writes it (nas.reports)."""
    directory.mkdir(parents=True, exist_ok=True)
    provenance = Provenance(hardware_table=table,
                            supernet=str(supernet), target_spec=target_spec,
                            target_fingerprint=target.fingerprint, space="tiny_export",
                            objective={"kind": "speedup"}, searcher="tpe", study_name="test")
    best = trial_result(best_arch, PREDICTED["tau"], PREDICTED["latency_ms"])
    best.speedup = PREDICTED["speedup"]
    write_best(directory / "best.json", 3, best, provenance)
    records = [TrialRecord(3, best), TrialRecord(5, trial_result(OTHER, 2.5, 6.0)),
               TrialRecord(7, trial_result(TOKENS_ONLY, 1.5, 0.5))]
    write_csv(trials_frame(records), directory / "trials.csv")
    return directory


@pytest.fixture
def search(tmp_path, target, supernet, target_dir, monkeypatch) -> Path:
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    return write_search(tmp_path / "search", target, supernet, str(target_dir))


def export(*overrides: str) -> int:
    return main(["export", *overrides])


def assert_lossless(target: Target, draft: DraftModel, shape: DecodeShape) -> None:
    for seed in range(2):
        prepared = tiny_inputs(target, n_text=5, seed=seed)
        ids = prepared.input_ids
        reference = target.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), **prepared.model_kwargs,
            do_sample=False, max_new_tokens=12, eos_token_id=target.eos_token_ids,
            pad_token_id=target.eos_token_ids[0])[0, ids.shape[1]:].tolist()
        decoder = SpeculativeDecoder(target, draft, DecodeConfig(shape))
        assert decoder.generate(inputs=prepared, max_new_tokens=12).token_ids == reference


def supernet_slices(target: Target, supernet: Path, arch: DraftArch) -> dict[str, torch.Tensor]:
    from supernet import load_supernet

    superdraft, _ = load_supernet(supernet, target)
    return superdraft.subnet_weights(arch)


def test_best_trial_is_exported_with_provenance_and_decodes_losslessly(search, target, supernet,
                                                                        tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, BEST, provenance=draft.config.provenance,
                                        decode=DEFAULT_SHAPE)
    provenance = draft.config.provenance
    assert provenance["trial"] == 3 and provenance["predicted"] == PREDICTED
    assert provenance["hardware_table"] == "hardware_profiles/tables/cpu.json"
    assert provenance["target"]["fingerprint"] == target.fingerprint
    assert provenance["space"] == "tiny_export" and provenance["supernet"] == str(supernet)
    assert "refinement" not in provenance
    for name, tensor in supernet_slices(target, supernet, BEST).items():
        assert torch.equal(draft.state_dict()[name], tensor), name
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["draft"] == str(run / "draft") and result["trial"] == 3
    assert_lossless(target, draft, DecodeShape(depth=3, top_k=2, total_tokens=8))


def test_chosen_trial_takes_its_row_and_decodes_losslessly(search, target, tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    assert draft.config == draft_config(target, OTHER, provenance=draft.config.provenance,
                                        decode=DEFAULT_SHAPE)
    assert draft.config.provenance["trial"] == 5
    assert draft.config.provenance["predicted"] == {"tau": 2.5, "latency_ms": 6.0,
                                                    "speedup": 1.5}
    assert_lossless(target, draft, DecodeShape.chain(3))


def test_refined_draft_moves_off_the_supernet_and_stays_lossless(search, target, supernet,
                                                                 tmp_path):
    run = tmp_path / "export"
    assert export(f"search={search}", "trial=5", "refine=true", "data=shapes", "refine_steps=2",
                  "prompts=2", "validation_prompts=0",
                  "max_new_tokens=6", "refinement.lr=1e-2", "refinement.batch_size=2",
                  "refinement.loss.unroll_steps=2", f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    refinement = draft.config.provenance["refinement"]
    assert refinement["steps"] == 2 and refinement["sequences"] == 2
    assert "shapes" not in refinement and draft.config.decode == DEFAULT_SHAPE  # the search's
    assert all(torch.isfinite(torch.tensor(refinement[key])) for key in ("first_loss",
                                                                         "last_loss"))
    changed = [name for name, tensor in supernet_slices(target, supernet, OTHER).items()
               if not torch.equal(draft.state_dict()[name], tensor)]
    assert "layers.0.self_attn.q_proj.weight" in changed and "lm_head.weight" in changed
    assert_lossless(target, draft, DecodeShape(depth=3, top_k=2, total_tokens=8))


def test_a_killed_refinement_continues_where_it_stopped_and_ends_as_an_unbroken_one(
        target, supernet, tmp_path, monkeypatch):
    """Checkpoints every step; the run killed in its third step, rerun, trains steps 3 and 4
    only and ends with the weights and losses of a run never interrupted."""
    from supernet import load_supernet

    # The module (the package exports its function under the same name).
    refine_module = importlib.import_module("nas.export.refine")

    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    prompts = UserData(DataConfig(source="shapes"), target.spec).take(target, "train", 3, 6)
    corpus = cached_corpus(target, prompts.inputs, 6, tmp_path / "home")
    cfg = RefineConfig(batch_size=2, lr=1e-2, warmup_steps=1, min_lr_ratio=0.1,
                       checkpoint_every=1, loss=LossConfig(unroll_steps=2))

    def refined(checkpoints: Path) -> tuple[dict, dict]:
        superdraft, _ = load_supernet(supernet, target)
        report = refine_module.refine(superdraft, OTHER, corpus, 1, 4, cfg, None, checkpoints)
        return report, superdraft.subnet_weights(OTHER)

    unbroken, expected = refined(tmp_path / "unbroken")
    backward, calls = refine_module.sandwich_backward, []

    def killed_in_the_third_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return backward(*args, **kwargs)

    monkeypatch.setattr(refine_module, "sandwich_backward", killed_in_the_third_step)
    with pytest.raises(KeyboardInterrupt):
        refined(tmp_path / "broken")
    monkeypatch.setattr(refine_module, "sandwich_backward", backward)
    resumed, weights = refined(tmp_path / "broken")
    assert (unbroken["resumed_from_step"], resumed["resumed_from_step"]) == (0, 2)
    assert (resumed["first_loss"], resumed["last_loss"]) == (unbroken["first_loss"],
                                                            unbroken["last_loss"])
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
    other = replace(cfg, lr=1e-3)
    superdraft, _ = load_supernet(supernet, target)
    with pytest.raises(ExportError, match="another draft or with other settings"):
        refine_module.refine(superdraft, OTHER, corpus, 1, 4, other, None, tmp_path / "broken")


SHAPES = (DecodeShape.chain(1), DecodeShape.chain(2), DecodeShape(depth=3, top_k=2,
                                                                    total_tokens=6))


@pytest.fixture
def priced_search(tmp_path, target, target_dir, monkeypatch) -> Path:
    """A search whose supernet lists three decoding shapes and whose table prices them."""
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    (tmp_path / "train").mkdir()
    supernet = trained_like_supernet(target, tmp_path / "train", seed=0, shapes=SHAPES)
    table = write_table(tmp_path / "table.json", target,
                        resolved_space(target, tmp_path, SPACE_YAML), SHAPES)
    return write_search(tmp_path / "search", target, supernet, str(target_dir), table=str(table))


def test_a_refined_draft_recommends_the_shape_its_own_tau_makes_fastest(priced_search, target,
                                                                        tmp_path):
    """After refining, every shape of the supernet is decoded on held-out prompts with the refined
    draft and priced on the search's table: the draft recommends the fastest, and its measured
    tau and predicted speedup replace the search's (kept under decode.search)."""
    run = tmp_path / "export"
    assert export(f"search={priced_search}", "refine=true", "data=shapes", "refine_steps=2",
                  "prompts=2", "validation_prompts=2", "max_new_tokens=6",
                  "refinement.batch_size=2", "refinement.loss.unroll_steps=2",
                  f"run_dir={run}") == 0
    draft = DraftModel.from_pretrained(run / "draft", target)
    provenance = draft.config.provenance
    rows = provenance["refinement"]["shapes"]
    assert [row["shape"] for row in rows] == [shape.label for shape in SHAPES]
    best = max(rows, key=lambda row: row["speedup"])
    assert draft.config.decode == DecodeShape.parse(best["shape"])
    assert provenance["predicted"] == {key: best[key] for key in ("tau", "latency_ms", "speedup")}
    assert provenance["decode"]["tau_source"] == "measured after refinement"
    assert provenance["decode"]["search"]["shape"] == DEFAULT_SHAPE.label
    assert len({row["speedup"] for row in rows}) == len(rows)  # the table tells them apart
    # The recorded tau is the exported draft's own, decoding the held-out prompts.
    data = UserData(DataConfig(source="shapes"), target.spec)
    held_out = data.take(target, "validation", 2, 6)
    corpus = cached_corpus(target, held_out.inputs, 6, tmp_path / "home")
    tau = decoded_tau(target, draft, draft.config.decode,
                      [prepared(target, item) for item in corpus])
    assert round(tau, 4) == best["tau"] and tau >= 1.0
    assert_lossless(target, draft, draft.config.decode)
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["predicted"] == provenance["predicted"]
    assert result["arch"]["decode"] == draft.config.decode.to_dict()
    # It trained on features cached on disk, where the supernet's training keeps them.
    assert any((tmp_path / "home" / "features").rglob("*.safetensors"))


def test_without_the_searchs_table_a_refinement_cannot_pick_a_shape_and_says_so(
        search, tmp_path, capsys):
    """The fixture's best.json names a table that is not there: one line, nothing written."""
    run = tmp_path / "export"
    assert export(f"search={search}", "refine=true", "data=shapes", "refine_steps=1",
                  "prompts=2", "max_new_tokens=4", "refinement.batch_size=2",
                  "refinement.loss.unroll_steps=2", f"run_dir={run}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latency table" in err[0] and "validation_prompts=0" in err[0]
    assert not (run / "draft").exists()


def test_eagle3_format_is_refused_in_one_line_before_anything_is_written(search, tmp_path,
                                                                         capsys):
    """The tiny LLaVA's best trial reads tap 2 of a 2-layer target: no engine captures that."""
    run = tmp_path / "export"
    assert export(f"search={search}", "format=eagle3", f"run_dir={run}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "EAGLE-3" in err and "format=draftnas" in err
    assert "taps [2]" in err and "a target of 2 layers" in err
    assert not (run / "draft").exists()


@pytest.fixture(scope="module")
def deep_target() -> Target:
    return deep_tiny_llama()


def test_eagle3_mismatches_name_each_difference(target, deep_target):
    problems = eagle3_mismatches(draft_config(target, OTHER), target)
    assert any("cross_attention" in p for p in problems)
    assert any("num_layers 2" in p for p in problems)
    assert any("vision_keep_ratio 0.5" in p for p in problems)
    too_many = DraftArch("concat", (1, 2, 3, 4), 1, 4, 64, 1.0, None)
    (only,) = eagle3_mismatches(draft_config(deep_target, too_many), deep_target)
    assert "4 injected layers" in only
    assert eagle3_mismatches(draft_config(deep_target, EAGLE_LIKE), deep_target) == []
    reads_images = replace(EAGLE_LIKE, image_input="features")
    (only,) = eagle3_mismatches(draft_config(deep_target, reads_images), deep_target)
    assert "image_input 'features'" in only and "ignores the image features" in only


def perturbed_draft(target: Target, arch: DraftArch) -> DraftModel:
    """A random draft whose norms are not all ones (so a misplaced norm shows)."""
    size = arch.draft_vocab_size
    token_ids = list(range(1, 2 * size, 2)) if size else None  # odd ids: d2t is not all zero
    draft = DraftModel.random(draft_config(target, arch), target, token_ids)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in draft.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return draft


def test_eagle3_files_hold_exactly_the_formats_tensors_and_keys(deep_target, tmp_path):
    draft = perturbed_draft(deep_target, EAGLE_LIKE)  # 2 heads of 8 on a width of 32, vocab 64
    directory = write_eagle3(draft, tmp_path / "eagle3")
    tensors = load_file(directory / "model.safetensors")
    D, H, V, inner, F = 32, 32, 128, 16, 64
    shapes = {"fc.weight": (D, 3 * H), "midlayer.input_layernorm.weight": (D,),
              "midlayer.hidden_norm.weight": (D,),
              "midlayer.self_attn.q_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.k_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.v_proj.weight": (inner, 2 * D),
              "midlayer.self_attn.o_proj.weight": (D, inner),
              "midlayer.post_attention_layernorm.weight": (D,),
              "midlayer.mlp.gate_proj.weight": (F, D), "midlayer.mlp.up_proj.weight": (F, D),
              "midlayer.mlp.down_proj.weight": (D, F), "norm.weight": (D,),
              "lm_head.weight": (64, D), "d2t": (64,), "t2d": (V,)}
    assert {name: tuple(tensor.shape) for name, tensor in tensors.items()} == shapes
    assert tensors["d2t"].dtype == torch.int64 and tensors["t2d"].dtype == torch.bool
    assert all(tensors[name].dtype == torch.float32
               for name in shapes if name not in ("d2t", "t2d"))
    # Aux ids: taps 2 and 4 plus the lowest free id 1, ascending; id 1's columns are zero.
    fc = tensors["fc.weight"]
    assert not fc[:, :H].any()
    assert torch.equal(fc[:, H:2 * H], draft.fusion.projs[0].weight)
    assert torch.equal(fc[:, 2 * H:], draft.fusion.projs[1].weight)
    config = json.loads((directory / "config.json").read_text())
    assert config == {
        "architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama",
        "num_hidden_layers": 1, "hidden_size": D, "intermediate_size": F,
        "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu",
        "rms_norm_eps": draft.config.rms_norm_eps, "rope_theta": draft.config.rope_theta,
        "max_position_embeddings": 256, "attention_bias": False, "mlp_bias": False,
        "tie_word_embeddings": False, "vocab_size": V, "draft_vocab_size": 64,
        "target_hidden_size": H, "torch_dtype": "float32",
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 2, 4],
                         "use_aux_hidden_state": True}}


def draft_logits_over_target_vocab(draft: DraftModel, tokens, features, positions):
    """The draft's logits scattered onto target ids, -inf elsewhere (as vLLM's compute_logits)."""
    with torch.no_grad():
        out = draft(tokens, features, positions)
    width = out.logits.shape[-1]
    logits = out.logits.new_full((*out.logits.shape[:2], draft.config.target_vocab_size),
                                 float("-inf"))
    logits[..., draft.to_target_ids(torch.arange(width))] = out.logits
    return logits, out.hidden


def assert_reference_eagle3_matches(draft: DraftModel, directory: Path, seed: int) -> None:
    target = draft.target
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, target.vocab_size, (2, 7), generator=generator)
    aux = {layer: torch.randn(2, 7, target.hidden_size, generator=generator)
           for layer in range(target.num_layers + 1)}
    positions = torch.arange(1, 8).expand(2, 7)
    expected, expected_hidden = draft_logits_over_target_vocab(
        draft, tokens, draft.fuse(aux), positions)
    with torch.no_grad():
        got, hidden = eagle3_forward(directory, target.embed_tokens(tokens), aux, positions)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(hidden, expected_hidden, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", [
    EAGLE_LIKE,  # 2 taps (one zero block), pruned heads, reduced vocabulary
    DraftArch("concat", (1, 2, 3), 1, 4, 32, 1.0, None),  # 3 taps, the target's head
])
def test_reference_eagle3_forward_over_the_files_equals_the_draft(deep_target, arch, tmp_path):
    draft = perturbed_draft(deep_target, arch)
    assert_reference_eagle3_matches(draft, write_eagle3(draft, tmp_path / "eagle3"), seed=1)


def test_export_format_eagle3_writes_the_layout_beside_the_draft(deep_target, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("DRAFTNAS_HOME", str(tmp_path / "home"))
    target_dir = tmp_path / "deep_llama"
    deep_target.model.save_pretrained(target_dir)
    supernet = trained_like_supernet(deep_target, tmp_path, seed=2, space_yaml=DEEP_SPACE_YAML)
    search = write_search(tmp_path / "search", deep_target, supernet, str(target_dir),
                          best_arch=EAGLE_LIKE)
    run = tmp_path / "export"
    assert export(f"search={search}", "format=eagle3", f"run_dir={run}") == 0
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["eagle3"] == str(run / "eagle3") and result["format"] == "eagle3"
    draft = DraftModel.from_pretrained(run / "draft", deep_target)
    assert_reference_eagle3_matches(draft, run / "eagle3", seed=3)


@pytest.mark.parametrize(("given", "words"), [(True, "best.json: missing"),
                                               (False, "search: not given")])
def test_missing_search_or_best_json_exits_2_with_one_line(tmp_path, capsys, given, words):
    search = [f"search={tmp_path}"] if given else []
    assert export(*search, f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "search=" in err


def test_every_trial_row_reads_back_as_its_arch(search):
    for number, arch in ((3, BEST), (5, OTHER), (7, TOKENS_ONLY)):
        assert select_trial(search, number).candidate == Candidate(arch, DEFAULT_SHAPE)


def test_trial_not_in_trials_csv_exits_2_with_one_line(search, tmp_path, capsys):
    assert export(f"search={search}", "trial=9", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trial=9 is not in" in err and "3, 5, 7" in err


def test_supernet_of_another_target_exits_2_with_one_line(target, target_dir, tmp_path,
                                                          monkeypatch, capsys):
    other = tiny_target("llava_clip", seed=1, vocab_size=128)
    assert other.fingerprint != target.fingerprint
    foreign = trained_like_supernet(other, tmp_path, seed=0)
    search = write_search(tmp_path / "search", target, foreign, str(target_dir))
    assert export(f"search={search}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "supernet" in err and "trained for target" in err


def test_target_other_than_the_searched_one_exits_2_with_one_line(search, tmp_path, capsys):
    elsewhere = save_tiny_llava(tmp_path / "other_llava", seed=1)
    assert export(f"search={search}", f"target={elsewhere}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "target=" in err and "fingerprint" in err


def test_arch_outside_the_supernets_space_exits_2_with_one_line(search, tmp_path, capsys):
    best = json.loads((search / "best.json").read_text())
    best["arch"]["num_layers"] = 3
    (search / "best.json").write_text(json.dumps(best))
    assert export(f"search={search}", f"run_dir={tmp_path / 'run'}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit supernet" in err and "num_layers" in err
