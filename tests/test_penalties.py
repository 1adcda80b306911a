"""gradient_penalty, r1_penalty, r2_penalty, dragan_penalty against textbook implementations.

Every comparison runs once on the reference ops (impl="ref") and once on the compiled CPU
kernels (impl="cpu"); the "cpu" cases fail, never skip, when the kernels are missing.
"""

from __future__ import annotations

import pytest
import torch
from conftest import HAS_GPU, device_for
from torch import nn

import gankernels
from gankernels import dragan_penalty, gradient_penalty, r1_penalty, r2_penalty
from gankernels.testing import tolerance

IMPLS = ("ref", "cpu")
RTOL, ATOL = tolerance(torch.float32)
# Parameter gradients pass through a second-order graph: a few more roundings than the value.
GRAD_RTOL, GRAD_ATOL = 4 * RTOL, 4 * ATOL


pytestmark = pytest.mark.usefixtures("one_thread")


# --- textbook implementations, written out from the papers ---------------------------------------


def textbook_wgan_gp(D, real, fake, eps, lam=10.0, inputs=()):
    """Gulrajani et al. 2017, Algorithm 1: per-sample alpha, gradient flattened per sample,
    lam * mean over the batch of (||g|| - 1)^2."""
    alpha = eps.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = alpha * real + (1 - alpha) * fake
    if not x_hat.requires_grad:
        x_hat.requires_grad_(True)
    out = D(x_hat, *inputs)
    grad = torch.autograd.grad(
        outputs=out,
        inputs=x_hat,
        grad_outputs=torch.ones_like(out),
        create_graph=True,
        retain_graph=True,
    )[0]
    grad = grad.reshape(grad.shape[0], -1)
    return lam * ((grad.norm(2, dim=1) - 1) ** 2).mean()


