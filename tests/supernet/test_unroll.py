"""The training-time test unroll computes what drafting beyond a verified prefix computes."""

import random

import pytest
import torch
from test_gradients import random_batch

from supernet.loss import LossConfig, shift_right, unroll_mask, unrolled_loss
from supernet.superdraft import SuperDraft


@pytest.fixture(scope="module")
def superdraft(deep_target, dream_s):
    superdraft = SuperDraft(dream_s, deep_target)
    with torch.no_grad():
        for name in superdraft.shared_names():
            if name.endswith("_gate"):
                superdraft.shared(name).fill_(0.6)
    return superdraft


@pytest.mark.parametrize("interaction", ["concat", "add", "cross_attention"])
def test_step_k_at_slot_p_equals_drafting_k_slots_after_slot_p_minus_k(superdraft, dream_s,
                                                                        interaction):
    arch = next(a for a in (dream_s.sample(random.Random(i)) for i in range(200))
                if a.interaction == interaction and a.num_layers > 1)
    superdraft.activate(arch)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 128, (1, 10), generator=generator)
    hidden = {tap: torch.randn(1, 10, 32, generator=generator) for tap in range(6)}
    features = superdraft.fuse(hidden)
    positions = torch.arange(1, 11)[None]
    kept = torch.ones(1, 10, dtype=torch.bool)
    with torch.no_grad():
        cache, steps, previous = superdraft.new_cache(), [], None
        for k in range(3):
            step_features = features if k == 0 else shift_right(previous)
            out = superdraft(tokens, step_features, positions, cache, unroll_mask(kept, k))
            steps.append(out)
            previous = out.hidden
        for end in (2, 5):  # the verified prefix: slots 0..end with the target's features
            live = superdraft.new_cache()
            out = superdraft(tokens[:, : end + 1], features[:, : end + 1],
                             positions[:, : end + 1], live)
            for k in (1, 2):
                slot = end + k
                out = superdraft(tokens[:, slot: slot + 1], out.hidden[:, -1:],
                                 positions[:, slot: slot + 1], live)
                torch.testing.assert_close(out.logits[:, 0], steps[k].logits[:, slot],
                                           rtol=1e-4, atol=1e-5)


def test_a_teacher_equal_to_the_student_gives_zero_kl(superdraft, dream_s, deep_target):
    """In-place distillation: the KL term reads the given teacher logits, not the target's."""
    arch = dream_s.largest()
    batch = random_batch(deep_target)
    cfg = LossConfig(unroll_steps=2)
    with torch.no_grad():
        own = unrolled_loss(superdraft.activate(arch), batch, cfg, keep_logits=True)
        distilled = unrolled_loss(superdraft, batch, cfg, teacher_logits=own.step_logits)
    assert own.metrics["kl_0"] > 1e-3
    assert distilled.metrics["kl_0"] == pytest.approx(0, abs=1e-6)
    assert distilled.metrics["kl_1"] == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("reduced", [False, True])
def test_step_zero_kl_and_agreement_are_those_of_full_logits(superdraft, dream_s, deep_target,
                                                             reduced):
    """The loss computes logits for the predicting slots only and the target's side once; its
    step-0 KL and top-1 agreement equal the plain formula over every slot's full logits
    (restricted and renormalised to a reduced vocabulary), averaged over the counted slots."""
    arch = next(a for a in (dream_s.sample(random.Random(i)) for i in range(200))
                if a.interaction == "add" and bool(a.draft_vocab_size) == reduced)
    batch = random_batch(deep_target)
    with torch.no_grad():
        result = unrolled_loss(superdraft.activate(arch), batch, LossConfig(unroll_steps=2))
        slots = batch.input_ids.shape[1] - 1
        features = superdraft.fuse({tap: h[:, :slots] for tap, h in batch.hidden.items()})
        positions = torch.arange(1, slots + 1).expand(batch.input_ids.shape[0], slots)
        kept = torch.ones_like(batch.valid[:, 1:])
        if arch.vision_keep_ratio < 1 and batch.image_scores is not None:
            pytest.skip("the reference below keeps every slot")
        out = superdraft(batch.input_ids[:, 1:], features, positions, None, unroll_mask(kept, 0))
        teacher = deep_target.lm_head(batch.last_hidden[:, 1:]).float()
        if reduced:
            _, d2t, _ = superdraft.vocabulary(arch.draft_vocab_size)
            teacher = teacher[..., torch.arange(arch.draft_vocab_size) + d2t]
        p = torch.log_softmax(teacher, -1)
        kl = (p.exp() * (p - torch.log_softmax(out.logits.float(), -1))).sum(-1)
        agree = (out.logits.argmax(-1) == teacher.argmax(-1)).float()
        counted = torch.zeros_like(batch.valid[:, 1:])
        counted[:, :-1] = batch.response[:, 2:]
        weights = counted.float()

        def mean(values):
            return ((values * weights).sum(1) / weights.sum(1).clamp(min=1)).mean()

    assert result.metrics["kl_0"] == pytest.approx(float(mean(kl)), rel=1e-4)
    assert result.metrics["top1_0"] == pytest.approx(float(mean(agree)), abs=1e-6)


