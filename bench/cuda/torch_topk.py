# SPDX-License-Identifier: Apache-2.0
"""Times torch.topk(x.abs(), k) and a full torch.sort of the magnitudes on the GPU, on the same
sizes as bench_device, so the CUDA top-k can be compared side by side. Prints JSON lines."""
import json
import sys

import torch


def time_ms(f, reps=20):
    f()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        f()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: torch_topk skipped")
        return 77
    torch.manual_seed(0)
    for n in (25557032, 1 << 26):
        x = torch.randn(n, device="cuda") * 1e-3
        copy = torch.empty_like(x)
        copy_ms = time_ms(lambda: copy.copy_(x))
        for ratio in (0.001, 0.01, 0.1):
            k = max(1, int(n * ratio + 0.999999))
            ms = time_ms(lambda: torch.topk(x.abs(), k))
            print(json.dumps({"operator": "torch.topk(abs)", "n": n, "ratio": ratio, "ms": ms,
                              "input_gbps": 4 * n / ms / 1e6, "copy_ms": copy_ms}))
        ms = time_ms(lambda: torch.sort(x.abs()))
        print(json.dumps({"operator": "torch.sort(abs)", "n": n, "ms": ms,
                          "input_gbps": 4 * n / ms / 1e6, "copy_ms": copy_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
