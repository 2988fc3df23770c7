# SPDX-License-Identifier: Apache-2.0
"""gradcomp.Codec on torch tensors: the C++ library's bytes, round trips, named errors."""

import os
import subprocess
import tempfile

import pytest
import torch

import gradcomp

SIZES = [300, 7, 1000, 64]
ENCODE_TOOL = os.environ.get("GRADCOMP_ENCODE_TOOL")


def gradient(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(sum(SIZES), generator=g)


@pytest.mark.parametrize("spec", gradcomp.example_specs())
def test_every_registered_scheme_round_trips(spec):
    for granularity in ("/flat/", "/layer/", "/bucket:200/"):
        s = spec.replace("/flat/", granularity)
        codec = gradcomp.Codec(s, SIZES)
        g = gradient(1)
        msg = codec.encode(g, seed=3, step=2, rank=1)
        assert msg.dtype == torch.uint8 and 0 < msg.numel() <= codec.max_encoded_bytes()
        assert torch.equal(codec.encode(g, seed=3, step=2, rank=1), msg)  # deterministic
        out = codec.decode(msg)
        assert out.shape == g.shape and torch.isfinite(out).all()
        acc = torch.ones_like(g)
        codec.decode_add(msg, acc)
        assert torch.equal(acc, out + 1)


@pytest.mark.skipif(ENCODE_TOOL is None, reason="GRADCOMP_ENCODE_TOOL not set")
@pytest.mark.parametrize("spec", ["topk:0.01/layer/coo-f16", "topk:0.01/layer/coo-f16-ef",
                                  "qsgd:15/bucket:128",
                                  "compose(topk:0.05,terngrad)/layer",
                                  "terngrad:clip=2.5/layer/identity_below=64",
                                  "random_k:0.1,unbiased,shared_seed/layer", "sr_bf16/layer"])
def test_the_bytes_are_the_cpp_librarys(spec):
    g = gradient(2)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "g.f32"), os.path.join(d, "m.bin")
        g.numpy().tofile(src)
        subprocess.run([ENCODE_TOOL, spec, ",".join(map(str, SIZES)), "5", "9", "2", src, dst],
                       check=True)
        want = open(dst, "rb").read()
    got = gradcomp.Codec(spec, SIZES).encode(g, seed=5, step=9, rank=2)
    assert bytes(got.numpy()) == want


def test_half_and_bfloat16_gradients():
    for dtype in (torch.float16, torch.bfloat16):
        codec = gradcomp.Codec("identity/layer/" + ("f16" if dtype == torch.float16 else "bf16"),
                               SIZES)
        g = gradient(3).to(dtype)
        assert torch.equal(codec.decode(codec.encode(g), dtype=dtype), g)


def test_layouts_from_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(10, 4), torch.nn.Linear(4, 2))
    codec = gradcomp.Codec("topk:0.5/layer", model.parameters())
    assert codec.numel == sum(p.numel() for p in model.parameters())


def test_errors_are_named_and_leave_outputs_alone():
    with pytest.raises(gradcomp.Error, match="unknown compressor 'top_k'.*topk"):
        gradcomp.Codec("top_k:0.01", SIZES)
    with pytest.raises(gradcomp.Error, match="choose coo-f32"):
        gradcomp.Codec("topk:0.01/coo-f8", SIZES)
    codec = gradcomp.Codec("topk:0.1/layer", SIZES)
    msg = codec.encode(gradient())
    with pytest.raises(ValueError, match="elements"):
        codec.encode(torch.zeros(5))
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        codec.encode(torch.zeros(sum(SIZES), dtype=torch.float64))
    with pytest.raises(ValueError, match="contiguous"):
        codec.encode(torch.zeros(2 * sum(SIZES))[::2])
    with pytest.raises(TypeError, match="uint8"):
        codec.decode(msg.to(torch.int32))
    out = torch.full((sum(SIZES),), 7.0)
    bad = msg.clone()
    bad[60] ^= 0xFF  # inside the directory: the checksum no longer matches
    with pytest.raises(gradcomp.Error, match="gradcomp: "):
        codec.decode(bad, out=out)
    assert torch.equal(out, torch.full_like(out, 7.0))
    with pytest.raises(gradcomp.Error):
        codec.decode(msg[:-1], out=out)
    inf = gradient()
    inf[3] = float("inf")
    with pytest.raises(gradcomp.Error, match="non_finite"):
        codec.encode(inf)


def test_error_feedback_keeps_what_was_dropped():
    memory = gradcomp.ErrorFeedback("topk:0.01/layer", SIZES)
    codec = gradcomp.Codec("topk:0.01/layer", SIZES)
    g = gradient(4)
    sent = torch.zeros_like(g)
    for step in range(1000):
        sent += codec.decode(memory.encode(g, step=step))
    # every element is sent eventually: the mean message approaches g (residual / 1000 -> 0)
    assert torch.allclose(sent / 1000, g, atol=0.15 * g.abs().max().item())
