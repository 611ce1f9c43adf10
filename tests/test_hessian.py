"""Hessian-vector products and Lanczos against independent references: the full Hessian
(torch.autograd.functional.hessian + numpy.linalg.eigh), scipy's eigsh on the same
products, finite differences of the gradient; and the spectrum callback's isolation."""

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg
import torch
from tiny_gans import tiny_gan
from torch import nn

from gan_utils.core.losses import get_loss
from gan_utils.core.train import TrainConfig, train
from gan_utils.hessian.lanczos import (
    HessianOperator,
    dense_hessian,
    lanczos,
    top_eigenpairs,
)
from gan_utils.hessian.spectra import gan_hessian_spectra, spectrum_callback
from gan_utils.toy.mixtures import ring

RTOL = 1e-6


def small_regression(seed=0):
    """A tanh MLP (3 -> 6 -> 2, 38 parameters) and a non-convex loss on fixed data."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    x, y = torch.randn(20, 3), torch.randn(20, 2)

    def loss_of(output):
        return ((output - y) ** 2).mean() + 0.5 * (output**4).mean()

    return net, x, loss_of


def functional_forward(model: nn.Sequential, theta: torch.Tensor, x: torch.Tensor):
    """The model's forward pass written out with its parameters taken from the flat theta
    (Linear, Tanh, LeakyReLU, BatchNorm1d in train mode): independent of our code."""
    offset = 0

    def take(shape):
        nonlocal offset
        size = int(np.prod(shape))
        part = theta[offset : offset + size].reshape(shape)
        offset += size
        return part

    for layer in model:
        if isinstance(layer, nn.Linear):
            weight = take(layer.weight.shape)
            x = x @ weight.T + take(layer.bias.shape)
        elif isinstance(layer, nn.BatchNorm1d):
            weight, bias = take(layer.weight.shape), take(layer.bias.shape)
            mean, var = x.mean(0), x.var(0, unbiased=False)
            x = (x - mean) / torch.sqrt(var + layer.eps) * weight + bias
        elif isinstance(layer, nn.Tanh):
            x = torch.tanh(x)
        elif isinstance(layer, nn.LeakyReLU):
            x = torch.where(x > 0, x, layer.negative_slope * x)
        else:
            raise TypeError(f"no functional form for {layer}")
    assert offset == theta.numel()
    return x


def flat_function(model, inputs_fn):
    """theta -> loss with the model's parameters replaced by the flat vector theta."""

    def f(theta):
        return inputs_fn(lambda x: functional_forward(model, theta, x))

    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return f, theta0


def full_hessian(model, inputs_fn) -> np.ndarray:
    f, theta0 = flat_function(model, inputs_fn)
    return torch.autograd.functional.hessian(f, theta0).numpy()


def top(values, k, which="LA"):
    values = np.asarray(values)
    order = np.argsort(-values) if which == "LA" else np.argsort(-np.abs(values))
    return values[order][:k]


def test_hvp_matches_full_hessian_and_finite_differences(float64):
    net, x, loss_of = small_regression()
    operator = HessianOperator(lambda: loss_of(net(x)), net)
    hessian = full_hessian(net, lambda model: loss_of(model(x)))
    assert operator.num_params == hessian.shape[0] == 38
    v = torch.randn(operator.num_params)
    hv = operator.matvec(v)
    np.testing.assert_allclose(hv.numpy(), hessian @ v.numpy(), rtol=1e-10, atol=1e-12)
    # central differences of the gradient: (g(theta + eps v) - g(theta - eps v)) / (2 eps)
    f, theta0 = flat_function(net, lambda model: loss_of(model(x)))
    eps = 1e-5

    def grad(theta):
        theta = theta.clone().requires_grad_(True)
        return torch.autograd.grad(f(theta), theta)[0]

    fd = (grad(theta0 + eps * v) - grad(theta0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), fd.numpy(), rtol=1e-6, atol=1e-8)
    # NumPy in, NumPy out
    np.testing.assert_allclose(operator.matvec(v.numpy()), hv.numpy(), rtol=1e-12)


