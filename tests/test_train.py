"""Killing a run anywhere and resuming it gives the weights of an uninterrupted run, bit for bit (CPU).

A property test draws the kill point, the checkpoint interval, the schedule and clipping for a tiny model
with an adversary whose step runs its own forward pass (so the restored RNG matters in both steps); a
slow test does the same for the standard convolutional β-VAE under bf16 autocast and channels-last.
"""
import multiprocessing
import re
import sys
import tempfile

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vaenb.core.config import seed_everything
from vaenb.train import load_checkpoint, read_log, save_checkpoint, train
from vaenb.models.vae import Regulariser, create_model


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

    def adversary_optimizer(self):
        return torch.optim.Adam(self.parameters(), lr=1e-4, betas=(0.5, 0.9))

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


# ---- issue 20: nothing lost, nothing silent --------------------------------------------------------------

TINY = dict(backbone="mlp", image_size=8, latent_dim=3, hidden_dim=8, lr=1e-3)
QUICK = dict(steps=4, batch_size=8, log_every=1, checkpoint_every=2, progress=False)


def tiny_model(seed=0, name="betavae", **overrides):
    seed_everything(seed)
    return create_model(name, **{**TINY, **overrides})


def _hold_run(out_dir, started, release):
    "Child process: train `out_dir`, pausing at the first log step until `release` is set."
    def pause(record):
        started.set()
        release.wait(120)
    train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, out_dir=out_dir, callbacks=[pause])


def test_second_process_on_the_same_run_fails_fast(tmp_path):
    "Point 3: while one process trains a run, `train` on the same out_dir in another process refuses at once."
    ctx = multiprocessing.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_run, args=(str(tmp_path), started, release))
    holder.start()
    try:
        assert started.wait(120), "the first process never reached its first log step"
        with pytest.raises(RuntimeError) as error:
            train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, out_dir=str(tmp_path))
        assert str(tmp_path) in str(error.value) and f"pid {holder.pid}" in str(error.value), str(error.value)
    finally:
        release.set()
        holder.join(120)
    assert holder.exitcode == 0
    assert read_log(tmp_path)["step"].tolist() == [1, 2, 3, 4]   # one writer: no duplicated or out-of-order rows
    train(tiny_model(), BernoulliNoise((1, 8, 8)), {**QUICK, "steps": 6}, out_dir=str(tmp_path))   # the lock died with its holder


def test_stale_temp_files_are_removed_when_a_run_starts(tmp_path):
    "Point 4: the temporary files of killed atomic writes go; files with other names stay."
    stale = [".checkpoint.pt.k1ll_3d0.tmp", ".metrics.jsonl.abcd1234.tmp", ".config.json.zzzzzzzz.tmp"]
    kept = [".checkpoint.pt.keep", "notes.tmp", ".checkpoint.pt.short.tmp", ".other.pt.abcd1234.tmp"]
    for name in stale + kept: (tmp_path / name).write_bytes(b"partial")
    train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, out_dir=str(tmp_path))
    left = {p.name for p in tmp_path.iterdir()}
    assert not left & set(stale) and set(kept) <= left


def test_the_documented_pattern_is_reproducible():
    "Point 5: `create_model(..., seed=s)` then `train(..., seed=s)` gives the same tensors whatever ran before."
    def documented(seed):
        model = create_model("betavae", seed=seed, **TINY)
        return train(model, BernoulliNoise((1, 8, 8)), steps=6, batch_size=8, seed=seed, log_every=3, progress=False)
    torch.manual_seed(1)
    first = documented(3)
    torch.rand(100)   # the global generator moves between the runs
    second = documented(3)
    for k, v in first.model.state_dict().items(): assert torch.equal(v, second.model.state_dict()[k]), k
    assert first.metrics["loss"].tolist() == second.metrics["loss"].tolist()
    # the same numbers as the older pattern seed_everything(s); create_model(...); train(..., seed=s)
    older = train(tiny_model(3), BernoulliNoise((1, 8, 8)), steps=6, batch_size=8, seed=3, log_every=3, progress=False)
    for k, v in first.model.state_dict().items(): assert torch.equal(v, older.model.state_dict()[k]), k


