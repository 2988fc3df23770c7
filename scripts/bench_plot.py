#!/usr/bin/env python3
"""PNG plot of bench_compressors results (Google Benchmark JSON).

usage: bench_plot.py RESULTS.json OUT.png
Left: encode throughput (input GB/s) against flat buffer size, one line per operator, with
memcpy's input rate as the dashed reference. Right: ResNet-50 encode throughput, entire-model
(flat) and layer-wise with one thread, and entire-model with two threads (cpu_t2) where the run
has it, one group of bars per operator.
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    runs = json.load(open(sys.argv[1]))["benchmarks"]
    sizes, memcpy, r50 = {}, {}, {}
    for r in runs:
        name = r["name"].removesuffix("/real_time")
        parts = name.split("/")
        gbs = r.get("bytes_per_second", 0) / 1e9
        if parts[0] == "baseline":
            if parts[1] == "memcpy" and parts[2].isdigit():
                memcpy[int(parts[2])] = gbs
            continue
        if len(parts) < 6 or parts[5] != "encode":
            continue
        op, gran, backend, layout = f"{parts[0]}/{parts[2]}", parts[1], parts[3], parts[4]
        m = re.fullmatch(r"flat2\^(\d+)", layout)
        if m and gran == "flat" and backend == "cpu":
            sizes.setdefault(op, []).append((1 << int(m.group(1)), gbs))
        elif layout == "resnet50" and gran in ("flat", "layer"):
            r50.setdefault(op, {})[gran if backend == "cpu" else f"{gran}/{backend}"] = gbs
    # the bar chart widens with the number of specs
    fig, (a, b) = plt.subplots(1, 2, figsize=(8 + 0.25 * max(len(r50), 28), 7),
                               gridspec_kw={"width_ratios": [1, max(len(r50), 28) / 28]})
    for op, pts in sorted(sizes.items()):
        pts.sort()
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=op)
    if memcpy:
        xs = sorted(memcpy)
        a.plot(xs, [memcpy[x] for x in xs], "k--", label="memcpy")
    a.set_xscale("log", base=2)
    a.set_xlabel("elements (fp32)")
    a.set_ylabel("encode input GB/s (one thread)")
    a.set_title("entire-model encode vs buffer size")
    a.legend(fontsize=7, ncol=2)
    ops = sorted(r50)
    xs = range(len(ops))
    bars = [("flat", "entire-model"), ("layer", "layer-wise")]
    if any("flat/cpu_t2" in r for r in r50.values()):
        bars.append(("flat/cpu_t2", "entire-model, 2 threads"))
    width = 0.8 / len(bars)
    for i, (key, label) in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        b.bar([x + offset for x in xs], [r50[o].get(key, 0) for o in ops], width, label=label)
    b.set_xticks(list(xs))
    b.set_xticklabels(ops, rotation=70, fontsize=7)
    b.set_ylabel("encode input GB/s")
    b.set_title("ResNet-50 (25.6M, 161 tensors): layer-wise vs entire-model")
    b.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
