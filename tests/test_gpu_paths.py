"""The --gpu branches of every command, run with NumPy standing in for CuPy.

This catches logic errors on the GPU paths (a host array where a device array is needed, a missing
transfer, a wrong module) on machines without a GPU, CI included; the GPU engine (kernels.py) runs
its kernels' NumPy twins. It cannot check CuPy's own
behaviour: tests/test_gpu.py does that, on a real GPU.
"""
import json

import numpy as np

import bench
import evaluate
import sample as sampling
import train


def test_every_command_runs_its_gpu_branch(device, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "d.npz")
    np.savez(path, **{f"{s}_data": (rng.random((300, 16)) < 0.3).astype(np.float32) for s in ("train", "valid", "test")})
    run = str(tmp_path / "run")
    assert train.main(["--gpu", "--dataset", path, "--hidden", "20,20", "--masks", "4", "--direct", "--cond-mask",
                       "--epochs", "2", "--out", run]) == 0
    monkeypatch.setenv("CUPY_TF32", "1")  # the resumed part says so in its log and its record
    assert train.main(["--gpu", "--epochs", "3", "--out", run, "--resume"]) == 0
    with open(tmp_path / "run" / "metrics.json") as file:
        machine = json.load(file)["machine"]
    assert machine["cupy_tf32"] == "1" and machine["gpu_engine"] == "fused"
    first, resumed = (tmp_path / "run" / "train.log").read_text().split("resuming")
    assert "TF32" not in first and "GPU, fused kernels, TF32 matrix products" in resumed
    assert sampling.main([run, "--gpu", "--n", "10", "--out", str(tmp_path / "s.png")]) == 0
    assert sampling.main([run, "--gpu", "--complete", "--observe", "random:0.5", "--examples", "3",
                          "--out", str(tmp_path / "c.png")]) == 0
    assert evaluate.main([run, "--gpu", "--observe", "top"]) == 0
    assert bench.main(["--gpu", "--quick"]) == 0
