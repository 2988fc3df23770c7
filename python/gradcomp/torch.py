# SPDX-License-Identifier: Apache-2.0
"""PyTorch integration: a DistributedDataParallel communication hook that compresses every
gradient bucket, and FlatParameters, which puts a module's parameters and gradients in flat
buffers without copies for trainers that call a Codec themselves.

    state = gradcomp.torch.CompressionState("topk:0.01/layer", error_feedback=True)
    ddp.register_comm_hook(state, gradcomp.torch.comm_hook)

Per bucket and step, each rank encodes its bucket (with error feedback on gradients: the
residual of what its message dropped is added to its next gradient of that bucket), the ranks
allgather their messages (sizes first, then the bytes padded to the largest), and every rank
decodes and averages all of them in rank order, so all ranks apply the same update.

Granularity is the spec's: ``/layer`` makes each parameter of the bucket a span, ``/flat`` (the
default) the whole bucket one span, ``/bucket:N`` fixed chunks. Stream keys: seed = the state's
seed mixed with the bucket index (splitmix64), step = the number of times the bucket was reduced
before, rank = the process group rank; so random operators draw fresh bits per bucket and step and
a run is reproducible. A bucket whose parameter sizes change (DDP rebuilds its buckets after the
first iteration) gets a new codec and a zero residual.
"""

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import torch
import torch.distributed as dist

from . import Codec, ErrorFeedback, PowerSGD

__all__ = ["CompressionState", "comm_hook", "PowerSGDState", "powersgd_hook", "FlatParameters"]

_MASK64 = (1 << 64) - 1


def bucket_seed(seed: int, bucket_index: int) -> int:
    """The stream-key seed of a bucket: splitmix64 of seed + golden ratio * (index + 1)."""
    z = (seed + 0x9E3779B97F4A7C15 * (bucket_index + 1)) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@dataclass
class _Bucket:
    sizes: List[int]
    codec: Codec
    memory: Optional[ErrorFeedback]
    step: int = 0


@dataclass
class CompressionState:
    """What the hook keeps between calls: the spec, a codec (and residual) per bucket, and the
    bytes it sent (bytes_sent: this rank's messages; bytes_dense: the fp32 buckets they replace)."""

    spec: str
    error_feedback: bool = True
    seed: int = 0
    process_group: Optional[dist.ProcessGroup] = None
    bytes_sent: int = 0
    bytes_dense: int = 0
    buckets: Dict[int, _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Codec(self.spec, [1])  # a bad spec fails here, before training starts

    def bucket(self, index: int, sizes: List[int]) -> _Bucket:
        b = self.buckets.get(index)
        if b is None or b.sizes != sizes:
            memory = ErrorFeedback(self.spec, sizes) if self.error_feedback else None
            b = _Bucket(sizes, Codec(self.spec, sizes), memory)
            self.buckets[index] = b
        return b


def comm_hook(state: CompressionState,
              bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """Compress, allgather, decode and average one bucket; the future holds the averaged bucket."""
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    buffer = bucket.buffer()
    sizes = [int(g.numel()) for g in bucket.gradients()]
    b = state.bucket(bucket.index(), sizes)
    grad = buffer if buffer.dtype == torch.float32 else buffer.float()
    seed = bucket_seed(state.seed, bucket.index())
    if b.memory is not None:
        message = b.memory.encode(grad, seed=seed, step=b.step, rank=rank)
    else:
        message = b.codec.encode(grad, seed=seed, step=b.step, rank=rank)
    b.step += 1
    state.bytes_sent += message.numel()
    state.bytes_dense += 4 * grad.numel()

    mine = torch.tensor([message.numel()], dtype=torch.int64)
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(counts, mine, group=group)
    longest = max(int(c) for c in counts)
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: message.numel()] = message
    gathered = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)]
    work = dist.all_gather(gathered, padded, group=group, async_op=True)

    def average(_: torch.futures.Future) -> torch.Tensor:
        total = torch.zeros(grad.numel(), dtype=torch.float32)
        for r in range(world):  # rank order: every rank computes the same sum
            b.codec.decode_add(gathered[r][: int(counts[r])], total)
        total.div_(world)
        buffer.copy_(total)
        return buffer

    return work.get_future().then(average)


@dataclass
class PowerSGDState:
    """What powersgd_hook keeps: one gradcomp.PowerSGD worker per bucket (its residual and warm
    start) and the bytes sent (bytes_sent: this rank's two messages per bucket and step)."""

    rank: int = 2
    entire_model: bool = False
    error_feedback: bool = True
    seed: int = 0
    min_compression_rate: float = 2.0
    process_group: Optional[dist.ProcessGroup] = None
    bytes_sent: int = 0
    bytes_dense: int = 0
    workers: Dict[int, PowerSGD] = field(default_factory=dict)

    def worker(self, index: int, grads: List[torch.Tensor], rank: int) -> PowerSGD:
        w = self.workers.get(index)
        shape = [(int(g.numel()), int(g.shape[0]) if g.dim() >= 2 else 0) for g in grads]
        if w is None or list(zip(w.sizes, w.rows)) != shape:
            w = PowerSGD(shape, rank=self.rank, entire_model=self.entire_model,
                         error_feedback=self.error_feedback, seed=bucket_seed(self.seed, index),
                         worker_rank=rank, min_compression_rate=self.min_compression_rate)
            self.workers[index] = w
        return w