def test_gradient_graph_is_built_once(float64, monkeypatch):
    net, x, loss_of = small_regression()
    forward_calls, grad_calls = [], []
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        grad_calls.append(kwargs.get("create_graph", False))
        return real_grad(*args, **kwargs)

    def loss_fn():
        forward_calls.append(1)
        return loss_of(net(x))

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    operator = HessianOperator(loss_fn, net)
    for _ in range(10):
        operator.matvec(torch.randn(operator.num_params))
    assert len(forward_calls) == 1  # one forward pass for all products
    assert grad_calls == [True] + [False] * 10  # one gradient graph, then one pass per product
    assert operator.num_products == 10


@pytest.mark.parametrize("reference", ["full_hessian", "eigsh"])
def test_top_eigenvalues_match_references(float64, reference):
    net, x, loss_of = small_regression()
    operator = HessianOperator(loss_of(net(x)), net)
    result = lanczos(operator, k=4, which="LA", tol=1e-8)
    if reference == "full_hessian":
        expected = top(np.linalg.eigh(full_hessian(net, lambda m: loss_of(m(x))))[0], 4)
    else:
        values = scipy.sparse.linalg.eigsh(
            operator.as_linear_operator(), k=4, which="LA", tol=1e-12
        )[0]
        expected = top(values, 4)
    assert result.converged
    np.testing.assert_allclose(result.eigenvalues, expected, rtol=RTOL)
    assert result.num_products == result.num_iterations < operator.num_params


def test_largest_magnitude_finds_a_large_negative_eigenvalue(float64):
    torch.manual_seed(1)
    n = 30
    q, _ = torch.linalg.qr(torch.randn(n, n))
    spectrum = torch.cat([torch.tensor([-40.0, 25.0, -18.0, 12.0]), torch.rand(n - 4) * 4 - 2])
    a = q @ torch.diag(spectrum) @ q.T
    theta = nn.Parameter(0.1 * torch.randn(n))

    def loss():  # Hessian A + 3 diag(theta^2): a quadratic with a quartic bend
        return 0.5 * theta @ a @ theta + 0.25 * (theta**4).sum()

    hessian = torch.autograd.functional.hessian(
        lambda t: 0.5 * t @ a @ t + 0.25 * (t**4).sum(), theta.detach()
    ).numpy()
    exact = np.linalg.eigh(hessian)[0]
    operator = HessianOperator(loss, [theta])
    magnitude = lanczos(operator, k=3, which="LM", tol=1e-10)
    np.testing.assert_allclose(magnitude.eigenvalues, top(exact, 3, "LM"), rtol=RTOL)
    assert magnitude.eigenvalues[0] < -39  # the negative one comes first
    eigsh_lm = scipy.sparse.linalg.eigsh(operator.as_linear_operator(), k=3, which="LM")[0]
    np.testing.assert_allclose(np.sort(magnitude.eigenvalues), np.sort(eigsh_lm), rtol=RTOL)
    largest = lanczos(operator, k=3, which="LA", tol=1e-10)
    np.testing.assert_allclose(largest.eigenvalues, top(exact, 3, "LA"), rtol=RTOL)
    assert np.all(largest.eigenvalues > 0)


def test_eigenvectors_are_orthonormal_eigenvectors(float64):
    net, x, loss_of = small_regression()
    operator = HessianOperator(loss_of(net(x)), net)
    result = lanczos(operator, k=5, tol=1e-10, max_iterations=38)
    v = result.eigenvectors
    assert v.shape == (operator.num_params, 5)
    np.testing.assert_allclose((v.T @ v).numpy(), np.eye(5), atol=1e-10)
    hessian = full_hessian(net, lambda m: loss_of(m(x)))
    residual = hessian @ v.numpy() - v.numpy() * result.eigenvalues
    assert np.abs(residual).max() < 1e-6 * np.abs(result.eigenvalues).max()
    assert result.orthogonality_error < 1e-12
    assert result.residuals.max() < 1e-8


