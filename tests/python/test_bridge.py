# SPDX-License-Identifier: Apache-2.0
"""gradcomp.torch.FlatParameters: parameters and gradients in flat buffers without copies."""

import copy

import pytest
import torch
import torch.nn as nn

import gradcomp
import gradcomp.torch as gtorch


def small_net():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def batch():
    g = torch.Generator().manual_seed(5)
    return torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_the_module_is_unchanged_and_autograd_writes_the_flat_gradient():
    net = small_net()
    twin = copy.deepcopy(net)
    flat = gtorch.FlatParameters(net)
    assert flat.sizes == [p.numel() for p in twin.parameters()]
    assert flat.names == [n for n, _ in twin.named_parameters()]
    x, y = batch()
    assert torch.equal(net(x), twin(x))  # values kept
    nn.functional.cross_entropy(net(x), y).backward()
    nn.functional.cross_entropy(twin(x), y).backward()
    flat.check()
    want = torch.cat([p.grad.flatten() for p in twin.parameters()])
    assert torch.equal(flat.grad, want)
    # a codec over the flat layout sees exactly autograd's gradient, span per parameter
    codec = gradcomp.Codec("identity/layer", flat.sizes)
    assert torch.equal(codec.decode(codec.encode(flat.grad)), want)
    # a second backward accumulates, zero_grad() restarts
    nn.functional.cross_entropy(net(x), y).backward()
    assert torch.equal(flat.grad, 2 * want)
    flat.zero_grad()
    assert not flat.grad.any()
    flat.check()


def test_a_flat_update_changes_the_module():
    net = small_net()
    flat = gtorch.FlatParameters(net)
    x, _ = batch()
    before = net(x).detach().clone()
    first = next(net.parameters())
    with torch.no_grad():
        flat.params[: first.numel()] += 1.0
    assert torch.equal(first.detach().flatten(), flat.params[: first.numel()])
    assert not torch.equal(net(x), before)


def test_a_compressed_step_trains():
    net = small_net()
    flat = gtorch.FlatParameters(net)
    codec = gradcomp.ErrorFeedback("topk:0.1/layer", flat.sizes)
    plain = gradcomp.Codec("topk:0.1/layer", flat.sizes)
    x, y = batch()
    losses = []
    for step in range(30):
        flat.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        flat.check()
        update = plain.decode(codec.encode(flat.grad, step=step))
        with torch.no_grad():
            flat.params.sub_(0.1 * update)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_detached_views_and_bad_modules_are_named():
    net = small_net()
    flat = gtorch.FlatParameters(net)
    x, y = batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.zero_grad(set_to_none=True)
    with pytest.raises(RuntimeError, match="no longer lives in the flat buffer"):
        flat.check()
    flat.zero_grad()
    flat.check()
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    with pytest.raises(TypeError, match="one floating dtype"):
        gtorch.FlatParameters(mixed)
    with pytest.raises(ValueError, match="needs a module with parameters"):
        gtorch.FlatParameters(nn.ReLU())
