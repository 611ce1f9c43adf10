"""Seed and device selection."""

import random

import numpy as np
import pytest
import torch

from gan_utils.core.runtime import get_device, set_seed


def test_set_seed_fixes_python_numpy_and_torch():
    set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    set_seed(124)
    assert torch.rand(1).item() != a[2][0].item()


@pytest.mark.parametrize(
    ("bad", "error"),
    [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (None, TypeError), (True, TypeError)],
)
def test_set_seed_rejects_bad_values(bad, error):
    with pytest.raises(error, match="seed must be an integer >= 0"):
        set_seed(bad)


def test_set_seed_accepts_numpy_integers():
    set_seed(np.int64(5))
    a = torch.rand(2)
    set_seed(5)
    assert torch.equal(a, torch.rand(2))


def test_auto_is_cpu_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("gan_utils.core.runtime._mps_available", lambda: False)
    assert get_device("auto") == torch.device("cpu")


def test_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("auto") == torch.device("cuda")
    assert get_device("cuda:1") == torch.device("cuda:1")


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA GPU"):
        get_device("cuda")


def test_unknown_device_lists_choices():
    with pytest.raises(ValueError, match="auto.*cpu.*cuda.*mps"):
        get_device("tpu")


def test_a_device_that_is_not_a_name_is_a_type_error():
    with pytest.raises(TypeError, match="device must be one of"):
        get_device(0)


def test_cpu_and_device_objects():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_threads_share_the_usable_cores_unless_the_environment_pins_them(monkeypatch):
    from gan_utils.core import runtime

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 8)
    assert runtime.resolve_threads("auto") == 8
    assert runtime.resolve_threads("auto", workers=3) == 2  # 8 // 3
    assert runtime.resolve_threads("AUTO", workers=16) == 1  # never 0
    assert runtime.resolve_threads(3, workers=4) == 3  # an explicit count wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runtime.resolve_threads("auto", workers=1) == 1  # so does the environment's
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(
        ValueError, match="OMP_NUM_THREADS must be an integer >= 1 when set, got 'two'"
    ):
        runtime.resolve_threads("auto")


@pytest.mark.parametrize(
    ("threads", "error"),
    [("many", ValueError), (0, ValueError), (1.5, TypeError), (True, TypeError)],
)
def test_bad_threads_name_the_parameter_and_what_is_allowed(threads, error):
    from gan_utils.core.runtime import resolve_threads

    with pytest.raises(error, match=r"threads must be 'auto' or an integer >= 1, got"):
        resolve_threads(threads)
    with pytest.raises(ValueError, match="workers"):
        resolve_threads("auto", workers=0)


def test_usable_cores_is_the_affinity_mask(monkeypatch):
    import os

    from gan_utils.core.runtime import usable_cores

    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cores() == 1