def test_a_full_vocabulary_subnet_learns_over_the_kl_vocabulary(dream_s, deep_target):
    """kl_vocabulary: the full-vocabulary subnet's logits are computed for those tokens only, and
    its KL and agreement are the full ones restricted (and renormalised) to them, teacher and
    student alike; a reduced-vocabulary subnet keeps its own."""
    vocabulary = list(range(3, deep_target.vocab_size, 3))
    restricted = SuperDraft(dream_s, deep_target, kl_vocabulary=vocabulary)
    everything = SuperDraft(dream_s, deep_target)
    everything.load_state_dict(restricted.state_dict())
    arch = next(a for a in (dream_s.sample(random.Random(i)) for i in range(200))
                if a.interaction == "concat" and a.draft_vocab_size is None)
    batch, cfg = random_batch(deep_target), LossConfig(unroll_steps=1)
    slots = batch.input_ids.shape[1] - 1
    with torch.no_grad():
        result = unrolled_loss(restricted.activate(arch), batch, cfg)
        features = everything.activate(arch).fuse(
            {tap: h[:, :slots] for tap, h in batch.hidden.items()})
        positions = torch.arange(1, slots + 1).expand(batch.input_ids.shape[0], slots)
        out = everything(batch.input_ids[:, 1:], features, positions, None,
                         unroll_mask(torch.ones_like(batch.valid[:, 1:]), 0))
        restricted_out = restricted(batch.input_ids[:, 1:], features, positions, None,
                                    unroll_mask(torch.ones_like(batch.valid[:, 1:]), 0))
        columns = torch.tensor(vocabulary)
        assert restricted_out.logits.shape[-1] == len(vocabulary)
        torch.testing.assert_close(restricted_out.logits, out.logits[..., columns])
        teacher = deep_target.lm_head(batch.last_hidden[:, 1:]).float()[..., columns]
        p = torch.log_softmax(teacher, -1)
        student = out.logits[..., columns].float()
        kl = (p.exp() * (p - torch.log_softmax(student, -1))).sum(-1)
        counted = torch.zeros_like(batch.valid[:, 1:])
        counted[:, :-1] = batch.response[:, 2:]
        weights = counted.float()
        expected = ((kl * weights).sum(1) / weights.sum(1).clamp(min=1)).mean()
    assert result.metrics["kl_0"] == pytest.approx(float(expected), rel=1e-4)
    reduced = next(a for a in (dream_s.sample(random.Random(i)) for i in range(200))
                   if a.draft_vocab_size)
    with torch.no_grad():
        assert unrolled_loss(restricted.activate(reduced), batch, cfg).metrics["kl_0"] == \
            pytest.approx(unrolled_loss(everything.activate(reduced), batch, cfg)
                          .metrics["kl_0"], rel=1e-5)


def test_subnets_of_a_step_share_the_targets_side_of_the_kl(superdraft, dream_s, deep_target,
                                                            monkeypatch):
    """The target's head runs once per batch and draft vocabulary, however many subnets train on
    that batch, and sharing it changes no subnet's loss."""
    batch, cfg = random_batch(deep_target), LossConfig(unroll_steps=2)
    calls, head = [], deep_target.lm_head
    predicts = torch.zeros_like(batch.valid[:, 1:])  # slots predicting a response token
    predicts[:, :-1] = batch.response[:, 2:]
    target_rows = batch.last_hidden[:, 1:][predicts]

    def counting(hidden, columns=None):  # the drafts' full heads call it too: count the target's
        calls.extend([1] if torch.equal(hidden, target_rows) else [])
        return head(hidden, columns)

    monkeypatch.setattr(deep_target, "lm_head", counting)
    archs = [a for a in (dream_s.sample(random.Random(i)) for i in range(40))]
    full = [a for a in archs if a.draft_vocab_size is None][:2]
    reduced = [a for a in archs if a.draft_vocab_size][:2]
    teachers = {}
    with torch.no_grad():
        shared = [unrolled_loss(superdraft.activate(a), batch, cfg, teachers=teachers).loss
                  for a in full + reduced]
        assert len(calls) == 2 and set(teachers) == {None, reduced[0].draft_vocab_size}
        alone = [unrolled_loss(superdraft.activate(a), batch, cfg).loss for a in full + reduced]
    for s, a in zip(shared, alone, strict=True):
        assert float(s) == pytest.approx(float(a), rel=1e-6)
