"""Systems (variants with several networks): labelled and two-domain data, the protocol, the
trainer's handling of them (exact resume, checks), `sample` / `evaluate`, and cgan / acgan's
pieces. How well cgan and acgan train is measured by scripts/system_quality.py."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gankernels import variants
from gankernels.train import TrainConfig
from gankernels.train.cli import Trained
from gankernels.train.data import (
    TWO_DOMAIN_SETS,
    load_data,
    sobel_edges,
)
from gankernels.train.metrics import HQ_STDS, label_accuracy
from gankernels.train.models import (
    ConditionalGenerator,
    ModelSpec,
    balanced_labels,
    critic_trunk,
    generate,
    generate_conditional,
)
from gankernels.train.trainer import make_trainer, train
from gankernels.variants import Batch, OptimizerGroup, System


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(out, **kw) -> TrainConfig:
    base = dict(
        variant="cgan",
        data="ring8",
        out=str(out),
        steps=8,
        batch_size=32,
        hidden=16,
        depth=2,
        z_dim=2,
        impl="ref",
        n_eval=100,
        progress=False,
        plots=False,
        verbose=False,
        log_every=2,
    )
    base.update(kw)
    return TrainConfig(**base)


# --- data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_toy_labels_are_the_modes_drawn_from(name):
    ds = load_data(name, n=5000)
    assert ds.n_classes == ds.centres.shape[0]
    assert torch.bincount(ds.labels).min() > 0
    own = (ds.data - ds.centres[ds.labels]).norm(dim=1)
    nearest = torch.cdist(ds.data, ds.centres).argmin(1)
    assert own.max() < 6 * ds.std
    assert torch.equal(nearest, ds.labels)


def test_digits_carry_their_digit():
    ds = load_data("digits")
    assert ds.labels.dtype == torch.int64 and ds.n_classes == 10
    assert ds.labels[:10].tolist() == list(range(10))  # sklearn's first ten are 0..9


def test_two_domain_sets_pair_each_digit_row_for_row():
    digits = load_data("digits").data
    inverted = load_data("digits-inverted")
    assert torch.equal(inverted.data, digits) and torch.equal(inverted.second, -digits)
    rotated = load_data("digits-rotated").second
    assert torch.equal(rotated[:, :, 0, :], digits[:, :, :, -1])  # top row <- right column
    assert torch.equal(torch.rot90(rotated, -1, dims=(2, 3)), digits)
    edges = load_data("digits-edges").second
    assert edges.shape == digits.shape and edges.min() >= -1 and edges.max() == 1
    # Flat regions have no edges: a blank image maps to the lowest value everywhere.
    blank = torch.full((1, 1, 8, 8), -1.0)
    assert torch.equal(sobel_edges(torch.cat([blank, digits[:1]]))[0], blank[0])
    for name in TWO_DOMAIN_SETS:
        assert torch.equal(load_data(name).labels, load_data("digits").labels)


def test_shard_all_keeps_rows_labels_and_pairs_together():
    ds = load_data("digits-rotated")
    part = ds.shard_all(1, 3)
    assert torch.equal(part.data, ds.data[1::3])
    assert torch.equal(part.labels, ds.labels[1::3])
    assert torch.equal(part.second, ds.second[1::3])


def test_labels_must_match_the_rows():
    from gankernels.train.data import DataSet

    with pytest.raises(ValueError, match="labels has 3 rows, the data 4"):
        DataSet("x", torch.zeros(4, 2), "points", labels=torch.zeros(3, dtype=torch.long))


# --- metrics and models -------------------------------------------------------------------------


def test_label_accuracy_on_real_samples_and_wrong_labels():
    ring = load_data("ring8", n=2000)
    # In 2-D a Gaussian sample lies within 3 std of its centre with probability
    # 1 - exp(-9/2) = 98.9 %: the real data's own accuracy.
    assert 98.0 < label_accuracy(ring.data, ring.labels, ring) < 99.7
    assert label_accuracy(ring.data, (ring.labels + 1) % 8, ring) == 0.0
    # A sample at its mode's centre plus 3.5 std is the right mode but not high quality.
    off = ring.centres[:1] + torch.tensor([[HQ_STDS * ring.std * 1.2, 0.0]])
    assert label_accuracy(off, torch.tensor([0]), ring) == 0.0
    digits = load_data("digits")
    assert label_accuracy(digits.data, digits.labels, digits) > 95.0
    assert label_accuracy(digits.data, (digits.labels + 1) % 10, digits) < 5.0
    with pytest.raises(ValueError, match="no class can be told"):
        swiss = load_data("swissroll", n=10)
        label_accuracy(swiss.data, torch.zeros(10, dtype=torch.long), swiss)


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (3, 5, 5)])
def test_conditional_generator_and_critic_trunk(shape):
    spec = ModelSpec(shape, 4, 32, 2, bounded=True)
    torch.manual_seed(0)
    g = ConditionalGenerator(spec, 3)
    z = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = g(z, y)
    assert out.shape == (6, *shape)
    # the label changes the sample (it enters the first layer)
    assert not torch.allclose(out, g(z, (y + 1) % 3))
    body, width = critic_trunk(spec)
    assert body(out).shape == (6, width)
    labels = balanced_labels(7, 3)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    # generate_conditional draws the same z stream as generate
    samples = generate_conditional(g, 4, labels, seed=5)
    plain = generate(nn.Identity(), 4, 7, seed=5)  # the identity "generator" returns z
    assert torch.allclose(samples, g(plain, labels).detach())


# --- the protocol -------------------------------------------------------------------------------


def test_system_declares_what_it_needs():
    with pytest.raises(ValueError, match="needs of variant 'x'"):
        System("x", "bad", needs=("colour",))
    with pytest.raises(ValueError, match="not both"):
        System("x", "bad", needs=("pairs", "domains"))
    cgan = variants.get("cgan")
    assert isinstance(cgan, System) and cgan.needs == ("labels",)
    with pytest.raises(TypeError, match="is a System"):
        cgan.critic_loss(None, None, None, None, {})


def test_the_plain_trainer_refuses_a_system(tmp_path):
    from gankernels.train import Trainer

    with pytest.raises(TypeError, match="'cgan' is a System: train it with"):
        Trainer(tiny(tmp_path))


def test_data_without_labels_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"'cgan' needs class labels, which 'swissroll'"):
        train(tiny(tmp_path, data="swissroll"))


class PairedEcho(System):
    """A minimal two-domain system: a translator t(x_a) -> x_b trained by L1 on pairs, and a
    critic on domain B; it records what the trainer gave it."""

    def __init__(self, needs=("pairs",)):
        super().__init__("paired-echo", "test system", variants.Defaults(), needs=needs)
        self.seen: list[Batch] = []

    def build(self, spec, data):
        d = data.data[0].numel()
        return {
            "translator": nn.Sequential(nn.Flatten(), nn.Linear(d, d)),
            "critic": nn.Sequential(nn.Flatten(), nn.Linear(d, 1)),
        }

    def optimizers(self):
        return {
            "translator": OptimizerGroup(("translator",), "generator"),
            "critic": OptimizerGroup(("critic",), "critic"),
        }

    def train_step(self, run):
        b = run.batch()
        self.seen.append(b)
        t, c = run.nets["translator"], run.nets["critic"]
        loss_c = c(b.second).mean() - c(t(b.x).detach().reshape(b.second.shape)).mean()
        run.update("critic", loss_c)
        loss_t = (t(b.x).reshape(b.second.shape) - b.second).abs().mean()
        run.update("translator", loss_t)
        return loss_c.detach(), loss_t.detach(), {"l1": loss_t.detach()}

    def generate(self, nets, spec, data, n, seed, device="cpu"):
        return nets["translator"](data.data[:n].to(device)).reshape(-1, *spec.sample_shape)

    def evaluate(self, nets, spec, data, reference, n, seed, device="cpu"):
        out = self.generate(nets, spec, data, n, seed, device)
        return {"l1": float((out - data.second[:n]).abs().mean())}


@pytest.mark.parametrize("needs", [("pairs",), ("domains",)])
def test_the_trainer_draws_pairs_or_independent_domains(tmp_path, needs):
    system = PairedEcho(needs)
    result = train(tiny(tmp_path, data="digits-inverted", steps=4), variant=system)
    ds = load_data("digits-inverted")
    assert len(system.seen) == 4 and set(result.networks) == {"translator", "critic"}
    assert result.generator is None and result.critic is not None
    for b in system.seen:
        paired = torch.equal(b.second, -b.x)
        assert paired == (needs == ("pairs",))
        assert b.labels is not None and b.z.shape == (32, 2)
        rows = (ds.data.reshape(len(ds.data), -1)[None] == b.x.reshape(32, 1, -1)).all(-1)
        assert torch.equal(ds.labels[rows.float().argmax(1)], b.labels)
    assert "l1" in result.metrics
    # updates of a "critic" group count as critic steps
    resumed = make_trainer(tiny(tmp_path, data="digits-inverted", resume=True), variant=system)
    assert resumed.state["step"] == 4


def test_a_system_that_lacks_a_second_domain_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs a second domain, which 'digits'"):
        train(tiny(tmp_path, data="digits"), variant=PairedEcho())


def test_bad_systems_fail_with_their_name(tmp_path):
    class NoModules(PairedEcho):
        def build(self, spec, data):
            return {"translator": "not a module"}

    class BadGroup(PairedEcho):
        def optimizers(self):
            return {"x": OptimizerGroup(("missing",), "generator")}

    class BadUpdate(PairedEcho):
        def train_step(self, run):
            b = run.batch()
            run.update("nope", run.nets["critic"](b.x).mean())

    data = dict(data="digits-inverted")
    with pytest.raises(TypeError, match="'paired-echo': build returned str for 'translator'"):
        train(tiny(tmp_path / "a", **data), variant=NoModules())
    with pytest.raises(ValueError, match="optimiser 'x' must name some of the networks"):
        train(tiny(tmp_path / "b", **data), variant=BadGroup())
    with pytest.raises(KeyError, match="has no optimiser 'nope'"):
        train(tiny(tmp_path / "c", **data), variant=BadUpdate())


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_exact_resume(tmp_path, name):
    # A constant learning rate: a linear decay is tied to the total step count.
    whole = train(tiny(tmp_path / "whole", variant=name, steps=10, lr_decay="none"))
    train(tiny(tmp_path / "split", variant=name, steps=5, lr_decay="none"))
    resumed = make_trainer(tiny(tmp_path / "split", variant=name, steps=10, resume=True))
    assert resumed.step == 5
    result = resumed.run()
    for net in whole.networks:
        a = whole.networks[net].state_dict()
        b = result.networks[net].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {net}.{key} differs after resume"
    ckpt = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    assert set(ckpt["networks"]) == {"generator", "critic"}
    assert set(ckpt["optimizers"]) == {"generator", "critic"}
    assert ckpt["data"]["n_classes"] == 8


def test_cgan_critic_projects_the_label_and_is_spectrally_normalised():
    cgan = variants.get("cgan")
    spec = ModelSpec((2,), 2, 16, 2)
    torch.manual_seed(0)
    critic = cgan.build(spec, load_data("ring8", n=100))["critic"]
    x = torch.randn(5, 2)
    y = torch.tensor([0, 1, 2, 3, 4])
    with torch.no_grad():
        for _ in range(50):  # converge the power iterations
            critic(x, y)
    critic.eval()
    with torch.no_grad():
        h = critic.features(x)
        expected = critic.psi(h).squeeze(1) + (critic.embed(y) * h).sum(1)
        assert torch.allclose(critic(x, y), expected)
        sigma = torch.linalg.matrix_norm(critic.embed.weight, ord=2)
        assert abs(float(sigma) - 1.0) < 1e-3
        for layer in critic.features:
            if isinstance(layer, nn.Linear):
                assert abs(float(torch.linalg.matrix_norm(layer.weight, ord=2)) - 1) < 1e-3


def test_acgan_losses_in_closed_form():
    """acgan's critic loss on a critic whose outputs are fixed: BCE terms + class CE terms."""
    acgan = variants.get("acgan")

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            s = x[:, 0] + self.w
            return s, torch.stack([x[:, 0], x[:, 1]], 1)

    class Gen(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, z, y):
            return z * self.w

    captured = {}

    class Run:
        nets = {"generator": Gen(), "critic": Fixed()}
        state = {"step": 0}
        impl = "ref"
        defaults = acgan.defaults
        step = 0

        def batch(self):
            x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
            return Batch(x, torch.tensor([0, 1]), None, torch.tensor([[-1.0, 0.0], [0.0, 1.0]]))

        def update(self, group, loss):
            captured[group] = loss.detach()

    acgan.train_step(Run())
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    z = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    sp = nn.functional.softplus
    ce = nn.functional.cross_entropy
    critic = sp(-x[:, 0]).mean() + sp(z[:, 0]).mean() + ce(x, y) + ce(z, y)
    generator = sp(-z[:, 0]).mean() + ce(z, y)
    assert torch.allclose(captured["critic"], critic)
    assert torch.allclose(captured["generator"], generator)


