"""The corpus is the target's greedy output (a text model's answered in batches), made once per
target and resumable by shards; cached features equal online ones."""

import json

import pytest
import torch
from hostile_files import pickle_payload
from tiny_text_dir import save_tiny_text_model

from specdec import SpeculativeDecoder
from supernet import answers as answers_module
from supernet import corpus as corpus_module
from supernet.corpus import build_corpus
from supernet.errors import SupernetError
from supernet.features import FeatureSource
from targets import load_target
from targets.tiny import tiny_inputs, tiny_target
from userdata import DataConfig, UserData, prompt_set


@pytest.fixture(scope="module")
def vlm():
    return tiny_target("llava_clip", seed=0)


def prompts(target, count: int = 3):
    return [tiny_inputs(target, n_text=5 + i, seed=i) for i in range(count)]


def test_corpus_is_greedy_output_and_decoded_once_per_target(vlm, tmp_path, monkeypatch):
    first = build_corpus(vlm, prompts(vlm), 6, tmp_path)
    for item, prompt in zip(first, prompts(vlm), strict=True):
        expected = SpeculativeDecoder(vlm).generate(inputs=prompt, max_new_tokens=6).token_ids
        assert item.response.tolist() == expected
        assert torch.equal(item.input_ids[: item.prompt_len], prompt.input_ids[0])

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("a cached corpus was decoded again")

    monkeypatch.setattr(corpus_module, "target_answers", no_decoding)
    again = build_corpus(vlm, prompts(vlm), 6, tmp_path)
    assert [item.input_ids.tolist() for item in again] == [i.input_ids.tolist() for i in first]
    monkeypatch.undo()
    other = tiny_target("llava_clip", seed=1)
    build_corpus(other, prompts(other), 6, tmp_path)
    assert len(list(tmp_path.glob("corpus-*"))) == 2


def test_a_text_target_answers_in_batches_what_it_answers_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(answers_module, "BATCH", 8)
    target = tiny_target("llama", seed=0)
    asked = [tiny_inputs(target, n_text=3 + i % 7, seed=i) for i in range(20)]
    calls = []
    generate = target.model.generate
    monkeypatch.setattr(target.model, "generate", lambda **kw: calls.append(1) or generate(**kw))
    corpus = build_corpus(target, asked, 8, tmp_path)
    assert len(calls) == 3  # 20 prompts in batches of 8: three generate calls
    for item, prompt in zip(corpus, asked, strict=True):
        alone = SpeculativeDecoder(target).generate(inputs=prompt, max_new_tokens=8).token_ids
        assert item.response.tolist() == alone


class Killed(Exception):
    pass


def test_a_killed_corpus_build_resumes_at_its_first_missing_shard(vlm, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "SHARD", 2)
    asked = prompts(vlm, 5)
    answered, kill = [], [True]
    real = corpus_module.target_answers

    def killed_after_two_shards(target, chunk, *args):
        if len(answered) == 4 and kill:
            kill.clear()
            raise Killed  # the kill, after two shards were written
        answers = real(target, chunk, *args)
        answered.extend(answers)
        return answers

    monkeypatch.setattr(corpus_module, "target_answers", killed_after_two_shards)
    with pytest.raises(Killed):
        build_corpus(vlm, asked, 6, tmp_path)
    shards = sorted(path.name for path in tmp_path.glob("corpus-*/*"))
    assert shards == ["00000.pt", "00001.pt"]  # no partial file left behind
    resumed = build_corpus(vlm, asked, 6, tmp_path)
    assert len(answered) == 5  # the resume answered only the last shard's one prompt
    monkeypatch.undo()
    fresh = build_corpus(vlm, asked, 6, tmp_path / "fresh")
    assert [i.input_ids.tolist() for i in resumed] == [i.input_ids.tolist() for i in fresh]