def test_a_model_with_unseeded_weights_is_refused():
    torch.rand(1)   # whatever seeded the generator before, it has drawn since
    model = create_model("betavae", **TINY)
    with pytest.raises(ValueError, match=r"train: seed=3 cannot reproduce this run: .* create_model\(\.\.\., seed=3\)"):
        train(model, BernoulliNoise((1, 8, 8)), steps=2, batch_size=8, seed=3, progress=False)


def test_a_flipped_byte_in_a_checkpoint_is_an_error(tmp_path):
    "Point 7: a checkpoint whose tensor data changed after writing is refused, naming the file."
    result = train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, out_dir=str(tmp_path))
    path = tmp_path / "checkpoint.pt"
    weights = max(result.model.state_dict().values(), key=torch.numel).numpy().tobytes()   # the largest weight matrix
    data = bytearray(path.read_bytes())
    at = data.find(weights[:64])
    assert at > 0, "the weights are stored verbatim"
    data[at + 10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(path))}: corrupt"):
        load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="corrupt"):
        train(tiny_model(), BernoulliNoise((1, 8, 8)), {**QUICK, "steps": 6}, out_dir=str(tmp_path))


def test_non_finite_optimiser_state_is_never_written(tmp_path):
    "Point 7: finite weights with a NaN in Adam's moments make no checkpoint."
    result = train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK)
    optimizers = result.model.make_optimizers()
    optimizers["model"].load_state_dict(load_checkpoint_free_state(result))
    next(iter(optimizers["model"].state.values()))["exp_avg"].view(-1)[0] = float("nan")
    with pytest.raises(FloatingPointError, match="model optimiser state 0.exp_avg"):
        save_checkpoint(tmp_path / "checkpoint.pt", result.model, optimizers, 4, result.config)
    assert not (tmp_path / "checkpoint.pt").exists()


def load_checkpoint_free_state(result):
    "An Adam state for `result.model` with moments in every slot (one real step on a batch)."
    opt = result.model.make_optimizers()["model"]
    result.model.loss(BernoulliNoise((1, 8, 8)).batch(0, 8, 0))["loss"].backward()
    opt.step()
    return opt.state_dict()


class NaNBuffer(Regulariser):
    "A zero term whose running buffer turns NaN at step `at`: the weights and the loss stay finite."
    def __init__(self, at):
        super().__init__()
        self.at = at
        self.register_buffer("running", torch.zeros(()))

    def terms(self, model, x, out, step):
        if step >= self.at: self.running.fill_(float("nan"))
        return {"zero": 0 * out["z"].sum()}, {}


def test_the_kept_checkpoint_is_the_last_finite_one(tmp_path):
    "Point 7: the message names a checkpoint that really is finite, at the step it says."
    model = tiny_model()
    model.regularisers["nan_buffer"] = NaNBuffer(at=5)
    with pytest.raises(FloatingPointError) as error:
        train(model, BernoulliNoise((1, 8, 8)), {**QUICK, "steps": 8}, out_dir=str(tmp_path))
    assert "nan_buffer.running" in str(error.value) and "the last good checkpoint (step 4) is kept" in str(error.value), str(error.value)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_non_finite_checkpoint_is_not_resumed(tmp_path):
    "Point 7: a NaN checkpoint from before the check (no checksum) is refused, not called the last good one."
    train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, out_dir=str(tmp_path))
    state = load_checkpoint(tmp_path)
    state["model"]["decoder.net.0.weight"].fill_(float("nan"))
    torch.save(state, tmp_path / "checkpoint.pt")   # the format of vaenb before checksums
    with pytest.warns(UserWarning, match="without a checksum"), pytest.raises(FloatingPointError, match="cannot resume from non-finite"):
        train(tiny_model(), BernoulliNoise((1, 8, 8)), {**QUICK, "steps": 6}, out_dir=str(tmp_path))


class Images(BernoulliNoise):
    "BernoulliNoise images passed through `transform` (a dtype, a scale, a NaN)."
    def __init__(self, transform, image_shape=(1, 8, 8)):
        super().__init__(image_shape)
        self.transform = transform

    def batch(self, step, batch_size, seed):
        return self.transform(super().batch(step, batch_size, seed))