def test_parameter_subset_gives_the_diagonal_block(float64):
    net, x, loss_of = small_regression()
    last_layer = list(net[2].parameters())  # 6*2 + 2 = 14 parameters, the last ones
    result = top_eigenpairs(loss_of(net(x)), last_layer, k=3, tol=1e-10)
    block = full_hessian(net, lambda m: loss_of(m(x)))[-14:, -14:]
    np.testing.assert_allclose(result.eigenvalues, top(np.linalg.eigh(block)[0], 3), rtol=RTOL)


def strakos_matrix(n=48, lowest=0.1, highest=100.0, rho=0.9) -> np.ndarray:
    """Strakos' test matrix: eigenvalues dense at the low end, a few isolated at the top."""
    i = np.arange(n)
    return np.diag(lowest + i / (n - 1) * (highest - lowest) * rho ** (n - 1 - i))


def test_without_reorthogonalisation_ghost_copies_appear():
    a = strakos_matrix()
    top_eigenvalue = a.max()
    plain = lanczos(a, k=3, tol=0, max_iterations=48, reorthogonalize=False)
    full = lanczos(a, k=3, tol=0, max_iterations=48, reorthogonalize=True)
    copies_plain = np.sum(np.abs(plain.ritz_values[-1] - top_eigenvalue) < 1e-6)
    copies_full = np.sum(np.abs(full.ritz_values[-1] - top_eigenvalue) < 1e-6)
    assert copies_plain >= 2  # ghosts of the top eigenvalue
    assert copies_full == 1
    assert plain.orthogonality_error > 0.1
    assert full.orthogonality_error < 1e-12
    # the record of Ritz values grows by one per iteration and interlaces upwards
    assert [len(r) for r in full.ritz_values] == list(range(1, 49))
    largest = [r.max() for r in full.ritz_values]
    assert np.all(np.diff(largest) >= -1e-9)


def test_breakdown_repeated_eigenvalues_and_k_larger_than_dimension():
    a = np.diag([3.0, 3.0, 3.0, 1.0, 1.0] + [0.0] * 15)
    result = lanczos(a, k=3, tol=1e-10)
    np.testing.assert_allclose(result.eigenvalues, [3.0, 3.0, 3.0], rtol=1e-12)
    assert result.breakdowns >= 2
    identity = lanczos(np.eye(10), k=2)
    np.testing.assert_allclose(identity.eigenvalues, [1.0, 1.0])
    with pytest.warns(UserWarning, match="exceeds the dimension"):
        small = lanczos(np.diag([1.0, 2.0, 3.0]), k=5)
    np.testing.assert_allclose(small.eigenvalues, [3.0, 2.0, 1.0])
    # the plain recurrence stops at the breakdown instead of restarting
    with pytest.warns(UserWarning, match="invariant subspace"):
        plain = lanczos(np.eye(4), k=2, reorthogonalize=False)
    assert plain.num_iterations == 1 and len(plain.eigenvalues) == 1


