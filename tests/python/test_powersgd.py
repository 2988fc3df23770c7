# SPDX-License-Identifier: Apache-2.0
"""gradcomp.PowerSGD on torch tensors: two workers exchange in process and agree; a rank-1
gradient is recovered; hostile sums and calls out of order are named errors."""

import pytest
import torch

import gradcomp

SHAPES = [torch.empty(16, 3, 3, 3), torch.empty(16), torch.empty(10, 64)]


def step(workers, grads):
    p = [w.encode_p(g) for w, g in zip(workers, grads)]
    p_sum = workers[0].sum("p", p)
    q = [w.encode_q(p_sum) for w in workers]
    q_sum = workers[1].sum("q", list(reversed(q)))  # any order, any worker: the same bytes
    assert torch.equal(q_sum, workers[0].sum("q", q))
    return [w.decode(q_sum) for w in workers]


def workers(**kw):
    return [gradcomp.PowerSGD(SHAPES, worker_rank=r, seed=5, **kw) for r in range(2)]


def test_two_workers_agree_and_recover_a_rank_one_gradient():
    ws = workers(rank=1)
    assert ws[0].compressed_matrices == 2 and ws[0].numel == 16 * 27 + 16 + 640
    u = torch.randn(16, generator=torch.Generator().manual_seed(1))
    v = torch.randn(27, generator=torch.Generator().manual_seed(2))
    conv = torch.outer(u, v).flatten()
    g = torch.cat([conv, torch.zeros(16 + 640)])
    outs = step(ws, [g, 3 * g])
    assert torch.equal(outs[0], outs[1])
    assert torch.allclose(outs[0], 2 * g, rtol=1e-4, atol=1e-5)  # the mean of g and 3g
    assert ws[0].step == 1


def test_entire_model_trains_a_step():
    ws = workers(rank=2, entire_model=True)
    assert ws[0].compressed_matrices == 1
    g = [torch.randn(ws[0].numel, generator=torch.Generator().manual_seed(s)) for s in (3, 4)]
    outs = step(ws, g)
    assert torch.equal(outs[0], outs[1]) and torch.isfinite(outs[0]).all()


def test_hostile_sums_and_calls_out_of_order_are_named():
    ws = workers()
    g = torch.randn(ws[0].numel)
    with pytest.raises(gradcomp.Error, match="protocol_error"):
        ws[0].encode_q(torch.zeros(100, dtype=torch.uint8))
    with pytest.raises(TypeError):
        ws[0].encode_p(g.double())
    p = [w.encode_p(g) for w in ws]
    with pytest.raises(ValueError, match="'p' or 'q'"):
        ws[0].sum("x", p)
    with pytest.raises(gradcomp.Error, match="duplicate_message"):
        ws[0].sum("p", [p[0], p[0]])
    p_sum = ws[0].sum("p", p)
    bad = p_sum.clone()
    bad[-3] ^= 1
    with pytest.raises(gradcomp.Error, match="checksum_mismatch"):
        ws[0].encode_q(bad)
    with pytest.raises(gradcomp.Error, match="protocol_error"):
        ws[0].encode_q(p[0])  # a worker's message where the sum is due
    ws[0].encode_q(p_sum)  # the rejected ones changed nothing
