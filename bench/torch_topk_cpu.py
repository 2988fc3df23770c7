# SPDX-License-Identifier: Apache-2.0
"""Times torch.topk(x.abs(), k) on the CPU with one thread, on the ResNet-50-sized buffer the
benchmark uses (25,557,032 floats, normal with sigma 1e-3), next to a copy of the same buffer
into a preallocated one (y.copy_(x), memcpy's counterpart) timed in the same process, so
gradcomp's top-k can be compared as a ratio that machine noise does not move. Prints one JSON
line per ratio. Needs Debian's python3-torch."""
import json
import sys
import time

try:
    import torch
except ImportError:
    print("torch_topk_cpu: python3-torch is not installed, skipped", file=sys.stderr)
    sys.exit(77)


def time_ms(f, reps):
    f()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 25557032
    x = torch.randn(n) * 1e-3
    y = torch.empty_like(x)
    copy_ms = time_ms(lambda: y.copy_(x), 7)
    for ratio in (0.001, 0.01, 0.1):
        k = max(1, int(n * ratio + 0.999999))
        ms = time_ms(lambda: torch.topk(x.abs(), k), 3)
        print(json.dumps({"operator": "torch.topk(abs)", "torch": torch.__version__, "threads": 1,
                          "n": n, "ratio": ratio, "k": k, "ms": ms,
                          "input_gbps": 4 * n / ms / 1e6, "copy_ms": copy_ms}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
