r"""One training loop for a generator/critic pair (lesson 01; reused by lessons 02-06).

Per generator step the loop makes ``n_critic`` critic steps and one generator step:

    for each of n_critic times:           # discriminator_step
        x ~ data, z ~ p(z)
        minimise  L_D(D(x), D(G(z)))  [+ lambda * GP]  over D; clip D's weights if asked
    z ~ p(z)                              # generator_step
    minimise  L_G(D(G(z)))  over G        [top-k: only the k fakes D rates most real]
                                          [unrolled: against D after k look-ahead steps]

PacGAN (``pack`` = m > 1) makes every batch m times larger and the critic judge packs of
m samples (``gan_utils.core.remedies``).

Every variant of the course differs only in ``TrainConfig``. Data stays on the device:
a tensor of samples is indexed with random indices, or a ``sample_real(batch_size)``
function draws fresh samples (it must use torch's global RNG so that checkpoints
resume exactly).

Reliability: checkpoints hold models, optimisers, RNG states, config and history; a run
resumed from one reproduces the uninterrupted run bit for bit. Losses are checked for
NaN/inf at every log step (averaged over the interval, so one bad step is caught); a
divergence raises ``DivergenceError`` and reloads the last good checkpoint's weights.
Checkpoints are written atomically (``gan_utils.core.atomic``: a kill leaves the previous
checkpoint or the new one). Ctrl-C (KeyboardInterrupt, a kernel interrupt) keeps the last
checkpoint and prints one line naming it and the argument to resume with
(``resume_from=<checkpoint>``).

Testing hook: with ``GAN_UTILS_KILL_AT=step:K`` in the environment the loop kills its own
process with SIGKILL right after generator step K is done, after any checkpoint of that
step was written (``gan_utils.core.atomic``; read once per ``train`` call). The
reliability tests use it to check that a real ``kill -9`` followed by ``resume_from``
ends with the uninterrupted run's parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoints import load_checkpoint, rng_state, set_rng_state
from .checks import (
    check_betas,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_probability,
    check_tensor,
)
from .history import History
from .latent import LATENT_PRIORS, sample_latent
from .loop import Callback, DivergenceError, check_resumable, every, run_steps
from .losses import LOSSES, GANLoss, get_loss, gradient_penalty
from .mlp import requires_grad
from .remedies import unrolled_generator_loss
from .runtime import get_device, set_seed

OPTIMIZERS = ("adam", "rmsprop", "sgd")
BCE_LOSSES = ("minimax", "non_saturating")
MAX_SEED = 2**64 - 1  # torch.manual_seed's largest seed


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint with ``asdict``)."""

    loss: str = "non_saturating"  # a key of gan_utils.core.losses.LOSSES
    latent_dim: int = 2  # size of z
    latent_prior: str = "normal"  # "normal": z ~ N(0, I); "uniform": z ~ U[-1, 1]^d
    batch_size: int = 128  # samples per critic and per generator step
    num_steps: int = 1000  # generator steps in total (a resumed run continues to this)
    n_critic: int = 1  # critic steps per generator step
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # critic learning rate
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's betas
    optimizer: str = "adam"  # "adam", "rmsprop" or "sgd"
    clip_value: float | None = None  # WGAN weight clipping: D's weights to [-c, c]
    gp_weight: float = 0.0  # lambda of the two-sided gradient penalty (WGAN-GP: 10)
    real_label: float = 1.0  # target for real samples (0.9: one-sided label smoothing)
    label_flip_prob: float = 0.0  # noisy labels: share of critic targets flipped
    topk: bool = False  # top-k generator update (Sinha et al. 2020)
    topk_gamma: float = 0.99  # k = max(gamma^epoch * batch, nu * batch)
    topk_nu: float = 0.5
    steps_per_epoch: int = 20  # generator steps per "epoch" for the top-k schedule
    pack: int = 1  # PacGAN: the critic judges packs of m samples (needs a PackedCritic)
    unroll_steps: int = 0  # unrolled GAN: G's loss against the critic after k look-ahead steps
    seed: int = 0  # seeds every RNG at the start of a fresh run
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    log_every: int = 10  # steps between history rows (and NaN/inf checks)
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end)
    progress: bool = True  # show a tqdm progress bar

    def validate(self) -> None:
        """Raise naming the first bad field and its allowed values (``gan_utils.core.checks``:
        TypeError for a value of the wrong type, ValueError for one out of range)."""
        get_loss(self.loss)
        positive = (
            "latent_dim",
            "batch_size",
            "num_steps",
            "n_critic",
            "steps_per_epoch",
            "log_every",
        )
        for name in positive:
            check_int(name, getattr(self, name), minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"checkpoint_every must be 0 or a multiple of log_every={self.log_every}, "
                f"got {self.checkpoint_every!r}"
            )
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("latent_prior", self.latent_prior, LATENT_PRIORS)
        for name in ("lr_g", "lr_d"):
            check_number(name, getattr(self, name), minimum=0, min_open=True)
        check_betas("betas", self.betas)
        if self.clip_value is not None:
            check_number("clip_value", self.clip_value, minimum=0, min_open=True)
        check_number("gp_weight", self.gp_weight, minimum=0)
        check_number("real_label", self.real_label)
        check_number("label_flip_prob", self.label_flip_prob, 0, 0.5, max_open=True)
        check_bool("topk", self.topk)
        check_probability("topk_gamma", self.topk_gamma, min_open=True)
        check_probability("topk_nu", self.topk_nu, min_open=True)
        check_int("seed", self.seed, minimum=0, maximum=MAX_SEED)
        check_bool("progress", self.progress)
        check_int("pack", self.pack, minimum=1)
        check_int("unroll_steps", self.unroll_steps, minimum=0)
        self._check_remedy_options()
        if (self.real_label != 1.0 or self.label_flip_prob > 0) and self.loss not in BCE_LOSSES:
            raise ValueError(
                f"real_label and label_flip_prob apply to the BCE losses {BCE_LOSSES} only, "
                f"not loss={self.loss!r}"
            )
        get_device(self.device)

    def _check_remedy_options(self) -> None:
        """PacGAN and the unrolled GAN with the options they do not support."""
        unsupported = []
        if self.pack > 1:
            unsupported += [
                (
                    "gp_weight",
                    self.gp_weight > 0,
                    "the gradient penalty is per sample, not per pack",
                ),
                ("topk", self.topk, "top-k ranks single fakes, not packs"),
            ]
            unsupported = [(f"pack={self.pack}", *u) for u in unsupported]
        if self.unroll_steps > 0:
            remedy = f"unroll_steps={self.unroll_steps}"
            unsupported += [
                (
                    remedy,
                    "clip_value",
                    self.clip_value is not None,
                    "clipping is not differentiable",
                ),
                (remedy, "gp_weight", self.gp_weight > 0, "the look-ahead has no penalty term"),
                (remedy, "topk", self.topk, "the look-ahead uses the plain generator loss"),
                (remedy, "real_label", self.real_label != 1.0, "the look-ahead uses plain targets"),
                (
                    remedy,
                    "label_flip_prob",
                    self.label_flip_prob > 0,
                    "the look-ahead uses plain targets",
                ),
            ]
        for remedy, option, used, why in unsupported:
            if used:
                raise ValueError(
                    f"{remedy} does not support {option}={getattr(self, option)!r} ({why}); "
                    f"allowed with it: {option} off"
                )


