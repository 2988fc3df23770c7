# SPDX-License-Identifier: Apache-2.0
"""A real DistributedDataParallel trainer with gradcomp's comm hook: the recipe of
examples/torch_train.cpp (the C++ simulator of n workers) on real processes, so the two can be
compared run for run. The same CNN (conv 1->8 5x5, batch norm, relu, pool; conv 8->16 5x5, batch
norm, relu, pool; fc 256->64, relu; fc 64->10) on Fashion-MNIST, the same data split (per epoch
a shuffle of the training set; step s gives rank r the r-th slice of global batch s), the same
schedule (learning rate rising linearly to its peak over the warm-up, then falling linearly to
zero; Nesterov momentum 0.9), error feedback on the workers, gloo between processes.

    /usr/bin/python3 examples/ddp_train.py --scheme topk:0.01/layer --workers 2 --epochs 3
    /usr/bin/python3 examples/ddp_train.py --dense --workers 2        # plain DDP all-reduce
    /usr/bin/python3 examples/ddp_train.py --powersgd 2 --workers 2   # gradcomp's PowerSGD hook

Prints one line per epoch (test accuracy, bytes per step per rank) and, with --json FILE, writes
the per-epoch results. Needs the gradcomp package on PYTHONPATH (build/python, or pip install .).
"""

import argparse
import gzip
import json
import os
import socket
import sys
import tempfile
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def load(data: str, kind: str, limit: int):
    """Images (N, 1, 28, 28) in [0, 1] and labels of a Fashion-MNIST IDX pair, the first `limit`."""
    with gzip.open(os.path.join(data, f"{kind}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(data, f"{kind}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    if limit:
        x, y = x[:limit], y[:limit]
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.int64)


class Net(nn.Module):
    """examples/torch_train.cpp's CNN."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 5), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 5), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Linear(256, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def options(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scheme", default="topk:0.01/layer", help="a registered scheme's spec")
    p.add_argument("--dense", action="store_true", help="no compression: DDP's own all-reduce")
    p.add_argument("--powersgd", type=int, metavar="RANK",
                   help="PowerSGD at this rank (gradcomp.torch.powersgd_hook), not --scheme")
    p.add_argument("--entire-model", action="store_true",
                   help="with --powersgd: one matrix per bucket instead of one per parameter")
    p.add_argument("--no-feedback", dest="feedback", action="store_false")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--lr", type=float, default=0.4)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--warmup", type=float, default=0.5, help="epochs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bucket-cap-mb", type=float, default=25.0,
                   help="DDP's bucket size (the first bucket too, when smaller than DDP's 1 MB)")
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--data", default=DATA)
    p.add_argument("--json", help="write the per-epoch results here")
    o = p.parse_args(argv)
    if o.workers < 1 or o.batch % o.workers:
        p.error("--workers must be positive and divide --batch")
    return o


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
                    for i in range(0, len(x), 1000))
    model.train()
    return right / len(x)


def worker(rank: int, o, port: int, out_dir: str) -> None:
    import gradcomp.torch as gtorch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=o.workers)
    torch.manual_seed(o.seed)
    # DDP sizes its first bucket separately (1 MB); a smaller cap applies to it as well
    dist._DEFAULT_FIRST_BUCKET_BYTES = min(dist._DEFAULT_FIRST_BUCKET_BYTES,
                                           int(o.bucket_cap_mb * 2**20))
    model = nn.parallel.DistributedDataParallel(Net(), bucket_cap_mb=o.bucket_cap_mb)
    state = None
    if o.powersgd:
        state = gtorch.PowerSGDState(rank=o.powersgd, entire_model=o.entire_model,
                                     error_feedback=o.feedback, seed=o.seed)
        model.register_comm_hook(state, gtorch.powersgd_hook)
    elif not o.dense:
        state = gtorch.CompressionState(o.scheme, error_feedback=o.feedback, seed=o.seed)
        model.register_comm_hook(state, gtorch.comm_hook)
    x, y = load(o.data, "train", o.train_limit)
    xt, yt = load(o.data, "t10k", o.test_limit)
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=True)
    steps = len(x) // o.batch
    total, warm = steps * o.epochs, max(1, int(o.warmup * steps))
    shard = o.batch // o.workers
    dense_bytes = 4 * sum(p.numel() for p in model.parameters())
    epochs, step = [], 0
    for epoch in range(o.epochs):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(o.seed * 7919 + epoch))
        sent_before = state.bytes_sent if state else 0
        loss_sum = 0.0
        for s in range(steps):
            idx = perm[s * o.batch + rank * shard: s * o.batch + (rank + 1) * shard]
            lr = o.lr * (step + 1) / warm if step < warm else o.lr * (total - step) / (total - warm + 1)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        sent = (state.bytes_sent - sent_before) / steps if state else dense_bytes
        buckets = len(state.workers if o.powersgd else state.buckets) if state else 0
        acc = accuracy(model.module, xt, yt)
        epochs.append({"epoch": epoch + 1, "train_loss": loss_sum / steps, "test_accuracy": acc,
                       "bytes_per_step": sent, "dense_bytes_per_step": dense_bytes,
                       "buckets": buckets})
        if rank == 0:
            print(f"epoch {epoch + 1}/{o.epochs}  train loss {loss_sum / steps:.4f}  test accuracy "
                  f"{100 * acc:.2f}%  sent {sent / 1e3:.1f} KB/step per rank (dense "
                  f"{dense_bytes / 1e3:.1f} KB)", flush=True)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"epochs": epochs, "params": params}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def run(o):
    """Trains on o.workers processes; returns each rank's {"epochs": [...], "params": tensor}."""
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(worker, args=(o, free_port(), d), nprocs=o.workers, join=True)
        return [torch.load(os.path.join(d, f"rank{r}.pt")) for r in range(o.workers)]


def describe(o) -> str:
    if o.powersgd:
        return f"powersgd rank {o.powersgd}" + (" entire-model" if o.entire_model else "")
    return "dense all-reduce" if o.dense else o.scheme


def main(argv=None) -> int:
    o = options(argv)
    print(f"ddp_train: {describe(o)}"
          f"{'' if o.dense or not o.feedback else ' with error feedback'}, {o.workers} processes",
          flush=True)
    ranks = run(o)
    same = all(torch.equal(ranks[0]["params"], r["params"]) for r in ranks[1:])
    print(f"ranks end with identical parameters: {same}")
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"scheme": None if o.dense else describe(o), "workers": o.workers,
                       "identical": same, "epochs": ranks[0]["epochs"]}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