# --- sample / evaluate --------------------------------------------------------------------------


def test_sample_and_evaluate_a_system_checkpoint(tmp_path, capsys):
    from gankernels.__main__ import main

    train(tiny(tmp_path / "run", steps=4))
    trained = Trained(str(tmp_path / "run"))
    assert trained.system is not None and set(trained.nets) == {"generator", "critic"}
    out = tmp_path / "s.pt"
    assert (
        main(["sample", "--checkpoint", str(tmp_path / "run"), "--n", "17", "--out", str(out)]) == 0
    )
    samples = torch.load(out, weights_only=True)
    assert samples.shape == (17, 2)
    assert torch.equal(samples, trained.generate(17, 0))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--n", "100", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"modes", "hq", "label_accuracy"} <= set(metrics)


# --- registration and defaults ------------------------------------------------------------------

# name -> what `gankernels variants` says it needs
SYSTEMS = {
    "cgan": ", needs labels",
    "acgan": ", needs labels",
    "pix2pix": ", needs pairs",
    "cyclegan": ", needs domains",
    "aae": "",
    "bigan": "",
    "cogan": ", needs domains",
    "progan": "",
}


def test_built_in_systems_are_entry_points_and_listed(capsys):
    from importlib.metadata import entry_points

    from gankernels.__main__ import main

    names = {ep.name for ep in entry_points(group=variants.GROUP)}
    assert set(SYSTEMS) <= names
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    for name, needs in SYSTEMS.items():
        assert f"{name}  (gankernels, system{needs})" in out
        assert isinstance(variants.get(name), System)
        assert variants.distribution_of(name) == "gankernels"
    assert variants.failed() == []


