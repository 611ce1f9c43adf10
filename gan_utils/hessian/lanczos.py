r"""Hessian spectra of a loss by Hessian-vector products and the Lanczos algorithm (lesson 06).

**Hessian-vector products (double backpropagation).** For a scalar loss :math:`L(\theta)`
the gradient :math:`g(\theta) = \nabla_\theta L` is computed once with
``create_graph=True``, so that it is itself a differentiable function of :math:`\theta`.
Then for any vector :math:`v`

.. math:: H v = \nabla_\theta \big( g(\theta)^\top v \big),

one more backward pass through the graph of :math:`g` (Pearlmutter 1994). The graph is
built once in ``HessianOperator`` and reused (``retain_graph=True``) for every product, so
each product is one backward pass through the gradient's graph and no forward pass: about
the cost of two gradient evaluations (forward + backward) of the loss. The Hessian itself
(:math:`n^2` numbers) is never formed.

**Lanczos.** For a symmetric :math:`A` (here :math:`H`) and a unit start vector
:math:`q_1`, the Lanczos recurrence builds an orthonormal basis
:math:`Q_m = [q_1, \dots, q_m]` of the Krylov space
:math:`\mathcal K_m = \mathrm{span}\{q_1, A q_1, \dots, A^{m-1} q_1\}` in which :math:`A` is
tridiagonal:

.. math::
    \beta_j q_{j+1} = A q_j - \alpha_j q_j - \beta_{j-1} q_{j-1},\quad
    \alpha_j = q_j^\top A q_j,\quad \beta_j = \lVert A q_j - \alpha_j q_j -
    \beta_{j-1} q_{j-1} \rVert,

    Q_m^\top A Q_m = T_m = \mathrm{tridiag}(\beta_{1..m-1};\ \alpha_{1..m};\ \beta_{1..m-1}).

The eigenpairs :math:`(\theta_i, s_i)` of the small :math:`T_m` (``scipy.linalg.
eigh_tridiagonal``) give the *Ritz pairs* :math:`(\theta_i, y_i = Q_m s_i)`, which approach
the extreme eigenpairs of :math:`A` after few iterations (the top ones first when they
stand apart). Their residual is known without another product:
:math:`\lVert A y_i - \theta_i y_i \rVert = \beta_m |s_{m,i}|`, and some eigenvalue of
:math:`A` lies within it of :math:`\theta_i`; we stop when it is below ``tol``
:math:`\cdot |\theta_i|` for every wanted pair. (A Ritz value can settle while an
eigenvalue that the Krylov space has not reached yet is missed; a smaller ``tol`` keeps
iterating longer and guards against it, as in ARPACK.) The Lanczos vectors are kept in
the operator's precision (``basis_dtype`` chooses), the recurrence's scalars in float64.

*Reorthogonalisation.* In floating point the three-term recurrence loses the
orthogonality of :math:`Q_m` as soon as a Ritz value converges (Paige 1971): the converged
direction creeps back into the basis and the same eigenvalue shows up again as a spurious
copy (a *ghost*). Full reorthogonalisation subtracts the components along all previous
vectors at every step, :math:`w \leftarrow w - Q_j (Q_j^\top w)` (classical Gram-Schmidt,
with a second pass when cancellation calls for it), which keeps :math:`Q_m` orthonormal to
rounding and removes the ghosts. ``reorthogonalize=False`` shows the plain recurrence.

*Breakdown.* :math:`\beta_j \approx 0` means :math:`\mathcal K_j` is an invariant subspace:
its Ritz values are exact eigenvalues. With reorthogonalisation the iteration restarts
from a random vector orthogonal to :math:`Q_j` (the off-diagonal of :math:`T` gets a 0), so
repeated eigenvalues are found too; without it the iteration stops there.

**Cost** of a top-k spectrum after m iterations: m Hessian-vector products, plus
:math:`O(n m^2)` for the full reorthogonalisation and :math:`8 n m` bytes for the basis
(n = number of parameters). Typically m is a few times k (20-45 for the top 5 of the
lesson's MNIST generators and critics at ``tol=1e-3``); for a 0.5M-parameter MLP the
reorthogonalisation, memory-bound, costs as much as the products.

The Hessians of a GAN's generator and critic losses (``gan_hessian_spectra``) and a
training callback that logs their top eigenvalues (``spectrum_callback``) are in
``gan_utils.hessian.spectra``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch
from torch import Tensor, nn

from ..core.checks import check_bool, check_choice, check_int, check_number, check_tensor

WHICH = ("LA", "LM", "SA")  # largest algebraic, largest magnitude, smallest algebraic


# ---- Hessian-vector products ------------------------------------------------------------------
class HessianOperator:
    r"""The Hessian :math:`H = \nabla^2_\theta L` of a scalar loss as a linear operator.

    The gradient graph is built once here; ``matvec(v)`` returns :math:`H v` by one
    backward pass through it (double backpropagation), so the loss is evaluated once no
    matter how many products are taken. Vectors are flat: the parameters, flattened and
    concatenated in the order given (``split`` undoes it).

    Args:
        loss: a scalar loss tensor still attached to its graph, or a function of no
            arguments returning one (called once).
        params: the parameters to differentiate by (any subset, e.g. the generator's),
            or a module (its parameters that require grad).

    Attributes:
        num_params: n, the length of the vectors.
        num_products: how many Hessian-vector products were taken so far.
        gradient: the flat gradient :math:`\nabla_\theta L` (detached).
        loss_value: the loss, as a float.
    """

    def __init__(self, loss: Tensor | Callable[[], Tensor], params: Iterable[Tensor] | nn.Module):
        if isinstance(params, nn.Module):
            params = [p for p in params.parameters() if p.requires_grad]
        if isinstance(params, Tensor):
            params = [params]
        if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
            raise TypeError(
                "params must be a module or an iterable of tensors that require grad, got "
                f"{type(params).__name__}"
            )
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError("params must hold at least one tensor that requires grad")
        for i, p in enumerate(self.params):
            check_tensor(f"params[{i}]", p)
            if not p.requires_grad or not p.is_floating_point():
                raise ValueError(
                    f"params[{i}] must be a floating-point tensor with requires_grad=True, "
                    f"got dtype {p.dtype} with requires_grad={p.requires_grad}"
                )
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("params must not contain the same tensor twice")
        dtypes = {p.dtype for p in self.params}
        devices = {p.device for p in self.params}
        if len(dtypes) > 1 or len(devices) > 1:
            raise ValueError(
                f"params must share one dtype and device, got {sorted(map(str, dtypes))} "
                f"on {sorted(map(str, devices))}"
            )
        if callable(loss) and not isinstance(loss, Tensor):
            loss = loss()
        check_tensor("loss", loss)
        if loss.numel() != 1:
            raise ValueError(
                "loss must be a scalar tensor (or a function returning one), "
                f"got shape {tuple(loss.shape)}"
            )
        if not loss.requires_grad:
            raise ValueError("loss must depend on params (it has no autograd graph)")
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.num_params = int(sum(self.sizes))
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.loss_value = float(loss.detach())
        self.num_products = 0
        # g(theta) with its own graph, so that g^T v can be differentiated again.
        grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.gradient = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g.detach()).reshape(-1)
                for p, g in zip(self.params, grads, strict=True)
            ]
        )
        # Only gradients that still depend on theta have a nonzero second derivative.
        self._active = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self._grads: list[Tensor | None] = list(grads)

    def split(self, vector: Tensor) -> list[Tensor]:
        """A flat vector of length ``num_params`` as tensors shaped like ``params``."""
        parts = torch.split(vector, self.sizes)
        return [part.reshape(shape) for part, shape in zip(parts, self.shapes, strict=True)]

    def param_index(self, flat_index: int) -> int:
        """Which of ``params`` holds entry ``flat_index`` of a flat vector."""
        flat_index = check_int("flat_index", flat_index, 0, self.num_params - 1)
        return int(np.searchsorted(self.offsets, flat_index, side="right") - 1)

    def matvec(self, vector: Tensor | np.ndarray) -> Tensor | np.ndarray:
        """H v for a flat ``vector`` of length ``num_params`` (a tensor gives a tensor on the
        parameters' device and dtype; a NumPy array gives a float64 array)."""
        if self._grads is None:
            raise RuntimeError("this HessianOperator was released; build a new one")
        as_numpy = isinstance(vector, np.ndarray)
        v = torch.as_tensor(vector).to(device=self.device, dtype=self.dtype).reshape(-1)
        if v.numel() != self.num_params:
            raise ValueError(
                f"vector must have num_params={self.num_params} entries, got {v.numel()}"
            )
        self.num_products += 1
        out = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        if self._active:
            parts = self.split(v)
            products = torch.autograd.grad(
                [self._grads[i] for i in self._active],
                self.params,
                grad_outputs=[parts[i] for i in self._active],
                retain_graph=True,  # keep the gradient graph for the next product
                allow_unused=True,
            )
            for i, hv in enumerate(products):
                if hv is not None:
                    out[self.offsets[i] : self.offsets[i + 1]] = hv.reshape(-1)
        if as_numpy:
            return out.detach().cpu().numpy().astype(np.float64)
        return out

    __call__ = matvec

    def as_linear_operator(self) -> scipy.sparse.linalg.LinearOperator:
        """The same products as a float64 ``scipy.sparse.linalg.LinearOperator`` (for eigsh)."""
        n = self.num_params
        return scipy.sparse.linalg.LinearOperator(
            (n, n), matvec=lambda x: self.matvec(np.asarray(x).reshape(-1)), dtype=np.float64
        )

    def release(self) -> None:
        """Free the gradient graph (the operator cannot take products afterwards)."""
        self._grads = None
        self._active = []


# ---- Lanczos ----------------------------------------------------------------------------------
@dataclass
class LanczosResult:
    """Top-k Ritz pairs and a record of the iteration.

    Attributes:
        eigenvalues: shape (k,), float64; for which="LA" in decreasing order, for "LM" by
            decreasing magnitude, for "SA" in increasing order.
        eigenvectors: shape (n, k) on the operator's device and dtype; column i goes with
            ``eigenvalues[i]`` (unit norm, sign arbitrary).
        residuals: shape (k,), the bound :math:`\\beta_m |s_{m,i}| = \\lVert A y_i - \\theta_i
            y_i \\rVert` (exact in exact arithmetic).
        converged: every wanted residual reached ``tol`` times its Ritz value's magnitude
            (or the Krylov space filled all n dimensions).
        num_iterations: m, the size of the tridiagonal matrix.
        num_products: matrix-vector (Hessian-vector) products taken: m.
        ritz_values: one array per iteration j = 1..m: every Ritz value of T_j, increasing.
        alphas, betas: the diagonal (m,) and off-diagonal (m - 1,) of T_m.
        orthogonality_error: max |Q_m^T Q_m - I| of the basis at the end (NaN if not
            measured).
        breakdowns: how many times beta was ~0 (invariant subspace found).
        seconds: wall time.
    """

    eigenvalues: np.ndarray
    eigenvectors: Tensor
    residuals: np.ndarray
    converged: bool
    num_iterations: int
    num_products: int
    ritz_values: list[np.ndarray] = field(repr=False)
    alphas: np.ndarray = field(repr=False)
    betas: np.ndarray = field(repr=False)
    orthogonality_error: float = float("nan")
    breakdowns: int = 0
    seconds: float = 0.0
    which: str = "LA"


class _MatrixOperator:
    """A dense symmetric matrix seen as an operator (for lessons and tests)."""

    def __init__(self, matrix: Tensor | np.ndarray):
        if isinstance(matrix, np.ndarray) and matrix.dtype.kind not in "iuf":
            raise TypeError(f"operator must be a matrix of real numbers, got dtype {matrix.dtype}")
        m = torch.as_tensor(matrix)
        if m.dtype == torch.bool or m.is_complex():
            raise TypeError(f"operator must be a matrix of real numbers, got dtype {m.dtype}")
        if not m.is_floating_point():
            m = m.to(torch.get_default_dtype())
        if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
            raise ValueError(f"operator must be a square matrix, got shape {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise ValueError("operator must be a finite matrix, got NaN or inf entries")
        scale = float(m.abs().max()) or 1.0
        if not torch.allclose(m, m.T, rtol=0.0, atol=1e-6 * scale):
            raise ValueError("operator must be a symmetric matrix")
        self.matrix = m
        self.num_params = m.shape[0]
        self.dtype, self.device = m.dtype, m.device
        self.num_products = 0

    def matvec(self, vector: Tensor) -> Tensor:
        self.num_products += 1
        return self.matrix @ vector


def _as_operator(operator) -> tuple[Callable[[Tensor], Tensor], int, torch.dtype, torch.device]:
    if isinstance(operator, (Tensor, np.ndarray)):
        operator = _MatrixOperator(operator)
    if not (hasattr(operator, "matvec") and hasattr(operator, "num_params")):
        raise TypeError(
            "operator must be a HessianOperator, a square symmetric matrix (tensor or array), "
            f"or an object with matvec(vector) and num_params, got {type(operator).__name__}"
        )
    dtype = getattr(operator, "dtype", torch.get_default_dtype())
    device = getattr(operator, "device", torch.device("cpu"))
    return operator.matvec, int(operator.num_params), dtype, device


def _select(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices of the k wanted Ritz values, best first."""
    if which == "LA":
        order = np.argsort(-theta, kind="stable")
    elif which == "SA":
        order = np.argsort(theta, kind="stable")
    else:  # "LM"
        order = np.argsort(-np.abs(theta), kind="stable")
    return order[:k]


def _tridiagonal_eigh(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(alphas, dtype=np.float64)
    e = np.asarray(betas[: len(alphas) - 1], dtype=np.float64)
    if len(d) == 1:
        return d.copy(), np.ones((1, 1))
    return scipy.linalg.eigh_tridiagonal(d, e)


def _orthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """w minus its components along the rows of ``basis`` by classical Gram-Schmidt, with a
    second pass when the norm fell below 1/sqrt(2) of w's, i.e. when cancellation may have
    left rounding errors along the basis (Daniel-Gragg-Kaufman-Stewart: "twice is
    enough")."""
    norm_before = float(torch.linalg.vector_norm(w))
    w = w - basis.T @ (basis @ w)
    if float(torch.linalg.vector_norm(w)) < norm_before / math.sqrt(2.0):
        w = w - basis.T @ (basis @ w)
    return w


def default_max_iterations(k: int, dimension: int) -> int:
    """m used when ``max_iterations`` is None: max(40, 8 k), at most the dimension."""
    k = check_int("k", k, minimum=1)
    dimension = check_int("dimension", dimension, minimum=1)
    return min(dimension, max(40, 8 * k))


def lanczos(
    operator,
    k: int = 5,
    which: str = "LA",
    max_iterations: int | None = None,
    tol: float = 1e-6,
    reorthogonalize: bool = True,
    start_vector: Tensor | np.ndarray | None = None,
    seed: int = 0,
    measure_orthogonality: bool = True,
    basis_dtype: torch.dtype | None = None,
) -> LanczosResult:
    r"""Top-k eigenpairs of a symmetric operator by the Lanczos algorithm.

    See the module docstring for the recurrence, reorthogonalisation and cost.

    Args:
        operator: a ``HessianOperator``, a square symmetric matrix (tensor or array), or
            any object with ``matvec(flat tensor) -> flat tensor`` and ``num_params``.
        k: how many eigenpairs; more than the dimension n returns n (with a warning).
        which: "LA" largest algebraic (the sharpest directions of a loss), "LM" largest
            magnitude (large negative curvature counts too), "SA" smallest algebraic.
        max_iterations: the most Lanczos steps (= products); default
            ``default_max_iterations(k, n)``.
        tol: stop when every wanted Ritz pair has residual
            :math:`\beta_m |s_{m,i}| \le` ``tol`` :math:`\cdot |\theta_i|` (an eigenvalue lies
            that close to :math:`\theta_i`; :math:`|\theta_i|` is floored at
            :math:`\sqrt{\epsilon_{dtype}} \max_j |\theta_j|`); 0 runs all
            ``max_iterations`` steps (to watch the Ritz values, or the ghosts).
        reorthogonalize: full reorthogonalisation (True) or the plain three-term
            recurrence (False, which loses orthogonality and shows ghost eigenvalues).
        start_vector: q_1 before normalisation; default a Gaussian vector from a
            ``torch.Generator`` seeded with ``seed`` (the global RNG is not touched).
        seed: seed of that start vector.
        measure_orthogonality: compute ``orthogonality_error`` = max |Q^T Q - I| at the
            end (costs :math:`O(n m^2)`, like the reorthogonalisation; NaN when False).
        basis_dtype: precision of the Lanczos vectors q_j and of the reorthogonalisation;
            default the operator's own (float32 for a float32 network). The
            reorthogonalisation reads the whole basis twice per step and is limited by
            memory traffic, so a float32 basis halves its cost (``make bench``: top-5 of a
            270k-parameter generator 3.2 s -> 2.0 s, eigenvalues unchanged to 2e-7
            relative); pass ``torch.float64`` for the last digits. The scalars alpha and
            beta and the tridiagonal eigenproblem are always float64.

    Returns:
        A ``LanczosResult`` (eigenvalues, eigenvectors, residuals, Ritz values per
        iteration, number of products, ...).
    """
    matvec, n, dtype, device = _as_operator(operator)
    work = dtype if basis_dtype is None else basis_dtype
    allowed = f"basis_dtype must be None, torch.float32 or torch.float64, got {basis_dtype!r}"
    if not isinstance(work, torch.dtype):
        raise TypeError(f"{allowed} ({type(basis_dtype).__name__})")
    if work not in (torch.float32, torch.float64):
        raise ValueError(allowed)
    k = check_int("k", k, minimum=1)
    check_choice("which", which, WHICH)
    if max_iterations is None:
        max_iterations = default_max_iterations(k, n)
    max_iterations = min(check_int("max_iterations", max_iterations, minimum=1), n)
    check_number("tol", tol, minimum=0)
    check_bool("reorthogonalize", reorthogonalize)
    check_bool("measure_orthogonality", measure_orthogonality)
    seed = check_int("seed", seed, minimum=0)
    if k > n:
        warnings.warn(
            f"k={k} exceeds the dimension {n}; returning all {n} eigenpairs", stacklevel=2
        )
        k = n
    if max_iterations < k:
        raise ValueError(f"max_iterations must be >= k={k}, got {max_iterations}")

    t0 = time.perf_counter()
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    if start_vector is None:
        v = torch.randn(n, generator=generator, dtype=work).to(device)
    else:
        if isinstance(start_vector, np.ndarray) and start_vector.dtype.kind not in "iuf":
            raise TypeError(
                f"start_vector must be a vector of real numbers, got dtype {start_vector.dtype}"
            )
        try:
            v = torch.as_tensor(start_vector)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"start_vector must be a vector of real numbers, got {type(start_vector).__name__}"
            ) from error
        if v.dtype == torch.bool or v.is_complex():
            raise TypeError(f"start_vector must be a vector of real numbers, got dtype {v.dtype}")
        v = v.to(device=device, dtype=work).reshape(-1)
        if v.numel() != n:
            raise ValueError(f"start_vector must have {n} entries, got {v.numel()}")
    norm = float(torch.linalg.vector_norm(v))
    if not norm > 0 or not math.isfinite(norm):
        raise ValueError("start_vector must be finite and nonzero")
    # rows q_1..q_m in `work` precision (the operator's by default: see basis_dtype)
    basis = torch.empty((max_iterations, n), dtype=work, device=device)
    basis[0] = v / norm
    alphas: list[float] = []
    betas: list[float] = []  # betas[j] couples q_{j+1} and q_{j+2}; 0 after a restart
    ritz_values: list[np.ndarray] = []
    breakdown_tol = 100 * torch.finfo(dtype).eps  # beta below this times ||A||: breakdown
    floor = math.sqrt(torch.finfo(dtype).eps)  # |theta| floor, relative to ||A||, for tol
    scale = 0.0  # running estimate of ||A||
    block_start = 0  # first index of the current Krylov block (after the last restart)
    converged = False
    breakdowns = 0
    theta, s = np.zeros(0), np.zeros((0, 0))
    m = 0
    for j in range(max_iterations):
        q = basis[j]
        w = matvec(q.to(dtype)).to(work)
        alpha = float(torch.dot(w, q))
        w = w - alpha * q
        if j > 0:
            w = w - betas[j - 1] * basis[j - 1]
        if reorthogonalize:
            w = _orthogonalize(w, basis[: j + 1])
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        m = j + 1
        scale = max(scale, abs(alpha), beta, betas[j - 1] if j > 0 else 0.0)
        theta, s = _tridiagonal_eigh(alphas, betas)
        ritz_values.append(theta.copy())
        if m == n:  # the Krylov space is the whole space: the Ritz values are exact
            converged = True
            break
        if beta <= breakdown_tol * scale:
            breakdowns += 1
            if not reorthogonalize or j + 1 >= max_iterations:
                break  # invariant subspace; the plain recurrence cannot continue
            restart = torch.randn(n, generator=generator, dtype=work).to(device)
            restart = _orthogonalize(restart, basis[: j + 1])
            restart_norm = float(torch.linalg.vector_norm(restart))
            if not restart_norm > 0:
                break
            betas.append(0.0)
            basis[j + 1] = restart / restart_norm
            block_start = j + 1
            continue
        wanted = _select(theta, k, which)
        residuals = beta * np.abs(s[-1, wanted])
        targets = tol * np.maximum(np.abs(theta[wanted]), floor * scale)
        block_size = m - block_start
        # After a restart, let the new block grow to k steps before trusting convergence,
        # so that further copies of a repeated eigenvalue can appear.
        if (
            tol > 0
            and m >= k
            and (block_start == 0 or block_size >= k)
            and np.all(residuals <= targets)
        ):
            converged = True
            break
        if j + 1 < max_iterations:
            betas.append(beta)
            basis[j + 1] = w / beta

    betas_used = betas[: m - 1]
    if m < k:  # stopped by a breakdown without reorthogonalisation
        k = m
    wanted = _select(theta, k, which)
    last_beta = 0.0 if converged and m == n else float(beta)
    residuals = last_beta * np.abs(s[-1, wanted])
    q_m = basis[:m]
    s_wanted = torch.as_tensor(s[:, wanted], dtype=work, device=device)
    eigenvectors = (q_m.T @ s_wanted).to(dtype)  # (n, k): Ritz vectors y_i = Q_m s_i
    orthogonality_error = float("nan")
    if measure_orthogonality:
        gram = (q_m @ q_m.T).cpu()
        orthogonality_error = float((gram - torch.eye(m, dtype=torch.float64)).abs().max())
    if m < max_iterations and not converged:
        warnings.warn(
            f"Lanczos found an invariant subspace after {m} iterations and stopped there "
            "(the plain recurrence cannot restart; use reorthogonalize=True for more)",
            stacklevel=2,
        )
    elif tol > 0 and not converged:
        warnings.warn(
            f"Lanczos did not reach tol={tol} in {m} iterations (largest residual / |theta|: "
            f"{np.max(residuals / np.maximum(np.abs(theta[wanted]), 1e-300)):.1e}); raise "
            "max_iterations",
            stacklevel=2,
        )
    return LanczosResult(
        eigenvalues=theta[wanted].astype(np.float64),
        eigenvectors=eigenvectors,
        residuals=residuals,
        converged=bool(converged),
        num_iterations=m,
        num_products=m,
        ritz_values=ritz_values,
        alphas=np.asarray(alphas),
        betas=np.asarray(betas_used),
        orthogonality_error=orthogonality_error,
        breakdowns=breakdowns,
        seconds=time.perf_counter() - t0,
        which=which,
    )


def top_eigenpairs(
    loss: Tensor | Callable[[], Tensor],
    params: Iterable[Tensor] | nn.Module,
    k: int = 5,
    which: str = "LA",
    **lanczos_options,
) -> LanczosResult:
    """Top-k eigenpairs of the Hessian of ``loss`` w.r.t. ``params`` (Lanczos on HVPs)."""
    operator = HessianOperator(loss, params)
    try:
        return lanczos(operator, k=k, which=which, **lanczos_options)
    finally:
        operator.release()


@contextlib.contextmanager
def preserved_buffers(*modules: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``modules`` on exit (BatchNorm running statistics, spectral
    norm's power-iteration vectors), so a forward pass in train mode leaves no trace.

    Take every Hessian-vector product *inside* the block: BatchNorm's graph holds its
    running statistics, and restoring them in place invalidates that graph."""
    saved = [(b, b.detach().clone()) for module in modules for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def dense_hessian(
    loss_fn: Callable[[Callable[..., Tensor]], Tensor], module: nn.Module, max_params: int = 4000
) -> Tensor:
    """The full Hessian of a loss over a module's trainable parameters, as an (n, n) matrix.

    A reference for small models only (n^2 numbers, n backward passes): it differentiates
    twice with ``torch.autograd.functional.hessian`` through a *functional* copy of the
    module (``torch.func.functional_call`` with the parameters taken from one flat
    vector), independently of ``HessianOperator``. The module's buffers are restored.

    Args:
        loss_fn: maps a stand-in for the module (call it like the module) to the scalar
            loss, e.g. ``lambda g: loss.generator(critic(g(z)).reshape(-1))``.
        module: whose trainable parameters, flattened in ``parameters()`` order (as in
            ``HessianOperator(loss, module)``), are the variables.
        max_params: refuse larger models (the matrix would not fit a lesson's memory).

    Returns:
        The symmetric Hessian, shape (n, n), in the parameters' dtype.
    """
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("module must have at least one parameter that requires grad")
    n = sum(p.numel() for _, p in named)
    if n > check_int("max_params", max_params, minimum=1):
        raise ValueError(
            f"module has {n:,} parameters, more than max_params={max_params:,}: the full "
            "Hessian is for small reference models (use lanczos on a HessianOperator)"
        )
    names = [name for name, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def loss_of(theta: Tensor) -> Tensor:
        tensors = {
            name: part.reshape(shape)
            for name, part, shape in zip(names, theta.split(sizes), shapes, strict=True)
        }

        def stand_in(*args, **kwargs):
            return torch.func.functional_call(module, tensors, args, kwargs)

        return loss_fn(stand_in)

    with preserved_buffers(module):
        return torch.autograd.functional.hessian(loss_of, theta0)


__all__ = [
    "WHICH",
    "HessianOperator",
    "LanczosResult",
    "default_max_iterations",
    "dense_hessian",
    "lanczos",
    "preserved_buffers",
    "top_eigenpairs",
]
