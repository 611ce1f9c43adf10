"""Plain-PyTorch references for ``make bench``: the minimal loops and the FLOP counts.

``ReferenceGAN`` is the GAN loop a student would write in one screen of PyTorch: the same
networks, losses, optimisers and random draws as ``gan_utils.core.train.train`` (real rows by
index, z ~ N(0, I), one eps per sample for the gradient penalty), and none of its
bookkeeping (config validation, history, NaN/inf checks, callbacks, checkpoints). The
random numbers are drawn in the library's order, so at the same seed both compute the
same losses on their first step (``tests/test_bench.py`` checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

REFERENCE_LOSSES = ("minimax", "non_saturating", "wasserstein")


def critic_loss(loss: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """L_D on logits: BCE (softplus form) for the two BCE losses, E D(G(z)) - E D(x) else."""
    if loss == "wasserstein":
        return fake_logits.mean() - real_logits.mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(loss: str, fake_logits: Tensor) -> Tensor:
    """L_G on logits: minimax E log(1 - D), non-saturating -E log D, Wasserstein -E D."""
    if loss == "minimax":
        return -F.softplus(fake_logits).mean()
    if loss == "non_saturating":
        return F.softplus(-fake_logits).mean()
    return -fake_logits.mean()


class ReferenceGAN:
    """A minimal GAN loop over ``generator`` and ``critic`` (updated in place).

    Args:
        generator, critic: the networks (critic returns (B,) or (B, 1) logits).
        data: a tensor of real rows (drawn by random index) or ``sample(batch) -> tensor``.
        loss: one of ``REFERENCE_LOSSES``.
        batch_size, latent_dim, n_critic: as in ``TrainConfig``.
        gp_weight: lambda of the two-sided gradient penalty (0: none).
        optimizer: "adam" or "rmsprop"; lr and betas as in ``TrainConfig``.
    """

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        data: Tensor | Callable[[int], Tensor],
        loss: str,
        batch_size: int,
        latent_dim: int,
        n_critic: int = 1,
        gp_weight: float = 0.0,
        optimizer: str = "adam",
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
    ):
        if loss not in REFERENCE_LOSSES:
            raise ValueError(f"loss must be one of {REFERENCE_LOSSES}, got {loss!r}")
        self.generator, self.critic, self.data = generator.train(), critic.train(), data
        self.loss, self.batch_size, self.latent_dim = loss, batch_size, latent_dim
        self.n_critic, self.gp_weight = n_critic, gp_weight
        if optimizer == "adam":
            self.g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=tuple(betas))
            self.d_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=tuple(betas))
        elif optimizer == "rmsprop":
            self.g_opt = torch.optim.RMSprop(generator.parameters(), lr=lr)
            self.d_opt = torch.optim.RMSprop(critic.parameters(), lr=lr)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {optimizer!r}")

    def real_batch(self) -> Tensor:
        if callable(self.data):
            return self.data(self.batch_size)
        return self.data[torch.randint(0, self.data.shape[0], (self.batch_size,))]

    def step(self) -> tuple[Tensor, Tensor]:
        """n_critic critic updates and one generator update; returns (d_loss, g_loss)."""
        G, D, B = self.generator, self.critic, self.batch_size
        for _ in range(self.n_critic):
            real = self.real_batch()
            z = torch.randn(B, self.latent_dim)
            with torch.no_grad():  # D's update needs no graph through G
                fake = G(z)
            d_loss = critic_loss(self.loss, D(real).reshape(B), D(fake).reshape(B))
            total = d_loss
            if self.gp_weight > 0:
                eps = torch.rand((B,) + (1,) * (real.dim() - 1))
                x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
                total = total + self.gp_weight * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            self.d_opt.zero_grad(set_to_none=True)
            total.backward()
            self.d_opt.step()
        z = torch.randn(B, self.latent_dim)
        for p in D.parameters():  # gradients flow through D into G; D's own are not needed
            p.requires_grad_(False)
        g_loss = generator_loss(self.loss, D(G(z)).reshape(B))
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for p in D.parameters():
            p.requires_grad_(True)
        self.g_opt.step()
        return d_loss.detach(), g_loss.detach()

    def run(self, num_steps: int) -> float:
        """``num_steps`` generator steps; returns the wall time in seconds."""
        t0 = time.perf_counter()
        for _ in range(num_steps):
            self.step()
        return time.perf_counter() - t0


class _FlopCounter(TorchDispatchMode):
    """Adds up ``torch.utils.flop_counter``'s shape formulas over every op dispatched.

    (``FlopCounterMode`` itself tracks modules with backward hooks, which fails inside
    ``autograd.grad`` on a leaf input, i.e. in the gradient penalty.)"""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        return out


def counted_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions ``fn`` runs (forward, backward and double
    backward), counted from the tensor shapes by ``torch.utils.flop_counter``'s formulas."""
    counter = _FlopCounter()
    with counter:
        fn()
    return counter.flops


def mlp_gan_step_flops(
    latent_dim: int, data_dim: int, width: int, depth: int, batch_size: int, n_critic: int = 1
) -> int:
    """Matmul FLOPs of one generator step (n_critic critic updates, one G update) of two
    ``depth`` x ``width`` MLPs, without a gradient penalty, counted by hand.

    A linear layer n -> m on B rows costs 2Bnm in the forward pass, 2Bnm for the gradient
    of its input and 2Bnm for the gradient of its weight. Critic update: G forward on B
    rows (no grad), D forward on 2B rows (real and fake), backward with weight gradients
    and input gradients except into the first layer's input. Generator update: G and D
    forward on B rows; through D input gradients only (its weights are frozen); through
    G weight gradients and input gradients except into z.
    """
    g_sizes = [latent_dim] + [width] * depth + [data_dim]
    d_sizes = [data_dim] + [width] * depth + [1]
    g_layers = list(zip(g_sizes[:-1], g_sizes[1:], strict=True))
    d_layers = list(zip(d_sizes[:-1], d_sizes[1:], strict=True))
    g_mac = sum(n * m for n, m in g_layers)  # multiply-adds per row, one pass
    d_mac = sum(n * m for n, m in d_layers)
    g_first, d_first = g_layers[0][0] * g_layers[0][1], d_layers[0][0] * d_layers[0][1]
    B = batch_size
    critic = 2 * B * g_mac + 2 * (2 * B) * (d_mac + d_mac + (d_mac - d_first))
    generator = 2 * B * (g_mac + d_mac + (d_mac) + g_mac + (g_mac - g_first))
    return n_critic * critic + generator


def matmul_gflops(shapes: Sequence[tuple[int, int, int]], seconds: float = 0.5) -> dict:
    """The machine's torch.mm speed: for each (m, k, n), GFLOP/s of (m, k) @ (k, n) in
    float32 at the current thread count, median of 5 timings of ``seconds`` / 5 each."""
    out = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        c = torch.empty(m, n)
        for _ in range(3):  # warm up
            torch.mm(a, b, out=c)
        rates = []
        for _ in range(5):
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 5:
                torch.mm(a, b, out=c)
                reps += 1
            rates.append(2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9)
        out[f"{m}x{k}@{k}x{n}"] = sorted(rates)[len(rates) // 2]
    return out