def test_system_defaults_follow_docs_math_section_5():
    cgan = variants.get("cgan").defaults
    assert (cgan.n_critic, cgan.optimizer, cgan.lr_critic, cgan.lr_generator, cgan.betas) == (
        5,
        "adam",
        2e-4,
        2e-4,
        (0.0, 0.9),
    )
    acgan = variants.get("acgan").defaults
    assert (acgan.n_critic, acgan.lr_critic, acgan.lr_generator, acgan.betas) == (
        1,
        2e-4,
        2e-4,
        (0.5, 0.999),
    )
    assert acgan.options == {"class_weight": 1.0}
    with pytest.raises(ValueError, match="option 'class_weight' of variant 'acgan'"):
        variants.get("acgan").configure(class_weight=-1.0)


# --- every built-in system ----------------------------------------------------------------------

# Each system on the smallest built-in data it trains on.
ON = {
    "cgan": "ring8",
    "acgan": "ring8",
    "pix2pix": "digits-edges",
    "cyclegan": "digits-inverted",
    "aae": "ring8",
    "bigan": "ring8",
    "cogan": "digits-inverted",
    "progan": "digits",
}


@pytest.mark.parametrize("name", sorted(ON))
def test_every_network_trains_and_the_run_resumes_exactly(tmp_path, name, monkeypatch):
    from gankernels.train import checkpoint as ckpt_module

    cfg = dict(variant=name, data=ON[name], n_eval=64, steps=6, ckpt_every=3, eval_every=6)
    first = make_trainer(tiny(tmp_path / "whole", **cfg))
    initial = {k: [p.detach().clone() for p in v.parameters()] for k, v in first.nets.items()}
    whole = first.run()
    for net, params in initial.items():
        after = whole.networks[net].parameters()
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), (
            f"{name}: network {net!r} did not train"
        )
    assert all(torch.isfinite(torch.tensor(v)) for v in whole.metrics.values()), whole.metrics
    # Killed after the step-3 checkpoint, then resumed: the learning-rate decay and any
    # schedule (progan's growth) are functions of (step, steps), so the run continues exactly.
    real_save = torch.save
    calls = {"n": 0}

    def die_on_second_save(obj, f):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(ckpt_module.torch, "save", die_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path / "split", **cfg))
    monkeypatch.undo()
    resumed = make_trainer(tiny(tmp_path / "split", resume=True, **cfg))
    assert resumed.step == 3
    resumed = resumed.run()
    for net in whole.networks:
        a, b = whole.networks[net].state_dict(), resumed.networks[net].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {net}.{key} differs after resume"
    sampled = Trained(str(tmp_path / "whole")).generate(5, seed=1)
    assert sampled.shape == (5, *load_data(ON[name], n=10).sample_shape)


