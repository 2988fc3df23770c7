# SPDX-License-Identifier: Apache-2.0
"""A real 2-process DistributedDataParallel run on gloo with gradcomp's comm hook: Fashion-MNIST,
a small CNN, 300 steps of SGD with momentum, for top-k 1%, top-k 5% + QSGD s=15 and clipped
TernGrad, all layer-wise with error feedback. The ranks must end with bitwise identical
parameters, learn (test accuracy above 0.6 where chance is 0.1, and within 0.15 of the
uncompressed run), and send a fraction of the dense bytes. Prints accuracy and bytes per step."""

import gzip
import os
import socket
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

import gradcomp
import gradcomp.torch as gtorch

DATA = "/usr/share/datasets/fashion-mnist"
TRAIN, TEST, BATCH, STEPS, WORLD = 8192, 1000, 64, 300, 2


def load(kind, limit):
    with gzip.open(os.path.join(DATA, f"{kind}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit]
    with gzip.open(os.path.join(DATA, f"{kind}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:limit]
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.int64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 5), nn.Conv2d(8, 16, 5)
        self.fc1, self.fc2 = nn.Linear(256, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, port, spec, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(Net(), bucket_cap_mb=0.05)
    state = None
    if spec is not None:
        state = gtorch.CompressionState(spec, error_feedback=True, seed=7)
        model.register_comm_hook(state, gtorch.comm_hook)
    x, y = load("train", TRAIN)
    xt, yt = load("t10k", TEST)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        idx = torch.randint(0, TRAIN, (BATCH * WORLD,), generator=g)[rank::WORLD]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"acc": acc, "params": params,
                "sent": state.bytes_sent if state else 4 * params.numel() * STEPS,
                "dense": state.bytes_dense if state else 4 * params.numel() * STEPS},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def run(spec):
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(worker, args=(free_port(), spec, d), nprocs=WORLD, join=True)
        return [torch.load(os.path.join(d, f"rank{r}.pt")) for r in range(WORLD)]


@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist not installed")
def test_ddp_with_compression_trains_and_ranks_agree():
    dense = run(None)
    results = {}
    for spec in ("topk:0.01/layer", "compose(topk:0.05,qsgd:15)/layer", "terngrad:clip/layer"):
        ranks = run(spec)
        assert torch.equal(ranks[0]["params"], ranks[1]["params"]), spec  # bitwise identical
        acc = ranks[0]["acc"]
        ratio = ranks[0]["sent"] / ranks[0]["dense"]
        results[spec] = (acc, ratio)
        print(f"{spec}: test accuracy {acc:.3f} (dense {dense[0]['acc']:.3f}), "
              f"bytes {ranks[0]['sent'] / STEPS:.0f}/step = {ratio:.4f} of dense")
        assert acc > 0.6, spec  # chance is 0.1
        assert acc > dense[0]["acc"] - 0.15, spec
    assert results["topk:0.01/layer"][1] < 0.05
    assert results["terngrad:clip/layer"][1] < 0.1