@pytest.mark.parametrize("transform, error, message", [
    (lambda x: (255 * x).to(torch.uint8), TypeError, "found dtype torch.uint8; divide 8-bit images by 255"),
    (lambda x: 255 * x, ValueError, r"pixel values span \[0, 255\], but the bernoulli reconstruction of VAE expects images in \[0, 1\]"),
    (lambda x: x.index_fill(0, torch.tensor([3]), float("nan")), ValueError, "64 pixel values are NaN or inf"),
    (lambda x: x[:0], ValueError, "expected 8 images, found 0"),
])
def test_bad_images_are_refused_before_the_first_step(transform, error, message):
    "Point 9: images the model cannot use fail with what was expected and found."
    with pytest.raises(error, match=message):
        train(tiny_model(), Images(transform), QUICK)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_precisions_are_converted(dtype):
    "Point 9: float64 and float16 images in [0, 1] train exactly like their float32 originals."
    reference = train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK)
    converted = train(tiny_model(), Images(lambda x: x.to(dtype)), QUICK)
    for k, v in reference.model.state_dict().items(): assert torch.equal(v, converted.model.state_dict()[k]), k


@pytest.mark.parametrize("name, extra, smallest", [
    ("factorvae", dict(tc_hidden=8, tc_layers=1), 2), ("dipvae1", {}, 2), ("betatcvae", {}, 2),
    ("factorqvae", dict(codebook_size=4, tc_hidden=8, tc_layers=2), 4), ("factordvae", dict(codebook_size=4, tc_hidden=8, tc_layers=2), 4),
])
def test_batches_too_small_for_the_estimators_are_refused(name, extra, smallest):
    "Point 9: a batch below the model's minimum is a config error naming batch_size and the part that needs more."
    with pytest.raises(ValueError, match=rf"TrainConfig.batch_size: expected an integer >= {smallest} for this {name} model .*found {smallest - 1}"):
        train(tiny_model(name=name, **extra), BernoulliNoise((1, 8, 8)), {**QUICK, "batch_size": smallest - 1})


def test_tensorboard_logger_writes_every_logged_scalar(tmp_path):
    "Issue 19 point 6: `--logger tensorboard` writes event files holding each logged term at its step."
    pytest.importorskip("tensorboard", reason="the optional `tensorboard` package (pip install 'vaenb[tensorboard]') is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vaenb.train import make_loggers
    loggers = make_loggers(["tensorboard"], tmp_path)
    result = train(tiny_model(), BernoulliNoise((1, 8, 8)), QUICK, callbacks=loggers)
    loggers[0].close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert {"loss", "recon", "kl", "lr", "images_per_s"} <= set(events.Tags()["scalars"])
    logged = events.Scalars("loss")
    assert [e.step for e in logged] == [1, 2, 3, 4]
    assert [e.value for e in logged] == pytest.approx(result.metrics["loss"].tolist(), rel=1e-6)


def test_a_missing_tensorboard_is_named_with_its_extra(monkeypatch):
    "Issue 19 point 6: without the `tensorboard` package the logger fails before training, naming the extra to install."
    from vaenb.core.config import ConfigError
    from vaenb.train import check_loggers
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # what an environment without tensorboard gives
    with pytest.raises(ConfigError, match=r"needs the `tensorboard` package.*pip install 'vaenb\[tensorboard\]'"):
        check_loggers(["tensorboard"])
    with pytest.raises(ConfigError, match=r"unknown name\(s\) \['wandb'\]; available loggers: tensorboard"):
        check_loggers(["wandb"])


def test_progress_file_follows_training(tmp_path):
    "Issue 19 point 2: the progress callback leaves the step, steps, images/s and the training time left in progress.json."
    from vaenb.train import ProgressCallback, TrainConfig, read_progress
    config = TrainConfig.from_dict({**QUICK, "out_dir": str(tmp_path)})
    seen = []
    train(tiny_model(), BernoulliNoise((1, 8, 8)), config, callbacks=[ProgressCallback(tmp_path, config), lambda row: seen.append(read_progress(tmp_path))])
    assert [(p["stage"], p["step"], p["steps"]) for p in seen] == [("train", s, 4) for s in (1, 2, 3, 4)]
    assert all(p["images_per_s"] > 0 for p in seen) and seen[0]["remaining_s"] > 0 and seen[-1]["remaining_s"] == 0
    assert not list(tmp_path.glob(".progress.json.*"))   # replaced atomically: no temporary file left