class Recorder:
    """A StepContext that hands out one fixed batch and records the losses instead of stepping,
    so that a test can recompute them from the same networks."""

    def __init__(self, system, data_name, batch=6):
        self.data = load_data(data_name, n=100)
        shape = self.data.sample_shape
        self.spec = ModelSpec(shape, 3, 16, 2, bounded=len(shape) == 3)
        torch.manual_seed(0)
        self.nets = system.build(self.spec, self.data)
        self.defaults = system.defaults
        self.state, self.impl, self.step, self.steps = {"step": 0}, "ref", 0, 10
        rows = torch.arange(batch)
        second = None if self.data.second is None else self.data.second[rows + 7]
        self.fixed = Batch(
            self.data.data[rows], self.data.labels[rows], second, torch.randn(batch, 3)
        )
        self.losses = {}

    def batch(self):
        return self.fixed

    def update(self, group, loss):
        self.losses[group] = loss.detach()


sp = nn.functional.softplus


def test_pix2pix_losses():
    run = Recorder(variants.get("pix2pix"), "digits-edges")
    run.fixed = run.fixed._replace(second=run.data.second[: len(run.fixed.x)])  # pairs
    variants.get("pix2pix").train_step(run)
    G, D = run.nets["generator"], run.nets["critic"]
    a, b = run.fixed.x, run.fixed.second
    fake = G(b)
    real_out, fake_out = D(torch.cat([b, a], 1)), D(torch.cat([b, fake], 1))
    assert real_out.shape == (len(a), 1, 2, 2)  # one score per patch
    critic = 0.5 * (sp(-real_out).mean() + sp(fake_out).mean())
    generator = sp(-fake_out).mean() + 100.0 * (fake - a).abs().mean()
    torch.testing.assert_close(run.losses["critic"], critic)
    torch.testing.assert_close(run.losses["generator"], generator)


