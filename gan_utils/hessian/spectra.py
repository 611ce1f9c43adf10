r"""Hessian spectra of a GAN's two losses, and a training callback that logs them (lesson 06).

For a generator G and critic D, ``generator_loss`` is L_G(theta_G) = loss_G(D(G(z))) and
``critic_loss`` is L_D(theta_D) = loss_D(D(x), D(G(z))) on one fixed batch (z, x);
``gan_hessian_spectra`` takes the top-k eigenpairs of the Hessian of each over its own
player's parameters by Lanczos (``gan_utils.hessian.lanczos``), never forming the
Hessian. ``spectrum_callback`` logs them during training on the same batch at every call,
with every RNG state and every buffer (batch norm's running statistics) restored
afterwards, so a run trains exactly as it would without it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..core.checkpoints import rng_state, set_rng_state
from ..core.checks import check_choice, check_int
from ..core.latent import sample_latent
from ..core.loop import Callback, every
from ..core.losses import get_loss
from ..core.train import TrainState
from .lanczos import WHICH, LanczosResult, preserved_buffers, top_eigenpairs

PLAYERS = ("generator", "critic")


def _critic_logits(critic: nn.Module, x: Tensor) -> Tensor:
    return critic(x).reshape(x.shape[0])  # (B, 1) -> (B,)


def generator_loss(generator: nn.Module, critic: nn.Module, latent: Tensor, loss: str) -> Tensor:
    """L_G(D(G(z))) for the named loss, as a function of G's (and D's) parameters."""
    return get_loss(loss).generator(_critic_logits(critic, generator(latent)))


def critic_loss(
    generator: nn.Module, critic: nn.Module, real: Tensor, latent: Tensor, loss: str
) -> Tensor:
    """L_D(D(x), D(G(z))) for the named loss; G(z) is detached (the critic's objective only;
    no gradient penalty, label smoothing or noisy labels)."""
    with torch.no_grad():  # D's Hessian does not need a graph through G
        fake = generator(latent)
    return get_loss(loss).critic(_critic_logits(critic, real), _critic_logits(critic, fake))


def _check_players(players: Sequence[str]) -> tuple[str, ...]:
    """``players`` as a tuple: one of ``PLAYERS`` or a non-empty sequence of them."""
    if isinstance(players, str):
        players = (players,)
    if not isinstance(players, (tuple, list)):
        raise TypeError(
            f"players must be a non-empty subset of {PLAYERS}, got {players!r} "
            f"({type(players).__name__})"
        )
    if not players:
        raise ValueError(f"players must be a non-empty subset of {PLAYERS}, got {players!r}")
    return tuple(check_choice("players", p, PLAYERS) for p in players)


def gan_hessian_spectra(
    generator: nn.Module,
    critic: nn.Module,
    latent: Tensor,
    real: Tensor | None = None,
    loss: str = "non_saturating",
    k: int = 5,
    which: str = "LA",
    players: Sequence[str] = PLAYERS,
    **lanczos_options,
) -> dict[str, LanczosResult]:
    r"""Top-k Hessian eigenpairs of the generator's and the critic's losses (lesson 06).

    ``"generator"``: :math:`\nabla^2_{\theta_G} L_G(D(G(z)))` over G's parameters;
    ``"critic"``: :math:`\nabla^2_{\theta_D} L_D(D(x), D(G(z)))` over D's parameters. The
    models stay in their current (train/eval) mode; buffers are restored afterwards.

    Args:
        generator, critic: the models.
        latent: z, shape (B, latent_dim), on the models' device.
        real: x, shape (B, ...), needed for the critic.
        loss: a key of ``gan_utils.core.losses.LOSSES``.
        k, which, lanczos_options: passed to ``lanczos``.
        players: which Hessians, a subset of ("generator", "critic").

    Returns:
        {"generator": LanczosResult, "critic": LanczosResult} for the players asked.
    """
    players = _check_players(players)
    get_loss(loss)
    if "critic" in players and real is None:
        raise ValueError("real must be given for the critic's Hessian (players includes 'critic')")
    results: dict[str, LanczosResult] = {}
    with preserved_buffers(generator, critic):
        for player in players:
            if player == "generator":
                params = [p for p in generator.parameters() if p.requires_grad]
                value = generator_loss(generator, critic, latent, loss)
            else:
                params = [p for p in critic.parameters() if p.requires_grad]
                value = critic_loss(generator, critic, real, latent, loss)
            results[player] = top_eigenpairs(value, params, k=k, which=which, **lanczos_options)
    return results


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch's global RNG inside the block and restore every RNG state on exit, so
    that drawing a batch here leaves the training run's random stream untouched."""
    saved = rng_state()
    try:
        torch.manual_seed(int(seed))
        yield
    finally:
        set_rng_state(saved)


