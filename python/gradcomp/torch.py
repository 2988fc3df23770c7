# SPDX-License-Identifier: Apache-2.0
"""A DistributedDataParallel communication hook that compresses every gradient bucket.

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
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

from . import Codec, ErrorFeedback

__all__ = ["CompressionState", "comm_hook"]

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