def powersgd_hook(state: PowerSGDState,
                  bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """PowerSGD on one bucket (float32): each round's messages are allgathered (every rank's has
    the same size) and summed in rank order, so every rank applies the same mean estimate."""
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    buffer = bucket.buffer()
    if buffer.dtype != torch.float32:
        raise TypeError(f"gradcomp: powersgd_hook takes float32 buckets, got {buffer.dtype}")
    w = state.worker(bucket.index(), bucket.gradients(), dist.get_rank(group))

    def all_of(message: torch.Tensor) -> List[torch.Tensor]:
        gathered = [torch.empty_like(message) for _ in range(world)]
        dist.all_gather(gathered, message, group=group)
        state.bytes_sent += message.numel()
        return gathered

    try:
        p_sum = w.sum("p", all_of(w.encode_p(buffer)))
        q_sum = w.sum("q", all_of(w.encode_q(p_sum)))
        w.decode(q_sum, out=buffer)
    except Exception:
        w.abort_step()
        raise
    state.bytes_dense += 4 * buffer.numel()
    fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    fut.set_result(buffer)
    return fut


class FlatParameters:
    """Re-seats every parameter of `module` (registration order) as a view of one flat tensor,
    values kept, and points every ``.grad`` at a view of one flat gradient tensor, so autograd
    writes the gradient a Codec encodes and one flat update changes the module (the C++
    gradcomp::torch_bridge does the same). ``sizes`` is the layout to build a Codec with, one
    span per parameter:

        flat = gradcomp.torch.FlatParameters(model)
        codec = gradcomp.Codec("topk:0.01/layer", flat.sizes)
        flat.zero_grad(); loss.backward(); flat.check()
        update = codec.decode(codec.encode(flat.grad, step=step))
        flat.params.sub_(lr * update)

    Parameters must share one floating dtype and device. Call zero_grad() (not the optimizer's
    ``zero_grad(set_to_none=True)``, which would detach the views) and check() after backward.
    """

    def __init__(self, module: torch.nn.Module):
        params = [p for p in module.parameters()]
        if not params:
            raise ValueError("gradcomp: FlatParameters needs a module with parameters")
        dtype, device = params[0].dtype, params[0].device
        for name, p in module.named_parameters():
            if p.dtype != dtype or p.device != device or not p.dtype.is_floating_point:
                raise TypeError(f"gradcomp: parameter {name} is {p.dtype} on {p.device}; "
                                f"FlatParameters needs one floating dtype on one device "
                                f"({dtype} on {device})")
        self.names = [name for name, _ in module.named_parameters()]
        self.sizes = [int(p.numel()) for p in params]
        self._params = params
        total = sum(self.sizes)
        self.params = torch.empty(total, dtype=dtype, device=device)
        self.grad = torch.zeros(total, dtype=dtype, device=device)
        with torch.no_grad():
            for p, view in zip(params, self._views(self.params)):
                view.copy_(p)
                p.data = view  # the parameter now aliases the flat buffer
        self.zero_grad()

    def _views(self, flat: torch.Tensor) -> Iterator[torch.Tensor]:
        offset = 0
        for p, n in zip(self._params, self.sizes):
            yield flat[offset: offset + n].view(p.shape)
            offset += n

    def zero_grad(self) -> None:
        """Zeroes the flat gradient and points every ``.grad`` at its view of it."""
        self.grad.zero_()
        for p, view in zip(self._params, self._views(self.grad)):
            p.grad = view

    def check(self) -> None:
        """Raises unless every parameter and ``.grad`` still alias the flat buffers (e.g. after
        ``zero_grad(set_to_none=True)`` or a replaced ``.data``)."""
        base_p, base_g = self.params.data_ptr(), self.grad.data_ptr()
        item = self.params.element_size()
        offset = 0
        for name, p, n in zip(self.names, self._params, self.sizes):
            if p.data_ptr() != base_p + offset * item:
                raise RuntimeError(f"gradcomp: parameter {name} no longer lives in the flat buffer")
            if p.grad is None or p.grad.data_ptr() != base_g + offset * item:
                raise RuntimeError(f"gradcomp: the gradient of {name} no longer lives in the flat "
                                   f"buffer (call FlatParameters.zero_grad(), not set_to_none)")
            offset += n