def test_cyclegan_losses_with_and_without_identity():
    for cycle_w, identity in ((10.0, 0.5), (1.0, 0.0)):
        system = variants.get("cyclegan").configure(cycle_weight=cycle_w, identity_weight=identity)
        run = Recorder(system, "digits-inverted")
        system.train_step(run)
        n = run.nets
        a, b = run.fixed.x, run.fixed.second
        fake_b, fake_a = n["generator_ab"](a), n["generator_ba"](b)
        adversarial = ((n["critic_b"](fake_b) - 1) ** 2).mean() + (
            (n["critic_a"](fake_a) - 1) ** 2
        ).mean()
        cycle = (n["generator_ba"](fake_b) - a).abs().mean() + (
            n["generator_ab"](fake_a) - b
        ).abs().mean()
        same = (n["generator_ba"](a) - a).abs().mean() + (n["generator_ab"](b) - b).abs().mean()
        generator = adversarial + cycle_w * cycle + identity * cycle_w * same
        critic = sum(
            0.5 * ((n[d](real) - 1) ** 2).mean() + 0.5 * (n[d](fake) ** 2).mean()
            for d, real, fake in (("critic_a", a, fake_a), ("critic_b", b, fake_b))
        )
        torch.testing.assert_close(run.losses["generators"], generator)
        torch.testing.assert_close(run.losses["critics"], critic)


def test_aae_and_bigan_losses():
    run = Recorder(variants.get("aae"), "ring8")
    variants.get("aae").train_step(run)
    E, Dec, D = run.nets["encoder"], run.nets["generator"], run.nets["critic"]
    x, z = run.fixed.x, run.fixed.z
    torch.testing.assert_close(run.losses["autoencoder"], (Dec(E(x)) - x).square().mean())
    torch.testing.assert_close(run.losses["critic"], sp(-D(z)).mean() + sp(D(E(x))).mean())
    torch.testing.assert_close(run.losses["encoder"], sp(-D(E(x))).mean())

    run = Recorder(variants.get("bigan"), "ring8")
    variants.get("bigan").train_step(run)
    G, E, D = run.nets["generator"], run.nets["encoder"], run.nets["critic"]
    x, z = run.fixed.x, run.fixed.z
    real, fake = D(x, E(x)), D(G(z), z)
    torch.testing.assert_close(run.losses["critic"], sp(-real).mean() + sp(fake).mean())
    cycle = 10.0 * (G(E(x)) - x).abs().mean()  # ALICE's term at recon_weight 10
    torch.testing.assert_close(run.losses["generator"], sp(real).mean() + sp(-fake).mean() + cycle)
    with pytest.raises(ValueError, match="option 'recon_weight' of variant 'bigan'"):
        variants.get("bigan").configure(recon_weight=-1.0)