def test_a_killed_build_of_a_data_files_corpus_resumes_to_the_same_corpus(tmp_path, monkeypatch):
    """The prompts of a user's JSONL (chat turns among them), on a text model of one's own."""
    rows = [{"prompt": f"how do i cook rice {i}"} for i in range(8)] + [
        {"messages": [{"role": "user", "content": "how do i cook pasta"},
                      {"role": "assistant", "content": "boil it"},
                      {"role": "user", "content": f"what is a good sport {i}"}]} for i in range(4)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    target = load_target(str(save_tiny_text_model(tmp_path / "model")))
    asked = UserData(DataConfig(source=str(path)), target.spec).take(target, "train", 5, 6).inputs
    monkeypatch.setattr(corpus_module, "SHARD", 2)
    calls = []
    real = corpus_module.target_answers

    def killed_in_the_third_shard(target, chunk, *args):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise Killed
        return real(target, chunk, *args)

    monkeypatch.setattr(corpus_module, "target_answers", killed_in_the_third_shard)
    with pytest.raises(Killed):
        build_corpus(target, asked, 6, tmp_path / "cache")
    resumed = build_corpus(target, asked, 6, tmp_path / "cache")
    assert calls == [2, 2, 1, 1]  # the resume answered only the last shard
    monkeypatch.undo()
    fresh = build_corpus(target, asked, 6, tmp_path / "fresh")
    assert [i.input_ids.tolist() for i in resumed] == [i.input_ids.tolist() for i in fresh]


def test_given_answers_make_a_corpus_of_their_own(vlm, tmp_path, monkeypatch):
    asked = prompts(vlm)
    given = [[5, 6, 2], [7, 2], [8, 9, 10]]
    monkeypatch.setattr(corpus_module, "target_answers",
                        lambda *args: pytest.fail("given answers were generated"))
    corpus = build_corpus(vlm, asked, 6, tmp_path, responses=given)
    assert [item.response.tolist() for item in corpus] == given
    assert corpus_module.corpus_key(vlm, asked, 6, given) != corpus_module.corpus_key(vlm, asked, 6)
    assert corpus_module.corpus_key(vlm, asked, 6, given) != \
        corpus_module.corpus_key(vlm, asked, 6, [[5, 6, 2], [7, 2], [8, 9]])


def test_disk_features_equal_online_features(vlm, tmp_path):
    corpus = build_corpus(vlm, prompts(vlm), 6, tmp_path / "corpus")
    indexed = list(enumerate(corpus))
    online = FeatureSource(vlm, [1, 2], image_scores=True).batch(indexed)
    disk = FeatureSource(vlm, [1, 2], image_scores=True, cache_dir=tmp_path / "features")
    written, read = disk.batch(indexed), disk.batch(indexed)
    # per item: the base file, one per tap, the image scores
    assert len(list((tmp_path / "features").rglob("*.safetensors"))) == 4 * len(corpus)
    for batch in (written, read):
        for name in ("input_ids", "valid", "response", "image_mask", "image_scores",
                     "last_hidden"):
            assert torch.equal(getattr(batch, name), getattr(online, name)), name
        assert all(torch.equal(batch.hidden[t], online.hidden[t]) for t in (1, 2))
    assert online.image_mask.any() and online.image_scores[online.image_mask].gt(0).all()
    assert online.response.sum() == sum(len(item.response) for item in corpus)


def test_disk_features_of_other_taps_are_never_read_for_these(vlm, tmp_path):
    """One cache directory shared by runs with different taps (eagle, then dream_s): each
    gets the taps (and image scores) it asks for, as computed online."""
    corpus = build_corpus(vlm, prompts(vlm), 6, tmp_path / "corpus")
    indexed = list(enumerate(corpus))
    FeatureSource(vlm, [2], image_scores=False, cache_dir=tmp_path / "features").batch(indexed)
    wider = FeatureSource(vlm, [1, 2], image_scores=True, cache_dir=tmp_path / "features")
    online = FeatureSource(vlm, [1, 2], image_scores=True).batch(indexed)
    computed = []
    compute = wider._compute
    wider._compute = lambda item, taps, scores, images: computed.append((tuple(taps), scores)) \
        or compute(item, taps, scores, images)
    for batch in (wider.batch(indexed), wider.batch(indexed)):
        assert all(torch.equal(batch.hidden[t], online.hidden[t]) for t in (1, 2))
        assert torch.equal(batch.image_scores, online.image_scores)
    # tap 2 is read from the first run's files: only tap 1 and the scores are computed, once
    assert computed == [((1,), True)] * len(corpus)


def test_prompt_sets_are_deterministic_and_splits_disjoint():
    train, test = prompt_set("smollm2", "train"), prompt_set("smollm2", "test")
    assert len(train) >= 300 and len(test) >= 100 and prompt_set("smollm2", "train") == train
    assert not {text for text, _ in train} & {text for text, _ in test}
    shapes = prompt_set("shapes", "test", 4)
    assert len(shapes) == 4 and all(image is not None for _, image in shapes)
    with pytest.raises(ValueError, match="split"):
        prompt_set("shapes", "validation")


def test_a_cached_corpus_holding_a_pickle_payload_is_refused_in_one_line(vlm, tmp_path):
    build_corpus(vlm, prompts(vlm), 6, tmp_path)
    cached = next(tmp_path.glob("corpus-*/00000.pt"))
    pickle_payload(cached, tmp_path / "MARKER")
    with pytest.raises(SupernetError, match="never unpickles") as error:
        build_corpus(vlm, prompts(vlm), 6, tmp_path)
    assert str(cached) in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "MARKER").exists()