@dataclass
class TrainState:
    """What callbacks see: the models, optimisers, config, history and current step."""

    generator: nn.Module
    critic: nn.Module
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    config: TrainConfig
    history: History
    device: torch.device
    step: int = 0
    stop: bool = False  # set True (or return True from a callback) to end training
    extras: dict = field(default_factory=dict)


def topk_size(step: int, config: TrainConfig) -> int:
    """k at a generator step: max(gamma^epoch * B, nu * B), epoch = step // steps_per_epoch."""
    epoch = step // config.steps_per_epoch
    batch = config.batch_size
    return max(1, int(config.topk_nu * batch), int(batch * config.topk_gamma**epoch))


def make_optimizer(params, lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(config.betas))
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def _critic_logits(critic: nn.Module, x: Tensor) -> Tensor:
    return critic(x).reshape(-1)  # (B, 1) -> (B,); B / m logits for a PacGAN critic


def _bce_critic_loss_with_targets(
    real_logits: Tensor, fake_logits: Tensor, config: TrainConfig
) -> Tensor:
    """BCE with smoothed/flipped targets: real target ``real_label``, fake target 0."""
    real_t = torch.full_like(real_logits, config.real_label)
    fake_t = torch.zeros_like(fake_logits)
    if config.label_flip_prob > 0:
        flip_r = torch.rand_like(real_logits) < config.label_flip_prob
        flip_f = torch.rand_like(fake_logits) < config.label_flip_prob
        real_t = torch.where(flip_r, 1.0 - real_t, real_t)
        fake_t = torch.where(flip_f, 1.0 - fake_t, fake_t)
    bce = nn.functional.binary_cross_entropy_with_logits
    return bce(real_logits, real_t) + bce(fake_logits, fake_t)


