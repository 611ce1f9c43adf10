r"""Three remedies for mode collapse (lesson 02): PacGAN, minibatch standard deviation and
the unrolled GAN. Each is switched on by one field (``TrainConfig.pack``, the critic's
``minibatch_std`` option, ``TrainConfig.unroll_steps``) and is the plain GAN when off.

**PacGAN** (Lin et al. 2018). The critic judges *packs* of m samples, all real or all
fake: :math:`D(x_1, \dots, x_m)` on the concatenation of the m samples. A generator that
puts all its mass on one mode makes packs of near-identical samples, which real packs
almost never are, so the critic can penalise the lack of diversity. Here the critic sees
``batch_size`` packs per step (so a step draws ``batch_size * m`` samples); m = 1 is the
plain GAN.

**Minibatch standard deviation** (Karras et al. 2018, ProGAN). Right before the critic's
last layer, every sample gets one more feature, the same for the whole batch:

.. math:: s = \frac1F \sum_{f=1}^F \sqrt{\operatorname{Var}_b h_{bf} + 10^{-8}},

the spread of the batch's features averaged over the F features (population variance
over the B samples). A collapsed batch of fakes has a small s where a real batch has a
large one, and the critic can use that.

**Unrolled GAN** (Metz et al. 2017). The generator is trained against the critic it will
face after k more critic steps: with :math:`\theta_D^0 = \theta_D` and
:math:`\theta_D^{i+1} = \theta_D^i - \eta\, u(\nabla_{\theta_D} L_D(\theta_G, \theta_D^i))`,
G minimises the game's value at the look-ahead critic,

.. math:: f_k(\theta_G) = L_G\big(D_{\theta_D^k}(G(z))\big)
          - \big[a\big(D_{\theta_D^k}(x)\big) - a\big(D_{\theta_D}(x)\big)\big],

where :math:`a` is the real-sample part of the critic's loss
(:math:`L_D(r, f) = a(r) + b(f)` for every loss of ``LOSSES``). The real-sample term does
not depend on G for k = 0, but :math:`\theta_D^k` does: for the minimax loss
:math:`f_k` is, up to a constant, the paper's :math:`-L_D(\theta_G, \theta_D^k)`, whose
gradient through the look-ahead vanishes when the critic is optimal. Without the
real-sample term G is rewarded for steering the critic's look-ahead steps (its samples
drift off the data). G's gradient flows through the k look-ahead steps
(``torch.func.functional_call`` with ``create_graph=True``). A generator about to jump
onto the mode the critic currently likes "sees" the critic follow it there, which damps
the mode hopping of collapse. The critic itself is still trained by the ordinary steps;
the look-ahead is thrown away. k = 0 is the plain GAN; a step costs about k + 1 plain
steps. The update u continues the critic's optimiser at its current learning rate (after
any decay) and from its current state: Adam from its moments (with
:math:`\sqrt{\hat v + \epsilon^2}` in place of :math:`\sqrt{\hat v} + \epsilon` so that it is
differentiable at v = 0), RMSprop likewise, SGD plain.

The look-ahead's sensitivity to G grows as :math:`\eta / \sqrt{\hat v}`: the derivative of
Adam's step :math:`\eta\, \hat m / \sqrt{\hat v + \epsilon^2}` with respect to the current
gradient is of order :math:`\eta (1 - \beta_1) / \sqrt{\hat v}` for a weight whose running
squared gradient :math:`\hat v` is small, so weights that have seen almost no gradient
dominate G's gradient when the critic's learning rate is large. Metz et al. ran the critic
at a tenth of the generator's rate; lesson 02 measures the unrolled GAN at both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .checks import check_int
from .latent import sample_latent
from .losses import GANLoss

MINIBATCH_STD_EPS = 1e-8  # inside the square root of the minibatch-std feature
LOOKAHEAD_EPS = 1e-8  # Adam's / RMSprop's epsilon in the look-ahead updates
RMSPROP_ALPHA = 0.99  # torch.optim.RMSprop's default smoothing constant


# ---- PacGAN ---------------------------------------------------------------------------------
def pack_samples(x: Tensor, pack: int) -> Tensor:
    """(B * m, *shape) -> (B, m * prod(shape)): rows i*m .. i*m + m - 1 side by side."""
    pack = check_int("pack", pack, minimum=1)
    if x.shape[0] % pack:
        raise ValueError(
            f"pack={pack} needs a number of samples that is a multiple of {pack}, "
            f"got a batch of {x.shape[0]}"
        )
    return x.reshape(x.shape[0] // pack, -1)


class PackedCritic(nn.Module):
    """A critic of packs: ``forward(x)`` = ``critic(pack_samples(x, pack))``, one logit
    per pack of ``pack`` consecutive samples; ``critic`` takes ``pack * features`` inputs."""

    def __init__(self, critic: nn.Module, pack: int):
        super().__init__()
        self.pack = check_int("pack", pack, minimum=1)
        self.critic = critic

    def forward(self, x: Tensor) -> Tensor:
        return self.critic(pack_samples(x, self.pack))

    def extra_repr(self) -> str:
        return f"pack={self.pack}"


# ---- minibatch standard deviation -----------------------------------------------------------
class MinibatchStd(nn.Module):
    """(B, F) -> (B, F + 1): appends s = mean_f sqrt(Var_b h[:, f] + 1e-8) to every row."""

    def forward(self, h: Tensor) -> Tensor:
        if h.dim() != 2:
            raise ValueError(f"MinibatchStd expects features of shape (B, F), got {tuple(h.shape)}")
        variance = h.var(dim=0, unbiased=False)  # population variance over the batch
        spread = torch.sqrt(variance + MINIBATCH_STD_EPS).mean()
        return torch.cat([h, spread.expand(h.shape[0], 1)], dim=1)


# ---- unrolled GAN ---------------------------------------------------------------------------
def _lookahead_step(
    params: dict[str, Tensor],
    grads: Sequence[Tensor],
    moments: dict[str, dict],
    step: int,
    config,
) -> dict[str, Tensor]:
    """One differentiable optimiser update of the critic's parameters (see module doc);
    ``moments[name]["lr"]`` is the parameter's current learning rate."""
    out = {}
    for (name, p), g in zip(params.items(), grads, strict=True):
        state = moments[name]
        lr = state["lr"]
        if config.optimizer == "adam":
            beta1, beta2 = config.betas
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            m_hat = state["m"] / (1 - beta1**step)
            v_hat = state["v"] / (1 - beta2**step)
            out[name] = p - lr * m_hat / torch.sqrt(v_hat + LOOKAHEAD_EPS**2)
        elif config.optimizer == "rmsprop":
            state["v"] = RMSPROP_ALPHA * state["v"] + (1 - RMSPROP_ALPHA) * g * g
            out[name] = p - lr * g / torch.sqrt(state["v"] + LOOKAHEAD_EPS**2)
        else:
            out[name] = p - lr * g
    return out