def textbook_r1(D, x, gamma=10.0):
    """Mescheder et al. 2018, eq. 9: gamma / 2 * E ||grad_x D(x)||^2."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return gamma / 2 * grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def mlp_critic(features=12, hidden=32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden),
        nn.Tanh(),
        nn.Linear(hidden, 1),
    )


def conv_critic(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(16 * 3 * 3, 1),
    )
    return net.to(memory_format=torch.channels_last)


def param_grads(module, loss):
    grads = torch.autograd.grad(
        loss, list(module.parameters()), allow_unused=True, materialize_grads=True
    )
    return [g.detach().clone() for g in grads]


def assert_close_lists(got, want, rtol=GRAD_RTOL, atol=GRAD_ATOL):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol, msg=lambda m, i=i: f"[{i}] {m}")


def seeded(*shape, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen) * scale


# --- against the textbook -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_mlp_critic_matches_textbook(impl):
    D = mlp_critic()
    real, fake, eps = seeded(16, 12, seed=1), seeded(16, 12, seed=2, scale=2.0), torch.rand(16)
    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want = textbook_wgan_gp(D, real, fake, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert ours.dtype == torch.float32 and ours.shape == ()
    assert_close_lists(param_grads(D, ours), param_grads(D, want))


@pytest.mark.parametrize("impl", IMPLS)
def test_conv_critic_channels_last_matches_textbook(impl):
    D = conv_critic()
    real = seeded(6, 3, 11, 11, seed=3).contiguous(memory_format=torch.channels_last)
    fake = seeded(6, 3, 11, 11, seed=4).contiguous(memory_format=torch.channels_last)
    eps = torch.rand(6)
    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want = textbook_wgan_gp(D, real, fake, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))


@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_reach_real_and_fake(impl):
    """A fake that comes from a generator (not detached) gets the penalty's gradient, through
    the fused interpolation, and so does a real that requires grad."""
    D = mlp_critic()
    torch.manual_seed(5)
    G = nn.Linear(4, 12)
    z, eps = seeded(8, 4, seed=6), torch.rand(8)
    real = seeded(8, 12, seed=7).requires_grad_(True)

    ours = gradient_penalty(D, real, G(z), eps=eps, impl=impl)
    got_g = param_grads(G, ours)
    (got_real,) = torch.autograd.grad(gradient_penalty(D, real, G(z), eps=eps, impl=impl), real)

    want = textbook_wgan_gp(D, real, G(z), eps)
    want_g = param_grads(G, want)
    (want_real,) = torch.autograd.grad(textbook_wgan_gp(D, real, G(z), eps), real)
    assert any(g.abs().sum() > 0 for g in got_g)
    assert_close_lists(got_g, want_g)
    torch.testing.assert_close(got_real, want_real, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize("impl", IMPLS)
def test_gradient_reaches_user_eps(impl):
    D = mlp_critic()
    real, fake = seeded(5, 12, seed=8), seeded(5, 12, seed=9)
    eps = torch.rand(5, requires_grad=True)
    (got,) = torch.autograd.grad(gradient_penalty(D, real, fake, eps=eps, impl=impl), eps)
    (want,) = torch.autograd.grad(textbook_wgan_gp(D, real, fake, eps), eps)
    torch.testing.assert_close(got, want, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize("impl", ("cuda", "triton"))
def test_on_gpu_matches_textbook(impl):
    """The fused GPU backends under the same API: value, parameter and input gradients."""
    if not HAS_GPU:
        pytest.skip("no CUDA GPU on this machine: the GPU backends of the penalty are not run")
    device = device_for(impl)
    D = conv_critic().to(device)
    real = seeded(6, 3, 11, 11, seed=60).to(device).contiguous(memory_format=torch.channels_last)
    fake = seeded(6, 3, 11, 11, seed=61).to(device).requires_grad_(True)
    eps = torch.rand(6, device=device)
    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want = textbook_wgan_gp(D, real, fake, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))
    (got_fake,) = torch.autograd.grad(gradient_penalty(D, real, fake, eps=eps, impl=impl), fake)
    (want_fake,) = torch.autograd.grad(textbook_wgan_gp(D, real, fake, eps), fake)
    torch.testing.assert_close(got_fake, want_fake, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    torch.testing.assert_close(
        r1_penalty(D, real, impl=impl), textbook_r1(D, real), rtol=RTOL, atol=ATOL
    )


# --- the popular mistakes, each one our API gets right ------------------------------------------


def test_mistake_one_norm_over_the_whole_batch():
    """`grad.norm()` over the whole batch is one number; the penalty needs one norm per sample."""
    D = conv_critic()
    real, fake, eps = seeded(6, 3, 11, 11, seed=10), seeded(6, 3, 11, 11, seed=11), torch.rand(6)
    alpha = eps.view(-1, 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    wrong = 10 * (g.norm() - 1) ** 2
    ours = gradient_penalty(D, real, fake, eps=eps, impl="ref")
    torch.testing.assert_close(ours, textbook_wgan_gp(D, real, fake, eps), rtol=RTOL, atol=ATOL)
    assert not torch.allclose(ours, wrong, rtol=1e-2), "the test data cannot tell them apart"


def test_mistake_norm_along_one_axis_only():
    """`grad.norm(2, dim=1)` on an image gradient [B, C, H, W] is a norm over channels only."""
    D = conv_critic()
    real, fake, eps = seeded(6, 3, 11, 11, seed=12), seeded(6, 3, 11, 11, seed=13), torch.rand(6)
    alpha = eps.view(-1, 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    wrong = 10 * ((g.norm(2, dim=1) - 1) ** 2).mean()
    ours, norms = gradient_penalty(D, real, fake, eps=eps, impl="ref", return_norms=True)
    torch.testing.assert_close(norms, g.reshape(6, -1).norm(dim=1), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(ours, textbook_wgan_gp(D, real, fake, eps), rtol=RTOL, atol=ATOL)
    assert not torch.allclose(ours, wrong, rtol=1e-2), "the test data cannot tell them apart"


class ReluScore(nn.Module):
    """D(x) = relu(w . x): its gradient is exactly zero for every sample with w . x < 0."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return torch.relu(x @ self.w)