def discriminator_step(
    generator: nn.Module,
    critic: nn.Module,
    real: Tensor,
    optimizer: torch.optim.Optimizer,
    loss: GANLoss,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, Tensor]:
    """One critic update; returns detached tensors (no host sync)."""
    z = sample_latent(real.shape[0], config.latent_dim, config.latent_prior, device)
    with torch.no_grad():  # the critic step does not train G: no graph through G needed
        fake = generator(z)
    real_logits = _critic_logits(critic, real)
    fake_logits = _critic_logits(critic, fake)
    if config.real_label != 1.0 or config.label_flip_prob > 0:
        d_loss = _bce_critic_loss_with_targets(real_logits, fake_logits, config)
    else:
        d_loss = loss.critic(real_logits, fake_logits)
    total = d_loss
    gp = None
    if config.gp_weight > 0:
        gp = gradient_penalty(critic, real, fake, config.gp_weight)
        total = total + gp
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    if config.clip_value is not None:
        with torch.no_grad():
            for p in critic.parameters():
                p.clamp_(-config.clip_value, config.clip_value)
    out = {
        "d_loss": d_loss.detach(),
        "real_logit": real_logits.detach().mean(),
        "fake_logit": fake_logits.detach().mean(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
    }
    if gp is not None:
        out["gp"] = gp.detach()
    return out


def generator_step(
    generator: nn.Module,
    critic: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: GANLoss,
    config: TrainConfig,
    device: torch.device,
    step: int,
    grad_hook: Callable[[TrainState], None] | None = None,
    state: TrainState | None = None,
    d_optimizer: torch.optim.Optimizer | None = None,
    data: Tensor | Callable[[int], Tensor] | None = None,
) -> dict[str, Tensor]:
    """One generator update (top-k if configured; against the unrolled critic when
    ``config.unroll_steps`` > 0, which needs ``d_optimizer`` and ``data``); ``grad_hook``
    may edit G's gradients after backward and before the optimiser step (NU-GAN, lesson 06)."""
    requires_grad(critic, False)  # gradients flow through D into G, but D is not updated
    if config.unroll_steps:
        g_loss = unrolled_generator_loss(generator, critic, d_optimizer, data, loss, config, device)
        return _generator_update(g_loss, generator, critic, optimizer, grad_hook, state)
    size = config.batch_size * config.pack
    z = sample_latent(size, config.latent_dim, config.latent_prior, device)
    fake_logits = _critic_logits(critic, generator(z))
    if config.topk:
        # Sinha et al. 2020: only the k fakes the critic rates most real update G.
        fake_logits = torch.topk(fake_logits, topk_size(step, config)).values
    g_loss = loss.generator(fake_logits)
    return _generator_update(g_loss, generator, critic, optimizer, grad_hook, state)


def _generator_update(g_loss, generator, critic, optimizer, grad_hook, state) -> dict[str, Tensor]:
    optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    requires_grad(critic, True)
    if grad_hook is not None:
        grad_hook(state)
    optimizer.step()
    return {"g_loss": g_loss.detach()}


def draw_real(data, batch_size: int, device: torch.device) -> Tensor:
    """A batch of real samples: random rows of a tensor, or ``data(batch_size)``."""
    if callable(data):
        return data(batch_size)
    idx = torch.randint(0, data.shape[0], (batch_size,), device=device)
    return data[idx]


def check_data(data, device: torch.device):
    """Validate ``data`` (a tensor of samples or a sampler) and move it to ``device`` once."""
    if callable(data):
        return data.to(device) if hasattr(data, "to") else data
    if not isinstance(data, Tensor):
        raise TypeError(
            "data must be a tensor of samples or a function batch_size -> tensor, "
            f"got {type(data).__name__}"
        )
    check_tensor("data", data, min_rows=1)
    return data.to(device)


def _checkpoint_payload(state: TrainState) -> dict:
    return {
        "step": state.step,
        "generator": state.generator.state_dict(),
        "critic": state.critic.state_dict(),
        "g_optimizer": state.g_optimizer.state_dict(),
        "d_optimizer": state.d_optimizer.state_dict(),
        "rng": rng_state(),
        "config": asdict(state.config),
        "history": state.history.to_list(),
    }


RESUMABLE_CHANGES = ("num_steps", "checkpoint_every", "progress", "device")


def _restore(state: TrainState, checkpoint: dict) -> None:
    check_resumable(checkpoint["config"], asdict(state.config), RESUMABLE_CHANGES)
    state.generator.load_state_dict(checkpoint["generator"])
    state.critic.load_state_dict(checkpoint["critic"])
    state.g_optimizer.load_state_dict(checkpoint["g_optimizer"])
    state.d_optimizer.load_state_dict(checkpoint["d_optimizer"])
    state.history = History(checkpoint["history"])
    state.step = int(checkpoint["step"])
    set_rng_state(checkpoint["rng"])


def train(
    generator: nn.Module,
    critic: nn.Module,
    data: Tensor | Callable[[int], Tensor],
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: str | Path | None = None,
    resume_from: str | Path | None = None,
    grad_hook: Callable[[TrainState], None] | None = None,
) -> History:
    """Train ``generator`` against ``critic`` on ``data``; models are updated in place.

    Args:
        generator: maps z of shape (B, latent_dim) to samples shaped like ``data``'s rows.
        critic: maps samples to one logit each, shape (B,) or (B, 1).
        data: a tensor (N, ...) of real samples, or ``sample_real(batch_size) -> tensor``.
        config: the run's settings; see ``TrainConfig``.
        callbacks: functions of ``TrainState``, called every ``callback.every`` steps
            (see ``every``; default ``log_every``); returning True stops training.
        checkpoint_path: where to write checkpoints (every ``checkpoint_every`` steps and
            at the end). Required if ``checkpoint_every`` > 0.
        resume_from: a checkpoint to continue from (to ``config.num_steps`` in total).
        grad_hook: called with the state after G's backward, before G's optimiser step.

    Returns:
        The history: rows with d_loss, g_loss, real/fake logits and D(x), D(G(z)) means
        every ``log_every`` steps, plus whatever callbacks logged.

    Raises:
        DivergenceError: a loss became NaN/inf; the models are reset to the last good
            checkpoint when there is one.
        KeyboardInterrupt: Ctrl-C, after printing the last checkpoint and
            ``resume_from=<it>`` (the checkpoint is kept).
        gan_utils.core.checkpoints.CheckpointError: ``resume_from`` is a damaged file.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    if config.checkpoint_every and checkpoint_path is None:
        raise ValueError("checkpoint_path is required when checkpoint_every > 0")
    device = get_device(config.device)
    loss = get_loss(config.loss)
    generator.to(device).train()
    critic.to(device).train()
    data = check_data(data, device)
    if config.pack > 1 and getattr(critic, "pack", None) != config.pack:
        raise ValueError(
            f"pack={config.pack} needs a critic of packs: PackedCritic(critic, {config.pack}) "
            f"from gan_utils.core.remedies, got {type(critic).__name__}"
        )

    if resume_from is None:
        set_seed(config.seed)
    state = TrainState(
        generator=generator,
        critic=critic,
        g_optimizer=make_optimizer(generator.parameters(), config.lr_g, config),
        d_optimizer=make_optimizer(critic.parameters(), config.lr_d, config),
        config=config,
        history=History(),
        device=device,
    )
    if resume_from is not None:
        _restore(state, load_checkpoint(resume_from, map_location=device))

    start_step = state.step

    def step() -> dict[str, Tensor]:  # n_critic critic updates, then one generator update
        for _ in range(config.n_critic):
            real = draw_real(data, config.batch_size * config.pack, device)
            d_out = discriminator_step(
                generator, critic, real, state.d_optimizer, loss, config, device
            )
        g_out = generator_step(
            generator,
            critic,
            state.g_optimizer,
            loss,
            config,
            device,
            state.step,
            grad_hook,
            state,
            state.d_optimizer,
            data,
        )
        return {**d_out, **g_out}

    seconds = run_steps(
        state,
        step,
        config,
        callbacks,
        checkpoint_path,
        _checkpoint_payload,
        {"generator": generator, "critic": critic},
        resume_from=resume_from,
        desc=f"{config.loss}",
        postfix={"d": "d_loss", "g": "g_loss"},
    )
    state.history.extras = {"seconds": seconds, "steps": state.step - start_step}
    return state.history


def linear_lr_decay(start: int, num_steps: int) -> Callback:
    """A training callback (every step) decaying every optimiser's learning rate linearly.

    After step t > ``start`` each parameter group of each optimiser of the state
    (``g_optimizer``, ``d_optimizer`` and Dist-GAN's ``ae_optimizer``) uses
    lr_0 * (num_steps - t) / (num_steps - start), reaching 0 at ``num_steps``; lr_0 is the
    group's rate when the callback first saw it, kept in the group as ``"initial_lr"``
    (as torch's schedulers do), so that it travels with the optimiser's checkpoint and a
    resumed run decays exactly as an uninterrupted one. A GAN at a constant rate keeps
    moving around its equilibrium; the decay lets the last steps settle.
    """
    check_int("num_steps", num_steps, minimum=1)
    check_int("start", start, minimum=0, maximum=num_steps - 1)

    def set_lr(state) -> None:
        if state.step <= start:
            return
        factor = max(0.0, (num_steps - state.step) / (num_steps - start))
        for optimizer in vars(state).values():
            if isinstance(optimizer, torch.optim.Optimizer):
                for group in optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])
                    group["lr"] = group["initial_lr"] * factor

    return every(1, set_lr)


def steps_per_second(history: History) -> float:
    """Generator steps per second of the last ``train`` call that returned ``history``."""
    extras = getattr(history, "extras", None) or {}
    seconds = extras.get("seconds", 0.0)
    return extras.get("steps", 0) / seconds if seconds > 0 else float("nan")


def replace(config: TrainConfig, **changes) -> TrainConfig:
    """``dataclasses.replace`` re-exported: variants differ only in configuration."""
    return dataclasses.replace(config, **changes)


__all__ = [
    "LOSSES",
    "DivergenceError",
    "TrainConfig",
    "TrainState",
    "discriminator_step",
    "generator_step",
    "linear_lr_decay",
    "replace",
    "steps_per_second",
    "topk_size",
    "train",
]