def draw_batch(
    state: TrainState, batch_size: int, data=None, seed: int = 0
) -> tuple[Tensor, Tensor | None]:
    """(z, x) for a Hessian: z from the run's latent prior and, if ``data`` is given, a
    real batch (from a tensor of samples or a function ``batch_size -> tensor``), drawn
    with torch's RNG seeded with ``seed`` and then restored (see ``isolated_rng``)."""
    config = state.config
    with isolated_rng(seed):
        latent = sample_latent(batch_size, config.latent_dim, config.latent_prior, state.device)
        real = None
        if data is not None:
            if isinstance(data, Tensor):
                index = torch.randint(0, data.shape[0], (batch_size,), device=data.device)
                real = data[index].to(state.device)
            else:
                real = data(batch_size).to(state.device)
    return latent, real


def spectrum_callback(
    every_steps: int,
    k: int = 5,
    *,
    data=None,
    players: Sequence[str] = PLAYERS,
    batch_size: int | None = None,
    which: str = "LA",
    seed: int = 12345,
    max_iterations: int | None = None,
    tol: float = 1e-3,
) -> Callback:
    """A ``train`` callback logging the top-k Hessian eigenvalues of G's and D's losses.

    Every ``every_steps`` generator steps it adds a history row with ``g_eig_1`` ..
    ``g_eig_k`` (generator loss over G's parameters, best first for ``which``),
    ``d_eig_1`` .. ``d_eig_k`` (critic loss over D's parameters), ``g_hvps`` / ``d_hvps``
    (Hessian-vector products used), ``g_converged`` / ``d_converged`` (1.0 when Lanczos
    reached ``tol``) and ``spectrum_seconds``. The losses are the run's ``config.loss``
    on the whole batch: the top-k selection, gradient penalty, label smoothing and noisy
    labels are left out.

    The batch is the same at every call (z from the run's prior and real samples from
    ``data``, drawn with the RNG seeded by ``seed``), so the curves show the change of
    the models, not of the batch. All RNG states and the models' buffers are restored
    afterwards, so a run trains exactly as it would without the callback.

    Args:
        every_steps: generator steps between spectra.
        k: eigenvalues per Hessian.
        data: the real data given to ``train`` (tensor or sampler); needed for the critic.
        players: ("generator", "critic") or one of them.
        batch_size: samples in the batch (default: the run's ``batch_size``).
        which: "LA", "LM" or "SA" (see ``lanczos``).
        seed: seed of the batch and of the Lanczos start vector.
        max_iterations, tol: passed to ``lanczos``.
    """
    every_steps = check_int("every_steps", every_steps, minimum=1)
    k = check_int("k", k, minimum=1)
    players = _check_players(players)
    check_choice("which", which, WHICH)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    check_int("seed", seed, minimum=0)
    if "critic" in players and data is None:
        raise ValueError("data must be given for the critic's spectrum (players has 'critic')")
    prefixes = {"generator": "g", "critic": "d"}

    def log_spectrum(state: TrainState) -> None:
        t0 = time.perf_counter()
        size = batch_size or state.config.batch_size
        latent, real = draw_batch(state, size, data if "critic" in players else None, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-convergence is logged as *_converged
            spectra = gan_hessian_spectra(
                state.generator,
                state.critic,
                latent,
                real,
                loss=state.config.loss,
                k=k,
                which=which,
                players=players,
                max_iterations=max_iterations,
                tol=tol,
                seed=seed,
                measure_orthogonality=False,
            )
        row: dict[str, float] = {}
        for player, result in spectra.items():
            prefix = prefixes[player]
            for i, value in enumerate(result.eigenvalues):
                row[f"{prefix}_eig_{i + 1}"] = float(value)
            row[f"{prefix}_hvps"] = result.num_products
            row[f"{prefix}_converged"] = float(result.converged)
        row["spectrum_seconds"] = time.perf_counter() - t0
        state.history.log(state.step, **row)

    return every(every_steps, log_spectrum)


__all__ = [
    "PLAYERS",
    "critic_loss",
    "draw_batch",
    "gan_hessian_spectra",
    "generator_loss",
    "isolated_rng",
    "spectrum_callback",
]