@pytest.mark.parametrize("impl", IMPLS)
def test_mistake_nan_gradient_at_a_zero_gradient_sample(impl):
    """sqrt(sum(g^2)) has an infinite derivative at g = 0: its backward gives NaN. The norm's
    subgradient there is 0, which is what the fused penalty uses."""
    w = torch.tensor([1.0, -2.0, 0.5])
    real = torch.tensor([[1.0, 0.0, 0.0], [-3.0, 1.0, 0.0], [0.5, 0.2, 1.0]])
    fake = torch.tensor([[2.0, 0.0, 0.0], [-2.0, 2.0, 0.0], [0.1, 0.1, 0.1]])
    eps = torch.tensor([0.3, 0.5, 0.7])
    D = ReluScore(w)
    x_hat = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    assert (g[1] == 0).all(), "sample 1 must have a zero gradient for this test"
    naive = 10 * ((g.pow(2).sum(1).sqrt() - 1) ** 2).mean()
    (naive_grad,) = torch.autograd.grad(naive, D.w)
    assert torch.isnan(naive_grad).all()

    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    (got,) = torch.autograd.grad(ours, D.w)
    assert torch.isfinite(got).all()
    (want,) = torch.autograd.grad(textbook_wgan_gp(D, real, fake, eps), D.w)
    torch.testing.assert_close(got, want, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    # the zero sample still counts in the mean, with (0 - 1)^2 = 1
    torch.testing.assert_close(ours, textbook_wgan_gp(D, real, fake, eps), rtol=RTOL, atol=ATOL)


# --- critic shapes, ranks, conditional and joint inputs -----------------------------------------


class TupleCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp_critic()

    def forward(self, x):
        score = self.body(x)
        return score, {"features": x * 2}


@pytest.mark.parametrize("impl", IMPLS)
def test_critic_returning_a_tuple(impl):
    D = TupleCritic()
    real, fake, eps = seeded(4, 12, seed=14), seeded(4, 12, seed=15), torch.rand(4)
    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want = textbook_wgan_gp(D.body, real, fake, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(7,), (7, 5), (3, 2, 5), (2, 3, 4, 5), (2, 1, 3, 4, 5)])
@pytest.mark.parametrize("impl", IMPLS)
def test_any_input_rank(shape, impl):
    numel = int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1
    torch.manual_seed(16)
    lin = nn.Linear(numel, 1)

    def D(x):
        return torch.sin(lin(x.reshape(x.shape[0], -1))).squeeze(1)  # scores of shape [B]

    real, fake, eps = seeded(*shape, seed=17), seeded(*shape, seed=18), torch.rand(shape[0])
    ours, norms = gradient_penalty(D, real, fake, eps=eps, impl=impl, return_norms=True)
    assert norms.shape == (shape[0],)
    torch.testing.assert_close(ours, textbook_wgan_gp(D, real, fake, eps), rtol=RTOL, atol=ATOL)


class ConditionalCritic(nn.Module):
    def __init__(self, classes=5, features=12) -> None:
        super().__init__()
        torch.manual_seed(19)
        self.embed = nn.Embedding(classes, features)
        self.net = mlp_critic(features)

    def forward(self, x, labels, temperature):
        return self.net(x * self.embed(labels)) / temperature


@pytest.mark.parametrize("impl", IMPLS)
def test_conditional_inputs_are_passed_through(impl):
    D = ConditionalCritic()
    real, fake, eps = seeded(6, 12, seed=20), seeded(6, 12, seed=21), torch.rand(6)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = gradient_penalty(D, real, fake, eps=eps, inputs=(labels, 2.0), impl=impl)
    want = textbook_wgan_gp(D, real, fake, eps, inputs=(labels, 2.0))
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))