def test_invalid_arguments_name_the_parameter(float64):
    net, x, loss_of = small_regression()
    operator = HessianOperator(loss_of(net(x)), net)
    for kwargs, name in [
        ({"k": 0}, "k"),
        ({"which": "BE"}, "which"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"tol": -1.0}, "tol"),
        ({"k": 5, "max_iterations": 3}, "max_iterations"),
        ({"start_vector": torch.zeros(38)}, "start_vector"),
        ({"start_vector": torch.ones(3)}, "start_vector"),
        ({"basis_dtype": torch.float16}, "basis_dtype"),
    ]:
        with pytest.raises(ValueError, match=name):
            lanczos(operator, **kwargs)
    with pytest.raises(ValueError, match="vector"):
        operator.matvec(torch.ones(5))
    with pytest.raises(ValueError, match="symmetric"):
        lanczos(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        lanczos(np.ones((2, 3)))
    with pytest.raises(TypeError, match="operator"):
        lanczos("not an operator")
    with pytest.raises(ValueError, match="params"):
        HessianOperator(loss_of(net(x)), [])
    with pytest.raises(ValueError, match="params"):
        HessianOperator(loss_of(net(x)), [net[0].weight, net[0].weight])
    with pytest.raises(ValueError, match="loss"):
        HessianOperator(net(x), net)  # not a scalar
    with pytest.raises(ValueError, match="loss"):
        HessianOperator(torch.tensor(1.0), net)  # no graph
    with pytest.raises(ValueError, match="players"):
        gan_hessian_spectra(net, net, x, players=("referee",))
    with pytest.raises(ValueError, match="every_steps"):
        spectrum_callback(0)
    with pytest.raises(ValueError, match="data"):
        spectrum_callback(5)  # the critic's Hessian needs real data
    with pytest.raises(ValueError, match="flat_index"):
        operator.param_index(38)


def test_arguments_of_the_wrong_type_are_type_errors(float64):
    net, x, loss_of = small_regression()
    operator = HessianOperator(loss_of(net(x)), net)
    for kwargs, name in [
        ({"k": 1.5}, "k"),
        ({"k": True}, "k"),
        ({"which": 1}, "which"),
        ({"max_iterations": 10.0}, "max_iterations"),
        ({"tol": "1e-3"}, "tol"),
        ({"seed": 0.5}, "seed"),
        ({"reorthogonalize": 1}, "reorthogonalize"),
        ({"basis_dtype": "float32"}, "basis_dtype"),
    ]:
        with pytest.raises(TypeError, match=name):
            lanczos(operator, **kwargs)
    with pytest.raises(TypeError, match="flat_index"):
        operator.param_index(1.0)
    with pytest.raises(TypeError, match="params"):
        HessianOperator(loss_of(net(x)), [1.0])
    with pytest.raises(TypeError, match="loss"):
        HessianOperator(lambda: 1.0, net)
    with pytest.raises(TypeError, match="players"):
        gan_hessian_spectra(net, net, x, players=("generator", 2))
    with pytest.raises(TypeError, match="every_steps"):
        spectrum_callback(2.5, players="generator")
    with pytest.raises(TypeError, match="max_params"):
        dense_hessian(lambda g: g(x).sum(), net, max_params=None)


def test_unused_and_linear_parameters_have_zero_curvature(float64):
    a = nn.Parameter(torch.randn(3))
    b = nn.Parameter(torch.randn(2))  # enters linearly: its gradient is constant
    c = nn.Parameter(torch.randn(4))  # not used at all
    operator = HessianOperator((a**3).sum() + b.sum(), [a, b, c])
    v = torch.ones(9)
    expected = torch.cat([6 * a.detach(), torch.zeros(6)])
    np.testing.assert_allclose(operator.matvec(v).numpy(), expected.numpy(), rtol=1e-12)
    assert operator.param_index(3) == 1 and operator.param_index(8) == 2


def test_gan_spectra_match_the_full_hessians_and_leave_buffers_alone(float64):
    generator, critic = tiny_gan(batch_norm=True)
    z, real = torch.randn(16, 2), torch.randn(16, 2)
    loss = get_loss("least_squares")
    buffers = [b.clone() for b in generator.buffers()]
    spectra = gan_hessian_spectra(generator, critic, z, real, loss="least_squares", k=3, tol=1e-10)
    assert all(torch.equal(a, b) for a, b in zip(buffers, generator.buffers(), strict=True))
    g_hessian = full_hessian(generator, lambda g: loss.generator(critic(g(z)).reshape(-1)))
    np.testing.assert_allclose(
        spectra["generator"].eigenvalues, top(np.linalg.eigh(g_hessian)[0], 3), rtol=RTOL
    )
    fake = generator(z).detach()
    d_hessian = full_hessian(
        critic, lambda d: loss.critic(d(real).reshape(-1), d(fake).reshape(-1))
    )
    np.testing.assert_allclose(
        spectra["critic"].eigenvalues, top(np.linalg.eigh(d_hessian)[0], 3), rtol=RTOL
    )


CONFIG = TrainConfig(
    latent_dim=2, batch_size=32, num_steps=8, log_every=4, progress=False, device="cpu"
)


def test_spectrum_callback_logs_and_leaves_training_unchanged():
    # a spectral-norm critic: its forward passes move the power-iteration buffers
    data = ring()
    generator, critic = tiny_gan(spectral_norm=True)
    plain = train(generator, critic, data, CONFIG)
    plain_weights = [
        t.detach().clone()
        for t in (*generator.state_dict().values(), *critic.state_dict().values())
    ]

    generator, critic = tiny_gan(spectral_norm=True)
    callback = spectrum_callback(4, k=3, data=data, max_iterations=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracked = train(generator, critic, data, CONFIG, callbacks=[callback])
    weights = [
        t.detach().clone()
        for t in (*generator.state_dict().values(), *critic.state_dict().values())
    ]
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.array_equal(plain.series(key)[1], tracked.series(key)[1]), key
    assert all(torch.equal(a, b) for a, b in zip(plain_weights, weights, strict=True))

    steps, g1 = tracked.series("g_eig_1")
    assert steps.tolist() == [4, 8]
    for step_row in (r for r in tracked.rows if "g_eig_1" in r):
        g = [step_row[f"g_eig_{i}"] for i in (1, 2, 3)]
        d = [step_row[f"d_eig_{i}"] for i in (1, 2, 3)]
        assert g == sorted(g, reverse=True) and d == sorted(d, reverse=True)
        assert np.all(np.isfinite(g + d)) and step_row["g_hvps"] >= 3
    # the logged value is the generator's top eigenvalue at the final weights (same batch)
    torch.manual_seed(12345)
    z = torch.randn(32, 2)
    loss = get_loss(CONFIG.loss)
    hessian = full_hessian(generator, lambda g: loss.generator(critic(g(z)).reshape(-1)))
    assert g1[-1] == pytest.approx(np.linalg.eigvalsh(hessian.astype(np.float64))[-1], rel=1e-3)


def test_dense_hessian_matches_the_written_out_reference(float64):
    net, x, loss_of = small_regression()
    expected = full_hessian(net, lambda model: loss_of(model(x)))
    np.testing.assert_allclose(
        dense_hessian(lambda model: loss_of(model(x)), net).numpy(),
        expected,
        rtol=1e-10,
        atol=1e-12,
    )
    generator, critic = tiny_gan(batch_norm=True)  # train-mode BatchNorm: buffers restored
    z = torch.randn(16, 2)
    buffers = [b.clone() for b in generator.buffers()]
    loss = get_loss("non_saturating")

    def g_loss(g):
        return loss.generator(critic(g(z)).reshape(-1))

    np.testing.assert_allclose(
        dense_hessian(g_loss, generator).numpy(),
        full_hessian(generator, g_loss),
        rtol=1e-9,
        atol=1e-12,
    )
    assert all(torch.equal(a, b) for a, b in zip(buffers, generator.buffers(), strict=True))
    with pytest.raises(ValueError, match="max_params"):
        dense_hessian(g_loss, generator, max_params=10)


def test_a_float32_basis_keeps_the_eigenvalues_of_a_float32_network():
    """The basis defaults to the operator's dtype (half the memory traffic of float64 in
    the reorthogonalisation); on a float32 network it finds what eigsh and a float64 basis
    find, to float32 accuracy."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    operator = HessianOperator(lambda: ((net(x) - y) ** 2).mean(), net)
    in_float32 = lanczos(operator, k=3, tol=1e-6, seed=1)
    in_float64 = lanczos(operator, k=3, tol=1e-6, seed=1, basis_dtype=torch.float64)
    values = scipy.sparse.linalg.eigsh(operator.as_linear_operator(), k=3, which="LA", tol=1e-10)[0]
    assert in_float32.eigenvectors.dtype == torch.float32
    np.testing.assert_allclose(in_float32.eigenvalues, top(values, 3), rtol=1e-5)
    np.testing.assert_allclose(in_float32.eigenvalues, in_float64.eigenvalues, rtol=1e-5)
    assert in_float32.orthogonality_error < 1e-5
