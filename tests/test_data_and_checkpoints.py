"""Toy mixtures, checkpoints and history."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gan_utils.core.checkpoints import load_checkpoint, model_checkpoint_path, save_checkpoint
from gan_utils.core.history import History
from gan_utils.toy.mixtures import (
    GaussianMixture,
    get_toy_dataset,
    grid,
    ring,
    two_gaussians_1d,
    wide_ring,
)


def test_ring_and_grid_geometry():
    r = ring()
    assert r.num_modes == 8 and r.std == 0.02
    assert torch.allclose(r.centres.norm(dim=1), torch.full((8,), 2.0))
    g = grid()
    assert g.num_modes == 25 and g.std == 0.05
    assert sorted(set(g.centres[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    w = wide_ring()
    assert w.std == 0.05 and torch.allclose(w.centres.norm(dim=1), torch.ones(8))


def test_samples_sit_on_their_modes_with_the_right_spread():
    torch.manual_seed(0)
    g = grid()
    x = g.sample(20000)
    d = torch.cdist(x, g.centres)  # (n, K)
    nearest = d.argmin(1)
    counts = torch.bincount(nearest, minlength=25).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over modes
    residual = x - g.centres[nearest]
    assert residual.std().item() == pytest.approx(0.05, rel=0.03)


def test_sampling_is_seeded_by_the_global_rng_or_a_generator():
    torch.manual_seed(1)
    a = ring().sample(10)
    torch.manual_seed(1)
    b = ring()(10)
    assert torch.equal(a, b)
    gen1, gen2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(ring().sample(10, generator=gen1), ring().sample(10, generator=gen2))


def test_density_of_1d_mixture_matches_scipy():
    m = two_gaussians_1d(means=(-2.0, 2.0), std=0.5, weights=(0.3, 0.7))
    x = np.linspace(-4, 4, 9)
    expected = 0.3 * stats.norm.pdf(x, -2, 0.5) + 0.7 * stats.norm.pdf(x, 2, 0.5)
    assert np.allclose(m.density(torch.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-9)


def test_bad_mixture_inputs():
    with pytest.raises(ValueError, match="std"):
        GaussianMixture(torch.zeros(2, 2), std=0)
    with pytest.raises(ValueError, match="num_samples"):
        ring().sample(0)
    with pytest.raises(ValueError, match="ring.*grid.*wide_ring"):
        get_toy_dataset("moons")
    with pytest.raises(TypeError, match="dataset must be one of"):
        get_toy_dataset(2)
    with pytest.raises(TypeError, match="num_samples"):
        ring().sample(2.0)
    with pytest.raises(TypeError, match="num_modes"):
        ring(num_modes=2.5)
    with pytest.raises(ValueError, match="num_modes"):
        ring(num_modes=0)
    with pytest.raises(TypeError, match="std"):
        GaussianMixture(torch.zeros(2, 2), std="0.1")
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(torch.zeros(2, 2), std=0.1, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="centres"):
        GaussianMixture(torch.zeros(0, 2), std=0.1)


def test_checkpoint_roundtrip_and_missing_file(tmp_path):
    path = save_checkpoint(tmp_path / "a" / "c.pt", {"w": torch.arange(3), "note": "x"})
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(3))
    assert not list(tmp_path.glob("a/*.tmp"))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_checkpoint_path_is_one_per_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    p = model_checkpoint_path("04_vanilla_gan", "dcgan", "non_saturating", 10, 0)
    assert p.parent == tmp_path.resolve() / "artifacts" / "models" / "04_vanilla_gan"
    assert p.name == "dcgan-non_saturating-z10-seed0.pt"
    assert p != model_checkpoint_path("04_vanilla_gan", "dcgan", "non_saturating", 1, 0)
    with pytest.raises(ValueError, match="model"):
        model_checkpoint_path("04", "a/b", "x", 1, 0)
    with pytest.raises(TypeError, match="loss"):
        model_checkpoint_path("04", "dcgan", None, 1, 0)
    with pytest.raises(TypeError, match="latent_dim"):
        model_checkpoint_path("04", "dcgan", "x", 1.5, 0)
    with pytest.raises(ValueError, match="seed"):
        model_checkpoint_path("04", "dcgan", "x", 1, -1)


def test_history_series_and_equality():
    h = History()
    h.log(10, d_loss=1.0, g_loss=2.0)
    h.log(10, modes=3)
    h.log(20, d_loss=0.5, g_loss=math.nan)
    steps, values = h.series("d_loss")
    assert steps.tolist() == [10, 20] and values.tolist() == [1.0, 0.5]
    assert h.last("modes") == 3
    assert h == History(h.to_list())
    with pytest.raises(KeyError, match="d_loss"):
        h.series("nope")


def test_history_as_json_drops_the_excluded_keys_and_plains_numpy_and_tensor_scalars():
    import json

    import numpy as np
    import torch

    from gan_utils.core.history import History

    history = History(
        [{"step": 1, "loss": np.float32(0.5), "seconds": 3.2, "x": torch.tensor(2.0)}]
    )
    rows = json.loads(history.to_json(exclude=("seconds",)))
    assert rows == [{"step": 1, "loss": 0.5, "x": 2.0}]
    assert json.loads(history.to_json())[0]["seconds"] == 3.2
