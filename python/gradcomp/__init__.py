# SPDX-License-Identifier: Apache-2.0
"""gradcomp: gradient compressors for data-parallel training, from PyTorch.

    codec = gradcomp.Codec("topk:0.01/layer", model.parameters())
    message = codec.encode(flat_gradient, step=3, rank=0)      # a uint8 tensor
    received = codec.decode(message)                            # a float32 tensor

Schemes are spec strings (``gradcomp.registry_help()`` lists them); messages are byte for byte
those of the C++ library's codec<Scheme>. Tensors are CPU tensors; encode and decode read and
write them in place, without copies. ``gradcomp.torch.comm_hook`` plugs a scheme into
DistributedDataParallel; ``gradcomp.PowerSGD`` and ``gradcomp.torch.powersgd_hook`` do the same
for PowerSGD.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import torch as _torch  # not "torch": the gradcomp.torch submodule takes that name here

from . import _gradcomp
from ._gradcomp import Error

__all__ = ["Codec", "ErrorFeedback", "PowerSGD", "Error", "registry_help", "example_specs",
           "flatten_sizes"]

_DTYPES = {_torch.float32: 0, _torch.float16: 1, _torch.bfloat16: 2}


def registry_help() -> str:
    """Every registered compressor's spec syntax and encodings."""
    return _gradcomp.registry_help()


def example_specs() -> list:
    """Specs covering the registry (entire-model, "/flat/"): each compressor's example settings
    with its natural encoding, the typical one with every other encoding."""
    return list(_gradcomp.example_specs())


def flatten_sizes(tensors_or_sizes: Union[Iterable[_torch.Tensor], Sequence[int]]) -> list:
    """The layer sizes of a layout: numel() of each tensor, or the integers as given."""
    sizes = []
    for t in tensors_or_sizes:
        if isinstance(t, _torch.Tensor):
            sizes.append(int(t.numel()))
        elif isinstance(t, int) and not isinstance(t, bool) and t >= 0:
            sizes.append(t)
        else:
            raise TypeError(f"gradcomp: a layout is tensors or non-negative ints, got {t!r}")
    return sizes


def _dtype_code(dtype: _torch.dtype) -> int:
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise TypeError(f"gradcomp: gradients must be float32, float16 or bfloat16, got {dtype}") from None