class TwoInputCritic(nn.Module):
    """A critic of an (image, embedding) pair, as in text-to-image GANs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(22)
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 8))
        self.text = nn.Linear(6, 8)
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(8, 1))

    def forward(self, image, text):
        return self.head(self.image(image) + self.text(text))


@pytest.mark.parametrize("impl", IMPLS)
def test_joint_penalty_over_two_inputs(impl):
    D = TwoInputCritic()
    real = (seeded(5, 2, 4, 4, seed=23), seeded(5, 6, seed=24))
    fake = (seeded(5, 2, 4, 4, seed=25), seeded(5, 6, seed=26))
    eps = torch.rand(5)
    ours, norms = gradient_penalty(D, real, fake, eps=eps, impl=impl, return_norms=True)

    xs = [
        (
            eps.reshape(-1, *[1] * (r.dim() - 1)) * r
            + (1 - eps.reshape(-1, *[1] * (r.dim() - 1))) * f
        ).requires_grad_(True)
        for r, f in zip(real, fake)
    ]
    grads = torch.autograd.grad(D(*xs).sum(), xs, create_graph=True)
    joint = torch.cat([g.reshape(5, -1) for g in grads], dim=1).norm(dim=1)
    want = 10 * ((joint - 1) ** 2).mean()
    torch.testing.assert_close(norms, joint, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    # a penalty per input separately is a different number
    separate = sum(10 * ((g.reshape(5, -1).norm(dim=1) - 1) ** 2).mean() for g in grads)
    assert not torch.allclose(ours, separate, rtol=1e-2)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))


@pytest.mark.parametrize("impl", IMPLS)
def test_one_sided_lp_penalty(impl):
    """WGAN-LP: only norms above the target are penalised."""
    torch.manual_seed(27)
    lin = nn.Linear(12, 1)
    real, fake, eps = seeded(32, 12, seed=28), seeded(32, 12, seed=29), torch.rand(32)
    for scale in (0.01, 10.0):  # all norms below 1, then all above
        with torch.no_grad():
            lin.weight.copy_(seeded(1, 12, seed=30) / seeded(1, 12, seed=30).norm() * scale)
        lp, norms = gradient_penalty(
            lin, real, fake, eps=eps, one_sided=True, impl=impl, return_norms=True
        )
        want = 10 * (norms.detach() - 1).clamp_min(0).pow(2).mean()
        torch.testing.assert_close(lp, want, rtol=RTOL, atol=ATOL)
        gp = gradient_penalty(lin, real, fake, eps=eps, impl=impl)
        if scale < 1:
            assert lp.item() == 0.0 and gp.item() > 0
        else:
            torch.testing.assert_close(lp, gp, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("impl", IMPLS)
def test_weight_and_target(impl):
    D = mlp_critic()
    real, fake, eps = seeded(9, 12, seed=31), seeded(9, 12, seed=32), torch.rand(9)
    ours, norms = gradient_penalty(
        D, real, fake, eps=eps, weight=0.1, target=0.75, impl=impl, return_norms=True
    )
    torch.testing.assert_close(
        ours, 0.1 * (norms.detach() - 0.75).pow(2).mean(), rtol=RTOL, atol=ATOL
    )


# --- eps ----------------------------------------------------------------------------------------


def test_eps_of_shape_b_1_1_1_is_accepted():
    D = conv_critic()
    real, fake, eps = seeded(3, 3, 11, 11, seed=33), seeded(3, 3, 11, 11, seed=34), torch.rand(3)
    flat = gradient_penalty(D, real, fake, eps=eps, impl="ref")
    torch.testing.assert_close(
        gradient_penalty(D, real, fake, eps=eps.view(3, 1, 1, 1), impl="ref"), flat
    )


def test_eps_is_drawn_per_sample_with_the_generator():
    """A seeded generator reproduces the penalty, and eps is one U[0, 1) draw per sample."""
    D = mlp_critic()
    real, fake = seeded(8, 12, seed=35), seeded(8, 12, seed=36)
    a = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(7), impl="ref")
    b = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(7), impl="ref")
    eps = torch.rand(8, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, textbook_wgan_gp(D, real, fake, eps), rtol=RTOL, atol=ATOL)
    c = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(8), impl="ref")
    assert not torch.equal(a, c)


def test_float64_data():
    D = mlp_critic().double()
    real, fake = seeded(5, 12, seed=37).double(), seeded(5, 12, seed=38).double()
    eps = torch.rand(5, dtype=torch.float64)
    ours = gradient_penalty(D, real, fake, eps=eps, impl="ref")
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, textbook_wgan_gp(D, real, fake, eps))


# --- R1, R2, DRAGAN ------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_r1_matches_textbook(impl):
    D = conv_critic()
    real = seeded(5, 3, 11, 11, seed=39).contiguous(memory_format=torch.channels_last)
    ours = r1_penalty(D, real, gamma=4.0, impl=impl)
    want = textbook_r1(D, real, gamma=4.0)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))
    assert not real.requires_grad, "r1_penalty must not change the caller's tensor"


@pytest.mark.parametrize("impl", IMPLS)
def test_r2_on_fake_and_gradient_to_generator(impl):
    D = mlp_critic()
    torch.manual_seed(40)
    G = nn.Linear(4, 12)
    z = seeded(6, 4, seed=41)
    ours = r2_penalty(D, G(z).detach(), impl=impl)
    torch.testing.assert_close(ours, textbook_r1(D, G(z)), rtol=RTOL, atol=ATOL)
    # a fake that is still in the generator's graph passes the penalty's gradient on to G
    fake = G(z)
    got = param_grads(G, r2_penalty(D, fake, impl=impl))
    fake2 = G(z)
    (g,) = torch.autograd.grad(D(fake2).sum(), fake2, create_graph=True)
    want = param_grads(G, 5.0 * g.pow(2).sum(1).mean())
    assert_close_lists(got, want)


@pytest.mark.parametrize("impl", IMPLS)
def test_dragan_matches_textbook(impl):
    """Kodali et al. 2017: x_p = x + 0.5 * std(x) * U[0, 1), then the interpolation penalty.
    The generator draws the perturbation first and then eps."""
    D = mlp_critic()
    real = seeded(10, 12, seed=42)
    ours = dragan_penalty(D, real, generator=torch.Generator().manual_seed(3), impl=impl)
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(real.shape, generator=gen)
    eps = torch.rand(10, generator=gen)
    x_p = real + 0.5 * real.std(correction=0) * u
    want = textbook_wgan_gp(D, real, x_p, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))


def patch_critic(seed=0):
    """A PatchGAN-style critic: a [B, 1, 3, 3] map of scores per sample."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 1, 3, stride=2, padding=1),
    )
    return net.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("impl", IMPLS)
