"""The CuPy path computes what the NumPy path computes. Skipped where no CUDA GPU is present."""
import numpy as np
import pytest

import backend
import optim
import ancestral
from conftest import random_binary
from made import MADE

pytestmark = pytest.mark.skipif(not backend.gpu_available(), reason="no CUDA GPU with CuPy on this machine")


@pytest.mark.parametrize("options", [dict(hidden_sizes=[40, 30]), dict(hidden_sizes=[40], direct=True, cond_mask=True),
                                     dict(hidden_sizes=[], direct=True)])
def test_gpu_matches_cpu_log_prob_and_gradients(options):
    cpu = MADE(12, dtype="float64", seed=1, **options)
    gpu = MADE(12, dtype="float64", seed=1, gpu=True, **options)
    x = random_binary((20, 12))
    np.testing.assert_allclose(backend.to_host(gpu.log_prob(x)), cpu.log_prob(x), rtol=1e-12)
    loss_cpu, grads_cpu = cpu.loss_and_grads(x)
    loss_gpu, grads_gpu = gpu.loss_and_grads(x)
    assert np.isclose(float(loss_cpu), float(loss_gpu), rtol=1e-12)
    for name in grads_cpu:
        np.testing.assert_allclose(backend.to_host(grads_gpu[name]), grads_cpu[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_gpu_training_steps_match_cpu(name):
    models = [MADE(10, [30], n_masks=3, dtype="float64", seed=2, gpu=gpu) for gpu in (False, True)]
    optimizers = [optim.make_optimizer(name, m) for m in models]
    for step in range(5):
        x = random_binary((16, 10), seed=step)
        for model, optimizer in zip(models, optimizers):
            optimizer.step(model.loss_and_grads(x)[1])
            model.next_mask()
    for key in models[0].params:
        np.testing.assert_allclose(models[1].params[key], models[0].params[key], rtol=1e-9)


def test_gpu_fast_sampler_matches_cpu_and_naive():
    cpu = MADE(14, [25, 20], direct=True, cond_mask=True, dtype="float64", seed=3)
    gpu = MADE(14, [25, 20], direct=True, cond_mask=True, dtype="float64", seed=3, gpu=True)
    uniforms = np.random.default_rng(4).random((50, 14))
    expected = ancestral.sample_fast(cpu, uniforms)
    device_uniforms = backend.to_device(uniforms, True)
    np.testing.assert_array_equal(backend.to_host(ancestral.sample_fast(gpu, device_uniforms)), expected)
    np.testing.assert_array_equal(backend.to_host(ancestral.sample_naive(gpu, device_uniforms)), expected)


def test_gpu_model_saves_and_loads_on_either_device(tmp_path):
    gpu = MADE(8, [16], seed=5, gpu=True)
    gpu.save(tmp_path / "m.npz")
    x = random_binary((6, 8))
    cpu = MADE.load(tmp_path / "m.npz")
    for name, value in gpu.params.items():
        np.testing.assert_array_equal(cpu.params[name], value)
    # the same weights; cuBLAS and the CPU's BLAS may round float32 sums differently
    np.testing.assert_allclose(cpu.log_prob(x), backend.to_host(gpu.log_prob(x)), rtol=1e-6)
