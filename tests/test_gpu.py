"""The CuPy path computes what the NumPy path computes. Skipped where no CUDA GPU is present."""
import numpy as np
import pytest

import backend
import kernels
import optim
import ancestral
from conftest import assert_steps_agree, random_binary
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", sorted(optim.OPTIMIZERS))
def test_fused_kernels_match_the_unfused_gpu_engine(dtype, rule, monkeypatch):
    """kernels.FusedEngine against engine.Engine on the same GPU (MADE_GPU_UNFUSED=1)."""
    models = []
    for switch in ("1", "0"):
        monkeypatch.setenv("MADE_GPU_UNFUSED", switch)
        models.append(MADE(20, [40, 30], direct=True, n_masks=3, dtype=dtype, seed=6, gpu=True))
    assert isinstance(models[1].engine, kernels.FusedEngine)
    tolerance = dict(rtol=1e-10, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    optimizers = [optim.make_optimizer(rule, model, weight_decay=1e-3) for model in models]
    batches = [(x, x) for x in (backend.to_device(random_binary((50, 20), seed=step), True) for step in range(4))]
    assert_steps_agree(models, optimizers, batches, tolerance)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_kernel_matches_its_numpy_twin(dtype):
    import cupy
    run = kernels.kernels_for(cupy, dtype)
    rng = np.random.default_rng(7)
    tolerance = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    weight = rng.standard_normal((30, 40)).astype(dtype)
    degrees = rng.integers(0, 12, 70).astype(np.int32)
    for kind in (1, 2):
        out = cupy.empty_like(cupy.asarray(weight))
        run.masked_weight(cupy.asarray(weight), cupy.asarray(degrees), 40, 0, kind, out)
        expected = np.empty_like(weight)
        kernels.masked_weight_twin(weight, degrees[40:], degrees[:40], kind, expected)
        np.testing.assert_array_equal(cupy.asnumpy(out), expected)
    z, bias = (rng.standard_normal((50, 40)) * 5).astype(dtype), rng.standard_normal(40).astype(dtype)
    for code in kernels.ACTIVATION_CODES.values():
        device_z, device_h = cupy.asarray(z), cupy.empty((50, 40), dtype=dtype)
        run.bias_activation(device_z, cupy.asarray(bias), device_h, code)
        host_z, host_h = z.copy(), np.empty_like(z)
        kernels.bias_activation_twin(host_z, bias, host_h, code)
        np.testing.assert_allclose(cupy.asnumpy(device_h), host_h, **tolerance)
        grad_h, out = rng.standard_normal((50, 40)).astype(dtype), cupy.empty((50, 40), dtype=dtype)
        run.activation_backward(cupy.asarray(grad_h), device_z, device_h, out, code)
        expected = np.empty_like(z)
        kernels.activation_backward_twin(grad_h, host_z, host_h, expected, code)
        np.testing.assert_allclose(cupy.asnumpy(out), expected, **tolerance)
    x, counted = (rng.random((50, 40)) < 0.4).astype(dtype), (np.arange(40) % 3 == 0).astype(dtype)
    for use_counted, want_grad in ((False, True), (True, False)):
        rows, grad = cupy.empty(50, dtype=dtype), cupy.empty((50, 40), dtype=dtype)
        run.bernoulli_rows(cupy.asarray(z), cupy.asarray(bias), cupy.asarray(x), cupy.asarray(counted) if use_counted
                           else None, grad if want_grad else None, 50, rows, -1)
        host_rows, host_grad = np.empty(50, dtype=dtype), np.empty((50, 40), dtype=dtype)
        kernels.bernoulli_rows_twin(z, bias, x, counted if use_counted else None, host_grad if want_grad else None,
                                    50, host_rows, -1)
        np.testing.assert_allclose(cupy.asnumpy(rows), host_rows, **tolerance)
        if want_grad:
            np.testing.assert_allclose(cupy.asnumpy(grad), host_grad, **tolerance)
