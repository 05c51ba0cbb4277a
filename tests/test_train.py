"""Killing a run anywhere and resuming it gives the weights of an uninterrupted run, bit for bit (CPU).

A property test draws the kill point, the checkpoint interval, the schedule and clipping for a tiny model
with an adversary whose step runs its own forward pass (so the restored RNG matters in both steps); a
slow test does the same for the standard convolutional β-VAE under bf16 autocast and channels-last.
"""
import tempfile

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vaenb.core import seed_everything
from vaenb.train import load_checkpoint, read_log, train
from vaenb.vae import Regulariser, create_model


class BernoulliNoise:
    "Independent Bernoulli(0.25) pixels; `batch` is a pure function of (seed, step)."
    name = "noise"

    def __init__(self, image_shape):
        self.image_shape = image_shape

    def batch(self, step, batch_size, seed):
        g = torch.Generator().manual_seed(7919 * seed + step)
        return torch.bernoulli(torch.full((batch_size, *self.image_shape), 0.25), generator=g)


class LinearCritic(Regulariser):
    "A linear critic of z trained by the adversary optimiser on a fresh (random) forward pass."
    adversarial = True

    def __init__(self, latent_dim):
        super().__init__()
        self.critic = nn.Linear(latent_dim, 1)

    def terms(self, model, x, out, step):
        return {"critic": 0.1 * self.critic(out["z"]).mean()}, {}

    def adversary_loss(self, model, x, step):
        z = model(x)["z"].detach()
        return {"loss": F.softplus(self.critic(z)).mean() + F.softplus(-self.critic(torch.randn_like(z))).mean()}


class Stop(Exception):
    pass


def tiny_adversarial_model():
    seed_everything(0)
    model = create_model("betavae", backbone="mlp", image_size=8, latent_dim=2, hidden_dim=8, lr=1e-3)
    model.regularisers["critic"] = LinearCritic(2)
    return model


def run(make_model, data, config, out_dir, stop_at=None):
    "Train from `out_dir`'s checkpoint if any; an exception after log step `stop_at` plays the kill."
    def kill(record):
        if stop_at is not None and record["step"] >= stop_at: raise Stop
    try:
        return train(make_model(), data, config, out_dir=out_dir, callbacks=[kill])
    except Stop:
        return None


def assert_same_run(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa: assert torch.equal(sa[k], sb[k]), f"parameter {k} differs after resume"
    ca, cb = load_checkpoint(a.out_dir), load_checkpoint(b.out_dir)
    for name in ca["optimizers"]:
        for i, state in ca["optimizers"][name]["state"].items():
            for k, v in state.items(): assert torch.equal(v, cb["optimizers"][name]["state"][i][k]), f"{name} optimiser state {i}.{k} differs"
    la, lb = read_log(a.out_dir), read_log(b.out_dir)
    numbers = [c for c in la.columns if c not in ("time", "images_per_s")]
    assert la[numbers].equals(lb[numbers])


@settings(max_examples=6, deadline=None)
@given(steps=st.integers(4, 10), checkpoint_every=st.integers(1, 4), data=st.data(),
       schedule=st.sampled_from(["constant", "cosine"]), grad_clip=st.sampled_from([None, 0.5]))
def test_resume_anywhere_is_bit_exact(steps, checkpoint_every, data, schedule, grad_clip):
    stop_at = data.draw(st.integers(1, steps - 1), label="stop_at")
    config = dict(steps=steps, batch_size=8, log_every=1, checkpoint_every=checkpoint_every, lr_schedule=schedule,
                  lr_min=1e-5, grad_clip=grad_clip, progress=False)
    images = BernoulliNoise((1, 8, 8))
    with tempfile.TemporaryDirectory() as d:
        straight = run(tiny_adversarial_model, images, config, f"{d}/straight")
        assert run(tiny_adversarial_model, images, config, f"{d}/killed", stop_at=stop_at) is None
        resumed = run(tiny_adversarial_model, images, config, f"{d}/killed")
        assert resumed.start_step == stop_at // checkpoint_every * checkpoint_every
        assert_same_run(straight, resumed)


@pytest.mark.slow
@pytest.mark.parametrize("amp, channels_last", [("off", False), ("bf16", True)])
def test_resume_conv_betavae_is_bit_exact(amp, channels_last):
    def make_model():
        seed_everything(0)
        return create_model("betavae")
    config = dict(steps=6, batch_size=8, log_every=1, checkpoint_every=2, amp=amp, channels_last=channels_last, progress=False)
    images = BernoulliNoise((1, 64, 64))
    with tempfile.TemporaryDirectory() as d:
        straight = run(make_model, images, config, f"{d}/straight")
        assert run(make_model, images, config, f"{d}/killed", stop_at=5) is None
        resumed = run(make_model, images, config, f"{d}/killed")
        assert resumed.start_step == 4
        assert_same_run(straight, resumed)


def test_factorvae_resume_is_bit_exact():
    "The registered FactorVAE (TC discriminator, second optimiser) resumes bit-exactly through the same loop."
    def make_model():
        seed_everything(0)
        return create_model("factorvae", backbone="mlp", image_size=8, latent_dim=3, hidden_dim=8, tc_hidden=16, tc_layers=2)
    config = dict(steps=6, batch_size=8, log_every=1, checkpoint_every=2, progress=False)
    images = BernoulliNoise((1, 8, 8))
    with tempfile.TemporaryDirectory() as d:
        straight = run(make_model, images, config, f"{d}/straight")
        assert "adversary" in load_checkpoint(straight.out_dir)["optimizers"]
        assert any(c.startswith("adversary/") for c in straight.metrics.columns)
        assert run(make_model, images, config, f"{d}/killed", stop_at=3) is None
        assert_same_run(straight, run(make_model, images, config, f"{d}/killed"))