def test_patchgan_critic_differentiates_the_per_sample_sum(impl):
    """Several scores per sample: g_i is the gradient of their sum (TF-GAN's tf.gradients of
    the map; torch's autograd.grad with grad_outputs=ones), for every penalty."""
    D = patch_critic()
    real = seeded(5, 3, 11, 11, seed=60).contiguous(memory_format=torch.channels_last)
    fake = seeded(5, 3, 11, 11, seed=61)
    eps = torch.rand(5, generator=torch.Generator().manual_seed(62))
    assert D(real).shape == (5, 1, 3, 3)
    ours = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want = textbook_wgan_gp(D, real, fake, eps)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))
    ours = r1_penalty(D, real, gamma=4.0, impl=impl)
    want = textbook_r1(D, real, gamma=4.0)
    torch.testing.assert_close(ours, want, rtol=RTOL, atol=ATOL)
    assert_close_lists(param_grads(D, ours), param_grads(D, want))
    torch.testing.assert_close(
        r2_penalty(D, fake, impl=impl), textbook_r1(D, fake), rtol=RTOL, atol=ATOL
    )
    # The map's mean would be a different (patch-count-scaled) penalty: the sum is what we take.
    mean_critic = lambda x: D(x).mean((1, 2, 3))  # noqa: E731
    scaled = r1_penalty(mean_critic, real, gamma=4.0, impl=impl)
    torch.testing.assert_close(scaled * 81, textbook_r1(D, real, gamma=4.0), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("impl", IMPLS)
def test_input_gradient_penalty_is_r1_from_the_loss_forward(impl):
    """StyleGAN2's R1: one forward of the real batch serves the loss and the penalty. Same value
    and parameter gradients as r1_penalty (which runs the critic again), and as the textbook."""
    D = conv_critic()
    real = seeded(5, 3, 11, 11, seed=63).requires_grad_()
    fake = seeded(5, 3, 11, 11, seed=64)
    real_scores, fake_scores = D(real), D(fake)
    loss = gankernels.discriminator_loss(real_scores, fake_scores, impl=impl)
    penalty, norms = gankernels.input_gradient_penalty(
        real_scores, real, weight=2.0, return_norms=True, impl=impl
    )
    want = textbook_r1(D, real, gamma=4.0)
    torch.testing.assert_close(penalty, want, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(penalty, r1_penalty(D, real.detach(), gamma=4.0, impl=impl))
    assert norms.shape == (5,)
    got = param_grads(D, loss + penalty)
    want_loss = gankernels.discriminator_loss(D(real), D(fake), impl="ref")
    assert_close_lists(got, param_grads(D, want_loss + want))
    # target and one_sided as in gradient_penalty
    lp = gankernels.input_gradient_penalty(
        D(real), real, weight=10.0, target=1.0, one_sided=True, impl=impl
    )
    (g,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    n = g.reshape(5, -1).norm(dim=1)
    torch.testing.assert_close(lp, 10.0 * (n - 1).clamp_min(0).square().mean())


def test_input_gradient_penalty_joint_and_patch_scores():
    D = patch_critic()
    a = seeded(3, 3, 7, 7, seed=65).requires_grad_()
    b = seeded(3, 3, 7, 7, seed=66).requires_grad_()
    scores = D(a) + D(b)
    ours = gankernels.input_gradient_penalty(scores, (a, b), weight=1.5, impl="cpu")
    ga, gb = torch.autograd.grad(scores.sum(), (a, b), create_graph=True)
    sq = ga.reshape(3, -1).square().sum(1) + gb.reshape(3, -1).square().sum(1)
    torch.testing.assert_close(ours, 1.5 * sq.mean())


def test_input_gradient_penalty_bad_input_is_named():
    D = mlp_critic()
    x = seeded(4, 12, seed=67)
    fn = gankernels.input_gradient_penalty
    with pytest.raises(
        ValueError,
        match=r"input_gradient_penalty: x does not require grad.*"
        r"call x.requires_grad_\(\) before the critic's forward",
    ):
        fn(D(x), x, weight=1.0)
    x.requires_grad_()
    with pytest.raises(ValueError, match=r"input_gradient_penalty: the scores do not depend on x"):
        fn(D(seeded(4, 12, seed=68).requires_grad_()), x, weight=1.0)
    with pytest.raises(TypeError, match=r"input_gradient_penalty: scores must be a torch.Tensor"):
        fn([1.0], x, weight=1.0)
    with pytest.raises(
        ValueError, match=r"scores must hold scores of shape \[B, \.\.\.\] with B = 4"
    ):
        fn(D(x)[:3], x, weight=1.0)
    with pytest.raises(
        ValueError, match=r"input_gradient_penalty: scores do not depend on the critic's input"
    ):
        fn(D(x).detach(), x, weight=1.0)
    with pytest.raises(TypeError, match=r"input_gradient_penalty: weight must be a finite number"):
        fn(D(x), x, weight=None)
    with pytest.raises(ValueError, match=r"input_gradient_penalty: target must be >= 0.0"):
        fn(D(x), x, weight=1.0, target=-1.0)
    with pytest.raises(TypeError, match=r"input_gradient_penalty: x\[1\] must be a torch.Tensor"):
        fn(D(x), (x, 3), weight=1.0)


def test_penalty_is_zero_where_it_should_be():
    """A linear critic with ||w|| = 1 has gradient norm exactly 1 everywhere: WGAN-GP is 0;
    a constant critic has gradient 0: R1 is 0."""
    lin = nn.Linear(12, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.full((1, 12), 12**-0.5))
    real, fake = seeded(4, 12, seed=43), seeded(4, 12, seed=44)
    assert gradient_penalty(lin, real, fake, impl="ref").item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        lin.weight.zero_()
    assert r1_penalty(lin, real, impl="ref").item() == 0.0


# --- graph hygiene ------------------------------------------------------------------------------


def test_backward_leaves_no_graph_on_parameter_grads():
    """autograd.grad(create_graph=True) inside, plain backward outside: .grad holds values, not a
    graph (backward(create_graph=True) would attach one and leak through a reference cycle)."""
    D = mlp_critic()
    gradient_penalty(D, seeded(4, 12, seed=45), seeded(4, 12, seed=46), impl="ref").backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert grads  # (the last layer's bias does not influence dD/dx, so it gets none)
    for g in grads:
        assert g.grad_fn is None and not g.requires_grad


def test_under_no_grad_the_value_is_still_computed():
    D = mlp_critic()
    real, fake, eps = seeded(4, 12, seed=47), seeded(4, 12, seed=48), torch.rand(4)
    with torch.no_grad():
        value = gradient_penalty(D, real, fake, eps=eps, impl="ref")
    assert not value.requires_grad
    torch.testing.assert_close(value, textbook_wgan_gp(D, real, fake, eps).detach())


def test_exported_from_the_package():
    for name in (
        "gradient_penalty",
        "r1_penalty",
        "r2_penalty",
        "dragan_penalty",
        "input_gradient_penalty",
    ):
        assert name in gankernels.__all__ and callable(getattr(gankernels, name))


# --- bad input ----------------------------------------------------------------------------------


def test_error_when_d_returns_no_tensor():
    real, fake = seeded(4, 12, seed=49), seeded(4, 12, seed=50)
    with pytest.raises(
        TypeError,
        match=r"gradient_penalty: D returned NoneType, expected a "
        r"tensor of critic scores",
    ):
        gradient_penalty(lambda x: None, real, fake, impl="ref")
    with pytest.raises(TypeError, match=r"D returned str"):
        gradient_penalty(lambda x: ("score",), real, fake, impl="ref")
    with pytest.raises(TypeError, match=r"r1_penalty: D returned dict"):
        r1_penalty(lambda x: {"score": x.sum(1)}, real, impl="ref")


@pytest.mark.parametrize("out_shape", [(), (2,), (5, 1)])
def test_error_when_d_is_not_scores_of_the_batch(out_shape):
    real, fake = seeded(4, 12, seed=51), seeded(4, 12, seed=52)

    def D(x):
        return x.sum() * torch.ones(out_shape)

    with pytest.raises(
        ValueError,
        match=r"gradient_penalty: D must return scores of shape \[B, \.\.\.\] with B = 4 \(one "
        r"or more per sample\), got " + str(list(out_shape)).replace("[", r"\["),
    ):
        gradient_penalty(D, real, fake, impl="ref")


def test_error_when_d_does_not_depend_on_its_input():
    real, fake = seeded(4, 12, seed=53), seeded(4, 12, seed=54)
    with pytest.raises(ValueError, match=r"D's scores do not depend on the critic's input"):
        gradient_penalty(lambda x: torch.zeros(4), real, fake, impl="ref")


def test_error_on_shape_mismatch():
    with pytest.raises(
        ValueError,
        match=r"gradient_penalty: real and fake must have the same "
        r"shape, got real \[4, 12\] and fake \[4, 11\]",
    ):
        gradient_penalty(mlp_critic(), torch.zeros(4, 12), torch.zeros(4, 11), impl="ref")
    with pytest.raises(ValueError, match=r"real\[1\] and fake\[1\] must have the same shape"):
        gradient_penalty(
            mlp_critic(),
            (torch.zeros(4, 12), torch.zeros(4, 3)),
            (torch.zeros(4, 12), torch.zeros(4, 2)),
            impl="ref",
        )
    with pytest.raises(ValueError, match=r"same number of tensors, got 2 real and 1 fake"):
        gradient_penalty(
            mlp_critic(), (torch.zeros(4, 12), torch.zeros(4, 3)), (torch.zeros(4, 12),), impl="ref"
        )


def test_error_on_device_mismatch():
    real, fake = torch.zeros(4, 12), torch.zeros(4, 12, device="meta")
    with pytest.raises(
        ValueError,
        match=r"gradient_penalty: real and fake must be on the same "
        r"device, got real on cpu and fake on meta",
    ):
        gradient_penalty(mlp_critic(), real, fake, impl="ref")


def test_error_on_dtype_mismatch():
    with pytest.raises(TypeError, match=r"real and fake must have the same dtype"):
        gradient_penalty(mlp_critic(), torch.zeros(4, 12), torch.zeros(4, 12).double(), impl="ref")


def test_error_on_non_tensor_or_integer_inputs():
    with pytest.raises(
        TypeError,
        match=r"gradient_penalty: real must be a tensor or a non-empty "
        r"tuple of tensors",
    ):
        gradient_penalty(mlp_critic(), 3.0, torch.zeros(1, 1), impl="ref")
    with pytest.raises(
        TypeError,
        match=r"gradient_penalty: real\[0\] must be a torch.Tensor, "
        r"got list",
    ):
        gradient_penalty(mlp_critic(), [[1.0]], torch.zeros(1, 1), impl="ref")
    with pytest.raises(TypeError, match=r"gradient_penalty: fake must be a floating-point"):
        gradient_penalty(
            mlp_critic(), torch.zeros(2, 12), torch.zeros(2, 12, dtype=torch.int64), impl="ref"
        )
    with pytest.raises(ValueError, match=r"real must have a non-empty batch dimension"):
        gradient_penalty(mlp_critic(), torch.zeros(()), torch.zeros(()), impl="ref")


def test_error_on_bad_eps():
    real, fake = torch.zeros(4, 12), torch.zeros(4, 12)
    with pytest.raises(
        ValueError,
        match=r"eps must have shape \[B\] or \[B, 1, \.\.\., 1\] with "
        r"B = 4 \(one value per sample\), got \[4, 12\]",
    ):
        gradient_penalty(mlp_critic(), real, fake, eps=torch.rand(4, 12), impl="ref")
    with pytest.raises(ValueError, match=r"got \[3\]"):
        gradient_penalty(mlp_critic(), real, fake, eps=torch.rand(3), impl="ref")
    with pytest.raises(ValueError, match=r"either eps or generator"):
        gradient_penalty(
            mlp_critic(), real, fake, eps=torch.rand(4), generator=torch.Generator(), impl="ref"
        )
    with pytest.raises(ValueError, match=r"eps must be on the data's device \(cpu\), got meta"):
        gradient_penalty(mlp_critic(), real, fake, eps=torch.rand(4, device="meta"), impl="ref")


def test_error_on_bad_numbers():
    real, fake = torch.zeros(4, 12), torch.zeros(4, 12)
    with pytest.raises(ValueError, match=r"gradient_penalty: target must be >= 0.0, got -1"):
        gradient_penalty(mlp_critic(), real, fake, target=-1, impl="ref")
    with pytest.raises(TypeError, match=r"gradient_penalty: weight must be a finite number"):
        gradient_penalty(mlp_critic(), real, fake, weight=float("nan"), impl="ref")
    with pytest.raises(ValueError, match=r"r1_penalty: gamma must be >= 0.0"):
        r1_penalty(mlp_critic(), real, gamma=-2.0, impl="ref")
    with pytest.raises(ValueError, match=r"dragan_penalty: perturb must be >= 0.0"):
        dragan_penalty(mlp_critic(), real, perturb=-0.5, impl="ref")
    with pytest.raises(ValueError, match=r"impl must be one of"):
        gradient_penalty(mlp_critic(), real, fake, impl="fast")


def test_error_on_bad_inputs_argument():
    with pytest.raises(
        TypeError,
        match=r"gradient_penalty: inputs must be a tuple of extra "
        r"arguments for D",
    ):
        gradient_penalty(mlp_critic(), torch.zeros(4, 12), torch.zeros(4, 12), inputs=3, impl="ref")