def _check_buffer(t: _torch.Tensor, what: str, numel: Optional[int] = None) -> None:
    if not isinstance(t, _torch.Tensor):
        raise TypeError(f"gradcomp: {what} must be a _torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"gradcomp: {what} is on {t.device}; this build compresses CPU tensors")
    if not t.is_contiguous():
        raise ValueError(f"gradcomp: {what} must be contiguous")
    if numel is not None and t.numel() != numel:
        raise ValueError(f"gradcomp: {what} has {t.numel()} elements, the layout has {numel}")


def _check_message(message: _torch.Tensor) -> None:
    _check_buffer(message, "the message")
    if message.dtype != _torch.uint8:
        raise TypeError(f"gradcomp: a message is a uint8 tensor, got {message.dtype}")


class Codec:
    """A scheme (spec string) over a layout (tensors or sizes, one layer each).

    encode(grad) -> uint8 message; decode(message) -> tensor; decode_add(message, out) adds.
    Errors are gradcomp.Error (a ValueError) naming what is wrong; outputs are untouched then.
    """

    def __init__(self, spec: str, layout, names: Optional[Sequence[str]] = None):
        self.sizes = flatten_sizes(layout)
        self._codec = _gradcomp.Codec(spec, self.sizes, list(names or []))

    @property
    def spec(self) -> str:
        return self._codec.spec

    @property
    def scheme_name(self) -> str:
        return self._codec.scheme_name

    @property
    def numel(self) -> int:
        return self._codec.total_size

    def max_encoded_bytes(self, dtype: _torch.dtype = _torch.float32) -> int:
        return self._codec.max_encoded_bytes(_dtype_code(dtype))

    def encode(self, grad: _torch.Tensor, *, seed: int = 0, step: int = 0, rank: int = 0,
               master: bool = False, out: Optional[_torch.Tensor] = None) -> _torch.Tensor:
        """The message of the flat gradient `grad` under stream key (seed, step, rank, role):
        a view of `out` (uint8, at least max_encoded_bytes) or of a new tensor."""
        _check_buffer(grad, "the gradient", self.numel)
        code = _dtype_code(grad.dtype)
        if out is None:
            out = _torch.empty(self._codec.max_encoded_bytes(code), dtype=_torch.uint8)
        _check_message(out)
        key = _gradcomp.StreamKey(seed, step, rank, master)
        n = self._codec.encode(grad.data_ptr(), grad.numel(), code, out.data_ptr(), out.numel(), key)
        return out[:n]

    def decode(self, message: _torch.Tensor, out: Optional[_torch.Tensor] = None,
               dtype: _torch.dtype = _torch.float32) -> _torch.Tensor:
        """The decoded flat gradient, into `out` (overwritten) or a new tensor of `dtype`."""
        if out is None:
            out = _torch.empty(self.numel, dtype=dtype)
        self._decode(message, out, add=False)
        return out

    def decode_add(self, message: _torch.Tensor, out: _torch.Tensor) -> _torch.Tensor:
        """Adds the decoded gradient to `out` (aggregation); returns `out`."""
        self._decode(message, out, add=True)
        return out

    def _decode(self, message: _torch.Tensor, out: _torch.Tensor, add: bool) -> None:
        _check_message(message)
        _check_buffer(out, "the output", self.numel)
        self._codec.decode(message.data_ptr(), message.numel(), out.data_ptr(), out.numel(),
                           _dtype_code(out.dtype), add)

    def __repr__(self) -> str:
        return f"gradcomp.Codec({self.spec!r}, {len(self.sizes)} layers, {self.numel} elements)"


class ErrorFeedback:
    """Error feedback around a scheme (float32 gradients): encode(grad, scale) compresses
    scale * grad + residual and keeps what the message dropped in the residual."""

    def __init__(self, spec: str, layout, names: Optional[Sequence[str]] = None):
        self.sizes = flatten_sizes(layout)
        self.numel = sum(self.sizes)
        self._memory = _gradcomp.ErrorFeedback(spec, self.sizes, list(names or []))
        self._out = _torch.empty(self._memory.max_encoded_bytes(), dtype=_torch.uint8)

    def encode(self, grad: _torch.Tensor, *, scale: float = 1.0, seed: int = 0, step: int = 0,
               rank: int = 0) -> _torch.Tensor:
        """The message (a view valid until the next encode)."""
        _check_buffer(grad, "the gradient", self.numel)
        if grad.dtype != _torch.float32:
            raise TypeError(f"gradcomp: error feedback takes float32 gradients, got {grad.dtype}")
        key = _gradcomp.StreamKey(seed, step, rank, False)
        n = self._memory.encode(grad.data_ptr(), grad.numel(), float(scale), self._out.data_ptr(),
                                self._out.numel(), key)
        return self._out[:n]

    def reset(self) -> None:
        self._memory.reset()


class PowerSGD:
    """PowerSGD (Vogels et al. 2019) for one worker, as the C++ gradcomp::powersgd: rank-r factors
    of every matrix of the layout (layer-wise) or of the whole flat gradient (entire_model), one
    power iteration per step warm-started from the last, with error feedback. A step is two rounds;
    in each, every worker's message is summed (``sum``, by any worker, in rank order: the same
    bytes everywhere) and every worker reads the sum:

        p = worker.encode_p(grad);  p_sum = worker.sum("p", all_p)
        q = worker.encode_q(p_sum); q_sum = worker.sum("q", all_q)
        mean = worker.decode(q_sum)

    ``layout``: tensors (a tensor of two or more dimensions is a matrix of shape[0] rows; others
    are sent raw) or (size, rows) pairs. Gradients are float32. Errors are gradcomp.Error.
    """

    def __init__(self, layout, *, rank: int = 2, entire_model: bool = False,
                 error_feedback: bool = True, seed: int = 0, worker_rank: int = 0,
                 min_compression_rate: float = 2.0):
        sizes, rows = [], []
        for t in layout:
            if isinstance(t, _torch.Tensor):
                sizes.append(int(t.numel()))
                rows.append(int(t.shape[0]) if t.dim() >= 2 else 0)
            else:
                size, r = t
                sizes.append(int(size))
                rows.append(int(r))
        self.sizes, self.rows = sizes, rows
        self._worker = _gradcomp.PowerSGD(sizes, rows, rank, entire_model, error_feedback, seed,
                                          worker_rank, float(min_compression_rate))

    @property
    def numel(self) -> int:
        return self._worker.total_size

    @property
    def step(self) -> int:
        return self._worker.step

    @property
    def compressed_matrices(self) -> int:
        return self._worker.compressed_matrices

    def _message(self, n: int) -> _torch.Tensor:
        out = _torch.empty(n, dtype=_torch.uint8)
        self._worker.take(out.data_ptr(), n)
        return out

    def encode_p(self, grad: _torch.Tensor) -> _torch.Tensor:
        """Round 1: this worker's P message (a new uint8 tensor)."""
        _check_buffer(grad, "the gradient", self.numel)
        if grad.dtype != _torch.float32:
            raise TypeError(f"gradcomp: PowerSGD takes float32 gradients, got {grad.dtype}")
        return self._message(self._worker.encode_p(grad.data_ptr(), grad.numel()))

    def sum(self, round: str, messages: Sequence[_torch.Tensor]) -> _torch.Tensor:
        """The sum of every worker's message of round "p" or "q" of this step."""
        for m in messages:
            _check_message(m)
        views = [(m.data_ptr(), m.numel()) for m in messages]
        return self._message(self._worker.sum(round, views))

    def encode_q(self, p_sum: _torch.Tensor) -> _torch.Tensor:
        """Round 2: this worker's Q message, from the sum of the P messages."""
        _check_message(p_sum)
        return self._message(self._worker.encode_q(p_sum.data_ptr(), p_sum.numel()))

    def decode(self, q_sum: _torch.Tensor, out: Optional[_torch.Tensor] = None) -> _torch.Tensor:
        """The mean gradient estimate from the sum of the Q messages, into `out` or a new tensor."""
        _check_message(q_sum)
        if out is None:
            out = _torch.empty(self.numel, dtype=_torch.float32)
        _check_buffer(out, "the output", self.numel)
        if out.dtype != _torch.float32:
            raise TypeError(f"gradcomp: PowerSGD decodes into float32, got {out.dtype}")
        self._worker.decode(q_sum.data_ptr(), q_sum.numel(), out.data_ptr(), out.numel())
        return out

    def abort_step(self) -> None:
        """Drops a step in progress; the residual and warm start stay as they were."""
        self._worker.abort_step()

    def __repr__(self) -> str:
        return (f"gradcomp.PowerSGD({len(self.sizes)} layers, {self.compressed_matrices} "
                f"compressed, {self.numel} elements)")