def test_merged_image_embeddings_are_a_file_of_their_own(vlm, tmp_path):
    """Drafts with image_input 'features' read the target's merged input embeddings at image
    positions: one more file per item, added beside an existing cache whose files stay as
    they are, equal to what the target's first layer receives there."""
    corpus = build_corpus(vlm, prompts(vlm), 6, tmp_path / "corpus")
    indexed = list(enumerate(corpus))
    features = tmp_path / "features"
    FeatureSource(vlm, [2], image_scores=False, cache_dir=features).batch(indexed)
    before = {path: path.stat().st_mtime_ns for path in features.rglob("*.safetensors")}
    reading = FeatureSource(vlm, [2], image_scores=False, cache_dir=features, image_embeds=True)
    computed = []
    compute = reading._compute
    reading._compute = lambda item, taps, scores, images: computed.append((tuple(taps), images)) \
        or compute(item, taps, scores, images)
    written, read = reading.batch(indexed), reading.batch(indexed)
    assert computed == [((), True)] * len(corpus)  # the images alone, once
    after = set(features.rglob("*.safetensors"))
    assert {path.name for path in after - set(before)} == {"images.safetensors"}
    assert len(after) == len(before) + len(corpus)
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in before.items())
    online = FeatureSource(vlm, [2], image_scores=False, image_embeds=True).batch(indexed)
    placeholder = vlm.embed_tokens(torch.tensor([vlm.image_token_id]))[0]
    for batch in (written, read):
        assert torch.equal(batch.image_embeds, online.image_embeds)
        assert torch.equal(batch.hidden[2], online.hidden[2])
    for row, item in enumerate(corpus):
        ids = item.input_ids[None]
        first_layer_input = vlm.forward(ids, cache=vlm.new_cache(), taps=(0,),
                                        model_kwargs=item.model_kwargs, logits="none").hidden[0]
        images = online.image_mask[row, : ids.shape[1]]
        got = online.image_embeds[row, : ids.shape[1]]
        assert images.any()
        torch.testing.assert_close(got[images], first_layer_input[0][images], rtol=0, atol=0)
        assert not torch.allclose(got[images], placeholder.expand_as(got[images]))
        assert not got[~images].any() and not online.image_embeds[row, ids.shape[1]:].any()
    assert FeatureSource(vlm, [2], image_scores=False).batch(indexed).image_embeds is None