def _optimizer_moments(
    critic: nn.Module, optimizer: torch.optim.Optimizer | None, config
) -> tuple[dict[str, dict], int]:
    """Copies of the optimiser's running moments and current learning rate (its parameter
    group's, after any schedule; ``config.lr_d`` without an optimiser) per critic
    parameter, and its step count."""
    rates = {}
    if optimizer is not None:
        rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    moments, step = {}, 0
    for name, p in critic.named_parameters():
        state = optimizer.state.get(p, {}) if optimizer is not None else {}
        moments[name] = {
            "lr": rates.get(id(p), config.lr_d),
            "m": state.get("exp_avg", torch.zeros_like(p)).detach().clone(),
            "v": state.get("exp_avg_sq", state.get("square_avg", torch.zeros_like(p)))
            .detach()
            .clone(),
        }
        if "step" in state:
            step = max(step, int(state["step"]))
    return moments, step


def unrolled_critic_params(
    critic: nn.Module,
    generator: nn.Module,
    reals: Sequence[Tensor],
    latents: Sequence[Tensor],
    loss: GANLoss,
    d_optimizer: torch.optim.Optimizer | None,
    config,
) -> dict[str, Tensor]:
    r"""The critic's parameters after ``len(reals)`` look-ahead steps on
    :math:`L_D(D(x_i), D(G(z_i)))`, differentiable with respect to G's parameters (and to
    the starting critic parameters). Neither the critic nor the optimiser is modified."""
    if len(reals) != len(latents):
        raise ValueError(
            f"reals and latents must have the same length, got {len(reals)} and {len(latents)}"
        )
    params = {name: p.detach().requires_grad_(True) for name, p in critic.named_parameters()}
    buffers = dict(critic.named_buffers())
    moments, step = _optimizer_moments(critic, d_optimizer, config)

    def logits(current: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(critic, {**current, **buffers}, (x,)).reshape(-1)

    current = params
    for real, z in zip(reals, latents, strict=True):
        d_loss = loss.critic(logits(current, real), logits(current, generator(z)))
        grads = torch.autograd.grad(d_loss, list(current.values()), create_graph=True)
        step += 1
        current = _lookahead_step(current, grads, moments, step, config)
    return current


def unrolled_generator_loss(
    generator: nn.Module,
    critic: nn.Module,
    d_optimizer: torch.optim.Optimizer | None,
    data: Tensor | Callable[[int], Tensor],
    loss: GANLoss,
    config,
    device: torch.device,
) -> Tensor:
    r""":math:`f_k = L_G(D_k(G(z))) - [a(D_k(x)) - a(D(x))]` (module doc): G's loss against
    the critic after ``config.unroll_steps`` look-ahead steps, minus the look-ahead
    critic's gain on a real batch. The k look-ahead steps each use a fresh real batch and
    latent batch, then come the latents of G's loss and the real batch of the real-sample
    term (all drawn from torch's global RNG, like the ordinary critic steps)."""
    from .train import draw_real  # the loop's sampler (train imports this module)

    size = config.batch_size * config.pack
    reals, latents = [], []
    for _ in range(config.unroll_steps):
        reals.append(draw_real(data, size, device))
        latents.append(sample_latent(size, config.latent_dim, config.latent_prior, device))
    params = unrolled_critic_params(critic, generator, reals, latents, loss, d_optimizer, config)
    z = sample_latent(size, config.latent_dim, config.latent_prior, device)
    real = draw_real(data, size, device)
    buffers = dict(critic.named_buffers())
    fake_logits = functional_call(critic, {**params, **buffers}, (generator(z),)).reshape(-1)
    real_logits = functional_call(critic, {**params, **buffers}, (real,)).reshape(-1)
    with torch.no_grad():  # the current critic: independent of G
        start_logits = critic(real).reshape(-1)
    # a(r_k) - a(r_0) for a separable critic loss L_D(r, f) = a(r) + b(f): b cancels
    real_gain = loss.critic(real_logits, start_logits) - loss.critic(start_logits, start_logits)
    return loss.generator(fake_logits) - real_gain


__all__ = [
    "MinibatchStd",
    "PackedCritic",
    "pack_samples",
    "unrolled_critic_params",
    "unrolled_generator_loss",
]