def test_cogan_shares_the_generator_trunk_and_the_critic_tail():
    cogan = variants.get("cogan")
    run = Recorder(cogan, "digits-inverted")
    n = run.nets
    trainable = {k: {id(p) for p in v.parameters()} for k, v in n.items()}
    assert not any(trainable[a] & trainable[b] for a in n for b in n if a < b)  # no aliasing
    z = run.fixed.z
    a, b = cogan.pair(n, z)
    assert a.shape == b.shape == (len(z), 1, 8, 8)
    # One z through the shared trunk: a change of the trunk moves both domains' samples,
    # a change of head A moves only domain A's.
    with torch.no_grad():
        next(n["generator_a"].parameters()).add_(0.5)
        a2, b2 = cogan.pair(n, z)
        assert not torch.equal(a, a2) and torch.equal(b, b2)
        next(n["generator_trunk"].parameters()).add_(0.5)
        a3, b3 = cogan.pair(n, z)
        assert not torch.equal(a2, a3) and not torch.equal(b2, b3)
    cogan.train_step(run)
    tail = n["critic_tail"]
    d_a = lambda x: tail(n["critic_a"](x))  # noqa: E731
    d_b = lambda x: tail(n["critic_b"](x))  # noqa: E731
    fa, fb = cogan.pair(n, z)
    critic = (
        sp(-d_a(run.fixed.x)).mean()
        + sp(d_a(fa)).mean()
        + sp(-d_b(run.fixed.second)).mean()
        + sp(d_b(fb)).mean()
    )
    torch.testing.assert_close(run.losses["critics"], critic)
    torch.testing.assert_close(run.losses["generators"], sp(-d_a(fa)).mean() + sp(-d_b(fb)).mean())


def test_progan_schedule_and_a_seamless_fade_in():
    from gankernels_plugins.progan import real_at, schedule

    assert [schedule(t, 30, 3) for t in (0, 9, 10, 12, 15, 20, 25, 29)] == [
        (0, 1.0),
        (0, 1.0),
        (1, 0.0),
        (1, 0.4),
        (1, 1.0),
        (2, 0.0),
        (2, 1.0),
        (2, 1.0),
    ]
    x = load_data("digits").data[:4]
    coarse = real_at(x, 0, 1.0, 8)
    # each 4 x 4 block of the 2 x 2 stage's image is that block's mean
    for i in (0, 4):
        for j in (0, 4):
            block = x[:, :, i : i + 4, j : j + 4].mean((2, 3), keepdim=True)
            torch.testing.assert_close(
                coarse[:, :, i : i + 4, j : j + 4], block.expand(-1, -1, 4, 4)
            )
    assert torch.equal(real_at(x, 2, 1.0, 8), x)
    # at the start of a fade-in every network and the real images look as at the end of the
    # previous stage: growing changes nothing until alpha moves
    progan = variants.get("progan")
    spec = ModelSpec((1, 8, 8), 3, 16, 2, bounded=True)
    torch.manual_seed(0)
    nets = progan.build(spec, load_data("digits"))
    G, D = nets["generator"], nets["critic"]
    z = torch.randn(4, 3)
    outputs = {}
    for stage, alpha in ((0, 1.0), (1, 0.0), (1, 1.0), (2, 0.0)):
        G.grow_to(stage, alpha)
        D.grow_to(stage, alpha)
        outputs[stage, alpha] = (G(z), D(x), real_at(x, stage, alpha, 8))
    for before, after in (((0, 1.0), (1, 0.0)), ((1, 1.0), (2, 0.0))):
        for u, v in zip(outputs[before], outputs[after]):
            torch.testing.assert_close(u, v)
    assert not torch.allclose(outputs[1, 0.0][0], outputs[1, 1.0][0])
