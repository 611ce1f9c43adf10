r"""NU-GAN: nudging the generator's update away from sharp directions (lesson 06).

Durall, Chatzimichailidis, Labus and Keuper, "Combating Mode Collapse in GAN Training: An
Empirical Analysis using Hessian Eigenvalues" (VISAPP 2021, arXiv 2012.09673) report that
mode collapse goes with convergence to *sharp* minima of the generator's loss, seen in the
top eigenvalues of its Hessian, and propose an optimiser ("nudged-Adam", NuGAN) that
uses this spectral information to steer the update. The rules below are **our reading**
of that idea, not a transcription of the paper's algorithm:

Every ``every_steps`` (N) generator steps, compute the top-``k`` eigenpairs
:math:`(\lambda_i, v_i)` of the Hessian of the generator's loss over G's parameters,
:math:`H_G = \nabla^2_{\theta_G} L_G(D(G(z)))`, by Lanczos on Hessian-vector products
(``gan_utils.hessian.lanczos``), on a fresh batch of z. The *sharp* directions are those with
:math:`\lambda_i > \tau` (``which="LA"``; with ``which="LM"`` :math:`|\lambda_i| > \tau`).
They are cached and used at every step until the next refresh. At each step, after G's
backward pass and before G's optimiser step (``train``'s ``grad_hook``):

* ``mode="project"``: remove the raw gradient's component along the sharp directions,
  :math:`g \leftarrow g - V V^\top g` with :math:`V` an orthonormal basis of the
  :math:`v_i` (:math:`\lambda_i > \tau`). With plain SGD the update
  :math:`-\eta g` then has no component along them; Adam's per-coordinate scaling
  :math:`m / (\sqrt{v} + \epsilon)` does not commute with the projection and brings
  part of it back (measured as ``nu_update_along``).
* ``mode="layer"``: the NUGAN-DISTGAN repository's rule, done right: for each sharp
  :math:`v_i`, find its largest-magnitude entry :math:`\arg\max_j |v_{i,j}|` and zero the
  gradient of the whole parameter tensor holding it (applied after backward, before the
  step). With Adam, the momentum of that tensor still moves it for a while.
* ``mode="monitor"``: compute, select and log, but change nothing (the control run).

What that repository got wrong (our reading of its code), and this module does
differently: it called
``scipy.sparse.linalg.eigsh(..., mode='LA')`` where ``which='LA'`` was meant (``mode`` is
the shift-invert mode and is ignored without ``sigma``, so eigsh returned its default,
the largest-*magnitude* eigenvalues, which may be large negative ones: directions of
negative curvature, not sharp minima); it nudged the gradients *before* the backward
pass, which then filled them in afresh, so the nudge had no effect; and it located the
eigenvector's largest entry without an absolute value, although an eigenvector's sign is
arbitrary (so which tensor was picked was a coin flip).

``hessian_of="critic"`` uses the critic's loss Hessian :math:`\nabla^2_{\theta_D} L_D`
instead (as that repository did). Its eigenvectors live in D's parameter space, so they
say nothing about G's gradient: ``mode="project"`` therefore requires the generator's
Hessian (a ValueError otherwise). With ``mode="layer"`` the selected tensors are D's, and
their gradients are zeroed in the *critic's* optimiser steps (through an optimiser
step pre-hook, since ``train``'s ``grad_hook`` only runs in G's step) until the next
refresh; call ``remove()`` after training to detach that hook.

Cost: one spectrum per N steps, i.e. ``nu_hvps`` Hessian-vector products (about one
backward pass each) every N steps; projection adds :math:`O(n s)` per step.

Checkpoints do not hold the cached eigenvectors: a resumed run (with a new hook)
recomputes them at its first step, which trains exactly like the uninterrupted run when
the checkpoint's step is a multiple of N (the eigenpairs would be refreshed at that step
anyway); only the interval averages of the first row after the resume are lost (NaN).
The Hessian batches are drawn with their own seed and the global RNG state is restored,
so "monitor" mode trains exactly like a run without the hook.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checks import check_choice, check_int, check_number
from ..core.train import TrainState
from .lanczos import HessianOperator, lanczos
from .spectra import (
    critic_loss,
    draw_batch,
    generator_loss,
    preserved_buffers,
)

MODES = ("project", "layer", "monitor")
HESSIAN_OF = ("generator", "critic")
NU_GAN_WHICH = ("LA", "LM")


@dataclass
class NuGANConfig:
    """Settings of the NU-GAN gradient hook (see the module docstring for the rule)."""

    every_steps: int = 50  # N: generator steps between eigenpair refreshes (repository: 50)
    threshold: float = 0.0  # tau: nudge along eigenvectors whose eigenvalue exceeds it
    k: int = 5  # eigenpairs computed per refresh
    mode: str = "project"  # "project", "layer" or "monitor" (compute and log only)
    hessian_of: str = "generator"  # whose loss Hessian: "generator" or "critic"
    which: str = "LA"  # "LA": lambda > tau (sharp); "LM": |lambda| > tau
    batch_size: int | None = None  # samples in the Hessian's batch (None: the run's)
    max_iterations: int | None = None  # Lanczos steps per refresh (None: max(40, 8 k))
    tol: float = 1e-3  # Lanczos tolerance on the relative residual
    seed: int = 777  # batch of refresh at step s drawn with seed + s; Lanczos start vector

    def validate(self) -> None:
        """Check every field (``gan_utils.core.checks``): TypeError for a value of the wrong
        type, ValueError for one out of range, each naming the field and what is allowed."""
        for name in ("every_steps", "k"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("batch_size", "max_iterations"):
            value = getattr(self, name)
            if value is not None:
                check_int(f"{name} (or None)", value, minimum=1)
        # +-inf are allowed: tau = -inf selects every computed direction
        check_number("threshold", self.threshold, finite=False)
        check_choice("mode", self.mode, MODES)
        check_choice("hessian_of", self.hessian_of, HESSIAN_OF)
        check_choice("which", self.which, NU_GAN_WHICH)
        if self.mode == "project" and self.hessian_of != "generator":
            raise ValueError(
                "mode='project' needs hessian_of='generator': the critic's eigenvectors live "
                "in D's parameter space and cannot be projected out of G's gradient "
                "(use mode='layer' or 'monitor' with hessian_of='critic')"
            )
        check_number("tol", self.tol, 0.0)
        check_int("seed", self.seed, minimum=0)


def _trainable(model: nn.Module) -> list[Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _flat(tensors: list[Tensor | None], like: list[Tensor]) -> Tensor:
    return torch.cat(
        [
            (torch.zeros_like(p) if t is None else t).reshape(-1)
            for t, p in zip(tensors, like, strict=True)
        ]
    )


class NuGANHook:
    """NU-GAN as a ``grad_hook`` of ``gan_utils.core.train.train`` (lesson 06).

    Usage::

        hook = NuGANHook(NuGANConfig(every_steps=50, threshold=1.0, mode="project"))
        history = train(generator, critic, data, config, grad_hook=hook)

    (the lessons train image GANs with it through ``gan_utils.images.recipe``:
    ``ImageGANConfig(method="nu_gan", nu=NuGANConfig(...))``).

    At every refresh it logs a history row (at the number of generator updates the
    analysed weights have had) with ``nu_eig_1`` .. ``nu_eig_k``, ``nu_directions``
    (eigenvalues above tau), ``nu_hvps``, ``nu_seconds`` and, averaged over the interval
    since the previous refresh, ``nu_removed`` (share of the raw gradient's norm along the
    sharp directions: removed by "project", only measured by "monitor" and "layer") and ``nu_update_along`` (share of G's actual update's norm that lies
    along the cached sharp directions; about 0 for project + SGD). ``records`` holds the
    same per refresh, plus the names of the zeroed tensors in "layer" mode.

    Args:
        config: the settings.
        data: the real data given to ``train``; needed only for ``hessian_of="critic"``.
    """

    def __init__(self, config: NuGANConfig | None = None, data=None):
        self.config = config or NuGANConfig()
        self.config.validate()
        if self.config.hessian_of == "critic" and data is None:
            raise ValueError("data must be given when hessian_of='critic'")
        self.data = data
        self.eigenvalues: np.ndarray | None = None
        self.eigenvectors: Tensor | None = None  # (n, k) in the flat parameter space
        self.basis: Tensor | None = None  # (n, s): orthonormal basis of the sharp directions
        self.selected_tensors: list[str] = []  # "layer": names of the tensors zeroed
        self.records: list[dict[str, Any]] = []
        self.last_refresh: int | None = None
        self._layer_params: list[Tensor] = []
        self._previous_params: Tensor | None = None
        self._tracking_basis: Tensor | None = None
        self._removed: list[float] = []
        self._along: list[float] = []
        self._critic_hook = None
        self._critic_optimizer = None
        self._state: TrainState | None = None

    # -- the hook ------------------------------------------------------------------------------
    def __call__(self, state: TrainState) -> None:
        config = self.config
        if state is not self._state:  # a new run (or a resumed one): no previous update
            self._state, self._previous_params, self._tracking_basis = state, None, None
            self.last_refresh = None
        g_params = _trainable(state.generator)
        if config.hessian_of == "generator":
            self._track_update(g_params)
        if self.last_refresh is None or state.step % config.every_steps == 0:
            self.refresh(state)
        if config.hessian_of == "generator" and self.basis is not None:
            # measured in every mode (share of the raw gradient along the sharp directions),
            # applied only by "project"
            self._project(g_params, apply=config.mode == "project")
        if config.mode == "layer" and config.hessian_of == "generator":
            for p in self._layer_params:
                if p.grad is not None:
                    p.grad.zero_()
        if config.hessian_of == "generator":
            self._previous_params = _flat([p.detach() for p in g_params], g_params).clone()
            self._tracking_basis = self.basis

    def _project(self, params: list[Tensor], apply: bool) -> None:
        """g <- g - V V^T g (only measured, not applied, when ``apply`` is False)."""
        grads = [p.grad for p in params]
        g = _flat(grads, params)
        coefficients = self.basis.T @ g  # (s,)
        removed = self.basis @ coefficients  # V V^T g
        norm = float(torch.linalg.vector_norm(g))
        self._removed.append(float(torch.linalg.vector_norm(removed)) / norm if norm else 0.0)
        if not apply:
            return
        projected = g - removed
        offset = 0
        for p in params:
            size = p.numel()
            if p.grad is not None:
                p.grad.copy_(projected[offset : offset + size].view_as(p))
            offset += size

    def _track_update(self, params: list[Tensor]) -> None:
        """Share of the last update theta_now - theta_before along the cached basis."""
        if self._previous_params is None or self._tracking_basis is None:
            return
        with torch.no_grad():
            delta = _flat([p.detach() for p in params], params) - self._previous_params
            norm = float(torch.linalg.vector_norm(delta))
            if norm > 0 and delta.numel() == self._tracking_basis.shape[0]:
                along = float(torch.linalg.vector_norm(self._tracking_basis.T @ delta))
                self._along.append(along / norm)

    # -- the spectrum ----------------------------------------------------------------------------
    def refresh(self, state: TrainState) -> None:
        """Recompute the top-k eigenpairs and the sharp directions at the current weights."""
        config = self.config
        t0 = time.perf_counter()
        batch_size = config.batch_size or state.config.batch_size
        use_critic = config.hessian_of == "critic"
        latent, real = draw_batch(
            state, batch_size, self.data if use_critic else None, seed=config.seed + state.step
        )
        model = state.critic if use_critic else state.generator
        params = _trainable(model)
        with preserved_buffers(state.generator, state.critic):
            if use_critic:
                loss = critic_loss(state.generator, state.critic, real, latent, state.config.loss)
            else:
                loss = generator_loss(state.generator, state.critic, latent, state.config.loss)
            operator = HessianOperator(loss, params)
            # The buffers are restored only after the last product: the graph holds them.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # non-convergence is recorded, not fatal
                result = lanczos(
                    operator,
                    k=config.k,
                    which=config.which,
                    max_iterations=config.max_iterations,
                    tol=config.tol,
                    seed=config.seed,
                    measure_orthogonality=False,
                )
        operator.release()
        values = result.eigenvalues
        sharp = (values if config.which == "LA" else np.abs(values)) > config.threshold
        self.eigenvalues = values
        self.eigenvectors = result.eigenvectors.detach()
        selected = self.eigenvectors[:, torch.as_tensor(np.flatnonzero(sharp), dtype=torch.long)]
        self.basis = torch.linalg.qr(selected).Q if selected.shape[1] else None
        names = {id(p): name for name, p in model.named_parameters()}
        self._layer_params, self.selected_tensors = [], []
        if config.mode == "layer":
            for column in selected.T:
                index = operator.param_index(int(torch.argmax(column.abs())))
                if all(params[index] is not p for p in self._layer_params):
                    self._layer_params.append(params[index])
                    self.selected_tensors.append(names.get(id(params[index]), str(index)))
            if use_critic:
                self._attach_critic_hook(state.d_optimizer)
        record = {
            "step": state.step,
            "eigenvalues": values.copy(),
            "directions": int(sharp.sum()),
            "tensors": list(self.selected_tensors),
            "hvps": result.num_products,
            "converged": result.converged,
            "seconds": time.perf_counter() - t0,
            "removed": float(np.mean(self._removed)) if self._removed else float("nan"),
            "update_along": float(np.mean(self._along)) if self._along else float("nan"),
        }
        self.records.append(record)
        self._removed, self._along = [], []
        self.last_refresh = state.step
        row = {f"nu_eig_{i + 1}": float(v) for i, v in enumerate(values)}
        row.update(
            nu_directions=record["directions"],
            nu_hvps=record["hvps"],
            nu_seconds=record["seconds"],
            nu_removed=record["removed"],
            nu_update_along=record["update_along"],
        )
        state.history.log(state.step, **row)

    def _attach_critic_hook(self, optimizer: torch.optim.Optimizer) -> None:
        if self._critic_optimizer is optimizer:
            return
        self.remove()

        def zero_selected(_optimizer, _args, _kwargs) -> None:
            for p in self._layer_params:  # the critic's tensors chosen at the last refresh
                if p.grad is not None:
                    p.grad.zero_()

        self._critic_hook = optimizer.register_step_pre_hook(zero_selected)
        self._critic_optimizer = optimizer

    def remove(self) -> None:
        """Detach the critic-optimiser hook of ``hessian_of="critic"``, mode="layer"."""
        if self._critic_hook is not None:
            self._critic_hook.remove()
        self._critic_hook, self._critic_optimizer = None, None


__all__ = ["HESSIAN_OF", "MODES", "NuGANConfig", "NuGANHook"]
