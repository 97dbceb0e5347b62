"""Peer benchmark: the same MADE work done by PyTorch, to compare with bench.py on one machine.

    python benchmarks/torch_made.py [--gpu] [--json FILE]

A plain PyTorch MADE (masked nn.Linear layers, autograd for the backward pass, the usual way
PyTorch ports of MADE are written) timed on bench.py's workloads: one training epoch of
784-500-784 at batch 100 with AdaGrad (lr 0.01, default and fused implementations), evaluation
examples/s at batch 1000, and naive ancestral sampling of 100 digits (D forward passes, as PyTorch
MADE code samples). Nothing in the project imports this file; it needs PyTorch, which the project
does not (it is skipped with a message where PyTorch is absent).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

try:
    import torch
except ImportError:
    torch = None


def made_masks(n_in, hidden, rng):
    """The paper's masks, drawn with NumPy: ordering, connectivity, hidden ≥ and output > rules;
    and the direct connection's (strictly lower-triangular in the ordering)."""
    degrees = [rng.permutation(n_in)]
    low = 0
    for size in hidden:
        degrees.append(rng.integers(low, n_in - 1, size=size))
        low = int(degrees[-1].min())
    masks = [(degrees[l + 1][:, None] >= degrees[l][None, :]) for l in range(len(hidden))]
    masks.append(degrees[0][:, None] > degrees[-1][None, :])
    direct = degrees[0][:, None] > degrees[0][None, :]
    return [m.astype(np.float32) for m in masks], degrees[0], direct.astype(np.float32)


class TorchMADE(torch.nn.Module if torch else object):
    def __init__(self, n_in, hidden, device, direct=False):
        super().__init__()
        masks, self.ordering, direct_mask = made_masks(n_in, hidden, np.random.default_rng(0))
        sizes = [n_in] + hidden + [n_in]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        for i, mask in enumerate(masks):
            self.register_buffer(f"mask{i}", torch.from_numpy(mask))
        self.direct = torch.nn.Linear(n_in, n_in, bias=False) if direct else None
        if direct:
            self.register_buffer("direct_mask", torch.from_numpy(direct_mask))
        self.to(device)

    def forward(self, x):
        h = x
        for i, layer in enumerate(self.layers):
            h = torch.nn.functional.linear(h, layer.weight * getattr(self, f"mask{i}"), layer.bias)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        if self.direct is not None:
            h = h + torch.nn.functional.linear(x, self.direct.weight * self.direct_mask)
        return h

    def nll(self, x):
        logits = self(x)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(function, device):
    function()
    synchronize(device)
    started = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - started


def train_epoch_seconds(x, device, fused):
    model = TorchMADE(x.shape[1], [500], device)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.01, fused=fused)

    def epoch():
        order = torch.randperm(x.shape[0], device=device)
        total = torch.zeros((), device=device)
        for start in range(0, x.shape[0], 100):
            batch = x[order[start:start + 100]]
            loss = model.nll(batch).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        return float(total)
    return timed(epoch, device)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time a PyTorch MADE on bench.py's workloads.")
    parser.add_argument("--gpu", action="store_true", help="run on CUDA")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if torch is None:
        print("benchmarks/torch_made.py: skipped: PyTorch is not installed")
        return 0
    device = torch.device("cuda" if args.gpu else "cpu")
    path = os.path.join(os.environ.get("MADE_DATA_DIR", ""), "binarized_mnist.npz")
    if os.path.exists(path):
        train_np = np.load(path, allow_pickle=False)["train_data"].astype(np.float32)
    else:
        train_np = (np.random.default_rng(0).random((50000, 784)) < 0.13).astype(np.float32)
    x = torch.from_numpy(train_np).to(device)
    rows = {}
    rows["train 784-500-784 batch 100, Adagrad (s/epoch)"] = train_epoch_seconds(x, device, fused=False)
    try:
        rows["train 784-500-784 batch 100, fused Adagrad (s/epoch)"] = train_epoch_seconds(x, device, fused=True)
    except (RuntimeError, TypeError) as error:  # fused Adagrad is missing on some builds and devices
        rows["train 784-500-784 batch 100, fused Adagrad (s/epoch)"] = f"unavailable: {error}"
    model = TorchMADE(784, [500], device)
    evaluation = x[:10000]
    with torch.no_grad():
        seconds = timed(lambda: [model.nll(evaluation[s:s + 1000]) for s in range(0, 10000, 1000)], device)
        rows["evaluate batch 1000 (ex/s)"] = 10000 / seconds

        def naive_sample():
            samples = torch.zeros(100, 784, device=device)
            for d in model.ordering:
                probs = torch.sigmoid(model(samples)[:, int(d)])
                samples[:, int(d)] = torch.bernoulli(probs)
            return samples
        rows["sample 100 naive (s)"] = timed(naive_sample, device)
    print(f"PyTorch {torch.__version__} on {device} ({torch.get_num_threads()} threads)")
    for name, value in rows.items():
        print(f"  {name:<55} {value if isinstance(value, str) else f'{value:,.3f}'}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"torch": torch.__version__, "device": str(device), "rows": rows}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
