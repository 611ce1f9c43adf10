"""gan_utils.core.checks: one wording ("<name> must be <allowed>, got <value>") and one rule
(wrong type: TypeError; right type out of range: ValueError), for the checks themselves
and for the public entry points that use them."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gan_utils.core.checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_probability,
    check_tensor,
)

NOT_INTEGERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
NOT_NUMBERS = st.one_of(
    st.text(max_size=5), st.booleans(), st.none(), st.lists(st.floats(), max_size=2)
)


# ---- check_int ------------------------------------------------------------------------
@given(st.integers(-1000, 1000), st.integers(0, 1000))
def test_check_int_returns_any_int_in_range(minimum, span):
    for value in (minimum, minimum + span):
        result = check_int("n", value, minimum=minimum, maximum=minimum + span)
        assert result == value and type(result) is int


@given(st.integers(-(2**40), 2**40))
def test_check_int_accepts_numpy_integers_and_returns_a_python_int(value):
    result = check_int("n", np.int64(value))
    assert result == value and type(result) is int


@given(NOT_INTEGERS)
def test_check_int_refuses_other_types_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^num_modes must be an integer >= 1, got ") as info:
        check_int("num_modes", value, minimum=1)
    assert repr(value) in str(info.value)


@given(st.integers(max_value=0))
def test_check_int_below_the_minimum_is_a_value_error_naming_name_and_value(value):
    with pytest.raises(ValueError) as info:
        check_int("num_steps", value, minimum=1)
    assert str(info.value) == f"num_steps must be an integer >= 1, got {value}"


@given(st.integers(min_value=11))
def test_check_int_above_the_maximum_is_a_value_error(value):
    with pytest.raises(ValueError, match=rf"^k must be an integer in \[1, 10\], got {value}$"):
        check_int("k", value, minimum=1, maximum=10)


def test_check_int_wording_of_the_bounds():
    with pytest.raises(ValueError, match=r"x must be an integer <= 3, got 4"):
        check_int("x", 4, maximum=3)
    assert check_int("x", -(10**30)) == -(10**30)  # no bounds: any integer


# ---- check_number ---------------------------------------------------------------------
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6))
def test_check_number_returns_any_finite_number_as_a_float(value):
    result = check_number("x", value)
    assert result == value and type(result) is float


@given(NOT_NUMBERS)
def test_check_number_refuses_other_types_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^lr must be a finite number > 0, got "):
        check_number("lr", value, minimum=0, min_open=True)


@given(st.floats(max_value=0.0, allow_nan=False))
def test_check_number_at_or_below_an_open_minimum_is_a_value_error(value):
    with pytest.raises(ValueError, match="lr must be a finite number > 0") as info:
        check_number("lr", value, minimum=0, min_open=True)
    assert repr(float(value)) in str(info.value)


def test_check_number_nan_inf_and_closed_or_open_bounds():
    with pytest.raises(ValueError, match="x must be a finite number, got nan"):
        check_number("x", math.nan)
    with pytest.raises(ValueError, match="got inf"):
        check_number("x", math.inf)
    assert check_number("x", math.inf, finite=False) == math.inf
    with pytest.raises(ValueError, match="x must be a number, got nan"):
        check_number("x", math.nan, finite=False)
    assert check_number("x", 0.0, minimum=0) == 0.0
    assert check_number("x", 1, maximum=1) == 1.0
    with pytest.raises(ValueError, match=r"x must be a finite number in \[0, 0.5\), got 0.5"):
        check_number("x", 0.5, 0, 0.5, max_open=True)
    assert check_number("x", np.float32(0.25)) == 0.25


# ---- check_probability -----------------------------------------------------------------
@given(st.floats(0.0, 1.0))
def test_check_probability_returns_any_probability(value):
    assert check_probability("p", value) == value


@given(st.floats(allow_nan=False).filter(lambda v: not 0.0 <= v <= 1.0))
def test_check_probability_outside_the_unit_interval_is_a_value_error(value):
    with pytest.raises(ValueError, match=r"^p must be a finite number in \[0.0, 1.0\], got "):
        check_probability("p", value)


def test_check_probability_open_ends_and_types():
    with pytest.raises(ValueError, match=r"\(0.0, 1.0\]"):
        check_probability("topk_nu", 0.0, min_open=True)
    with pytest.raises(ValueError, match=r"\[0.0, 1.0\)"):
        check_probability("p", 1.0, max_open=True)
    with pytest.raises(TypeError, match="p must be"):
        check_probability("p", "0.5")


# ---- check_bool ----------------------------------------------------------------------------
@given(st.booleans())
def test_check_bool_returns_a_bool(value):
    assert check_bool("flag", value) is value
    assert check_bool("flag", np.bool_(value)) is value


@given(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats()))
def test_check_bool_refuses_everything_else_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^flag must be True or False, got "):
        check_bool("flag", value)


# ---- check_choice --------------------------------------------------------------------------
CHOICES = ("adam", "rmsprop", "sgd")


@given(st.sampled_from(CHOICES))
def test_check_choice_returns_a_choice(value):
    assert check_choice("optimizer", value, CHOICES) == value


@given(st.text(max_size=8).filter(lambda v: v not in CHOICES))
def test_check_choice_of_an_unknown_name_is_a_value_error_listing_the_choices(value):
    with pytest.raises(ValueError) as info:
        check_choice("optimizer", value, CHOICES)
    message = str(info.value)
    assert message == f"optimizer must be one of {list(CHOICES)}, got {value!r}"


@given(st.one_of(st.integers(), st.none(), st.floats(), st.booleans()))
def test_check_choice_of_another_type_is_a_type_error(value):
    with pytest.raises(TypeError, match=r"optimizer must be one of \['adam'"):
        check_choice("optimizer", value, CHOICES)


def test_check_choice_takes_dict_keys_and_numbers():
    assert check_choice("activation", "relu", {"relu": 1, "tanh": 2}) == "relu"
    assert check_choice("k", 2, (1, 2, 4)) == 2
    with pytest.raises(ValueError, match=r"k must be one of \[1, 2, 4\], got 3"):
        check_choice("k", 3, (1, 2, 4))


# ---- check_tensor --------------------------------------------------------------------------
def test_check_tensor_shapes_rows_and_values():
    x = torch.zeros(4, 2)
    assert check_tensor("x", x, (None, 2), min_rows=1) is x
    assert check_tensor("x", x, ndim=(1, 2), minimum=0, maximum=0) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        check_tensor("x", [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\), got \(4, 2\)"):
        check_tensor("x", x, (None, 3))
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, got shape \(4, 2\)"):
        check_tensor("x", x, ndim=3)
    with pytest.raises(ValueError, match="x must hold at least 5 rows, got 4"):
        check_tensor("x", x, min_rows=5)
    with pytest.raises(ValueError, match=r"x must have values in \[-1, 1\], got \[0, 2\]"):
        check_tensor("x", torch.tensor([0.0, 2.0]), minimum=-1, maximum=1)
    with pytest.raises(ValueError, match="NaN"):
        check_tensor("x", torch.tensor([math.nan]), minimum=0)


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=20))
def test_check_tensor_accepts_values_in_range(values):
    t = torch.tensor(values, dtype=torch.float64)
    assert check_tensor("x", t, (len(values),), minimum=-1, maximum=1) is t


# ---- the public entry points that use the checks ------------------------------------------
def _lanczos(**kwargs):
    from gan_utils.hessian.lanczos import lanczos

    return lanczos(torch.eye(4, dtype=torch.float64), **kwargs)


def _train_config(**changes):
    from gan_utils.core.train import TrainConfig

    return dataclasses.replace(TrainConfig(device="cpu"), **changes).validate()


def _toy_settings(**changes):
    from gan_utils.toy.runs import ToySettings

    return ToySettings(**changes)


def _mixture(**kwargs):
    from gan_utils.toy.mixtures import GaussianMixture

    return GaussianMixture(**{"centres": torch.zeros(2, 2), "std": 0.1, **kwargs})


def _ring(**kwargs):
    from gan_utils.toy.mixtures import ring

    return ring(**kwargs)


def _sample(num_samples):
    from gan_utils.toy.mixtures import ring

    return ring().sample(num_samples)


def _mlp(**kwargs):
    from gan_utils.core.mlp import mlp

    return mlp(**{"in_features": 2, "out_features": 1, **kwargs})


def _classifier_config(**changes):
    from gan_utils.images.classifier import ClassifierConfig

    return ClassifierConfig(**changes).validate()


def _dense_generator(**kwargs):
    from gan_utils.images.models import dense_generator

    return dense_generator(**{"latent_dim": 2, **kwargs})


def _coverage(**kwargs):
    from gan_utils.toy.coverage import mode_coverage

    args = {"samples": torch.zeros(5, 2), "centres": torch.zeros(1, 2), "std": 0.1, **kwargs}
    return mode_coverage(**args)


def _spectrum_callback(**kwargs):
    from gan_utils.hessian.spectra import spectrum_callback

    return spectrum_callback(**{"every_steps": 5, "players": "generator", **kwargs})


def _sample_latent(**kwargs):
    from gan_utils.core.latent import sample_latent

    return sample_latent(**{"batch_size": 4, "latent_dim": 2, **kwargs})


def _variant(**kwargs):
    from gan_utils.core.variants import Variant

    return Variant(**{"name": "x", "loss": "hinge", "description": "x", **kwargs})


def _get_variant(name):
    from gan_utils.core.variants import get_variant

    return get_variant(name)


def _get_loss(name):
    from gan_utils.core.losses import get_loss

    return get_loss(name)


def _set_seed(seed):
    from gan_utils.core.runtime import set_seed

    return set_seed(seed)


def _colour(**kwargs):
    from gan_utils.images.colour import load_colour_images

    return load_colour_images(**{"source": "sklearn", "num_images": 2, **kwargs})


def _late_mean(share):
    from gan_utils.core.history import History
    from gan_utils.hessian.sharpness import late_mean

    history = History()
    history.log(1, v=1.0)
    return late_mean(history, "v", share=share)


def _histogram(**kwargs):
    from gan_utils.toy.diagnostics import histogram_density

    return histogram_density(np.zeros(3), **kwargs)


def _checkpoint_path(**kwargs):
    from gan_utils.core.checkpoints import model_checkpoint_path

    args = {"lesson": "04", "model": "dense", "loss": "x", "latent_dim": 2, "seed": 0}
    return model_checkpoint_path(**{**args, **kwargs})


def _explorer(refresh_every):
    from gan_utils.toy.explorer import ToyExplorer

    return ToyExplorer(refresh_every=refresh_every)


ENTRY_POINTS = [
    # (call, error, parameter name)
    (lambda: _toy_settings(num_steps=2.5), TypeError, "num_steps"),
    (lambda: _toy_settings(num_steps=0), ValueError, "num_steps"),
    (lambda: _toy_settings(batch_size="8"), TypeError, "batch_size"),
    (lambda: _toy_settings(lr=0), ValueError, "lr"),
    (lambda: _toy_settings(lr_d=-1e-4), ValueError, "lr_d must be a finite number > 0"),
    (lambda: _toy_settings(betas=(0.5,)), ValueError, "betas must be a pair"),
    (lambda: _toy_settings(betas=0.5), TypeError, "betas must be a pair"),
    (lambda: _toy_settings(betas=(0.5, 1.0)), ValueError, "betas"),
    (lambda: _toy_settings(optimizer=None), TypeError, "optimizer"),
    (lambda: _toy_settings(lr_decay_from=1.0), ValueError, "lr_decay_from"),
    (lambda: _ring(num_modes=2.5), TypeError, "num_modes"),
    (lambda: _ring(num_modes="8"), TypeError, "num_modes"),
    (lambda: _ring(num_modes=0), ValueError, "num_modes"),
    (lambda: _mixture(std=True), TypeError, "std"),
    (lambda: _mixture(std=-1.0), ValueError, "std"),
    (lambda: _sample(2.0), TypeError, "num_samples"),
    (lambda: _sample(0), ValueError, "num_samples"),
    (lambda: _train_config(batch_size="8"), TypeError, "batch_size"),
    (lambda: _train_config(batch_size=0), ValueError, "batch_size"),
    (lambda: _train_config(num_steps=True), TypeError, "num_steps"),
    (lambda: _train_config(lr_g="2e-4"), TypeError, "lr_g"),
    (lambda: _train_config(lr_g=-1.0), ValueError, "lr_g"),
    (lambda: _train_config(latent_prior=0), TypeError, "latent_prior"),
    (lambda: _train_config(label_flip_prob=0.7), ValueError, "label_flip_prob"),
    (lambda: _lanczos(k=1.5), TypeError, "k"),
    (lambda: _lanczos(k=0), ValueError, "k"),
    (lambda: _lanczos(which="XX"), ValueError, "which"),
    (lambda: _lanczos(tol="0"), TypeError, "tol"),
    (lambda: _lanczos(max_iterations=2.0), TypeError, "max_iterations"),
    (lambda: _spectrum_callback(every_steps=2.5), TypeError, "every_steps"),
    (lambda: _spectrum_callback(k=0), ValueError, "k"),
    (lambda: _spectrum_callback(batch_size="64"), TypeError, "batch_size"),
    (lambda: _mlp(width=2.5), TypeError, "width"),
    (lambda: _mlp(depth=-1), ValueError, "depth"),
    (lambda: _mlp(activation=None), TypeError, "activation"),
    (lambda: _mlp(activation="swish"), ValueError, "activation"),
    (lambda: _classifier_config(num_steps=1.5), TypeError, "num_steps"),
    (lambda: _classifier_config(max_scale=1.0), ValueError, "max_scale"),
    (lambda: _dense_generator(latent_dim=2.5), TypeError, "latent_dim"),
    (lambda: _dense_generator(width=0), ValueError, "width"),
    (lambda: _dense_generator(image_shape=(1, 28, 28.0)), TypeError, "image_shape"),
    (lambda: _coverage(min_hq_per_mode=2.5), TypeError, "min_hq_per_mode"),
    (lambda: _coverage(std=0.0), ValueError, "std"),
    (lambda: _sample_latent(latent_dim=2.5), TypeError, "latent_dim"),
    (lambda: _sample_latent(prior="cauchy"), ValueError, "latent_prior"),
    (lambda: _variant(n_critic=2.5), TypeError, "n_critic"),
    (lambda: _variant(loss="vanilla"), ValueError, "loss"),
    (lambda: _get_variant(None), TypeError, "variant"),
    (lambda: _get_variant("nope"), ValueError, "variant"),
    (lambda: _get_loss(3), TypeError, "loss"),
    (lambda: _set_seed(1.5), TypeError, "seed"),
    (lambda: _set_seed(-1), ValueError, "seed"),
    (lambda: _colour(num_images=2.0), TypeError, "num_images"),
    (lambda: _colour(scale=1.5), ValueError, "scale"),
    (lambda: _late_mean("half"), TypeError, "share"),
    (lambda: _late_mean(0.0), ValueError, "share"),
    (lambda: _histogram(bins=2.5), TypeError, "bins"),
    (lambda: _checkpoint_path(latent_dim="2"), TypeError, "latent_dim"),
    (lambda: _checkpoint_path(seed=-1), ValueError, "seed"),
    (lambda: _explorer(2.5), TypeError, "refresh_every"),
]


@pytest.mark.parametrize(("call", "error", "name"), ENTRY_POINTS)
def test_entry_points_follow_the_rule_and_name_the_parameter(call, error, name):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error  # a TypeError is never also reported as a ValueError
    assert re.search(rf"\b{re.escape(name)}\b", str(info.value)), str(info.value)
    assert "must be" in str(info.value) and "got" in str(info.value)
