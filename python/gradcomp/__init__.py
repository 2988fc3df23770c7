# SPDX-License-Identifier: Apache-2.0
"""gradcomp: gradient compressors for data-parallel training, from PyTorch.

    codec = gradcomp.Codec("topk:0.01/layer", model.parameters())
    message = codec.encode(flat_gradient, step=3, rank=0)      # a uint8 tensor
    received = codec.decode(message)                            # a float32 tensor

Schemes are spec strings (``gradcomp.registry_help()`` lists them); messages are byte for byte
those of the C++ library's codec<Scheme>. Tensors are CPU tensors; encode and decode read and
write them in place, without copies. ``gradcomp.torch.comm_hook`` plugs a scheme into
DistributedDataParallel.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import torch as _torch  # not "torch": the gradcomp.torch submodule takes that name here

from . import _gradcomp
from ._gradcomp import Error

__all__ = ["Codec", "ErrorFeedback", "Error", "registry_help", "example_specs", "flatten_sizes"]

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
