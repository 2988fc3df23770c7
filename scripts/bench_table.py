#!/usr/bin/env python3
"""Markdown tables of bench_compressors results (Google Benchmark JSON) for one layout.

usage: bench_table.py RESULTS.json [LAYOUT] [TORCH_TOPK.jsonl] [OTHER_COMPILER.json ...]
(LAYOUT defaults to resnet50; the other results are the same benchmarks built by another
compiler, named by the file: results-clang++.json)

1. Per operator: bits/element, encode entire-model and layer-wise, decode entire-model, one
   thread, each as input GB/s, the ratio to memcpy on a buffer of the layout's size in the same
   run, and ms.
2. Two threads (cpu_t2), where the run has them: encode times and the speedup over one thread.
3. The issue's speed targets, each as a ratio measured in this run, with the target beside it.
4. With other compilers' results: entire-model encode time of each operator, other / first,
   each normalized by its own run's memcpy.
The reference rates are the baselines of the layout's own size (memcpy, plain read), never those
of another size.
"""
import json
import sys


def load(path, layout):
    runs = json.load(open(path))["benchmarks"]
    res, base = {}, {}
    for r in runs:
        if r.get("run_type") == "aggregate":
            continue
        name = r["name"].removesuffix("/real_time")
        parts = name.split("/")
        ms = r["real_time"] if r.get("time_unit") == "ms" else r["real_time"] / 1e6
        if parts[0] == "baseline":
            base[(parts[1], parts[2])] = ms
            continue
        if len(parts) < 6 or parts[4] != layout:
            continue
        # the spec without its granularity names the row: topk:0.01/coo-f32
        op, gran, backend, phase = f"{parts[0]}/{parts[2]}", parts[1].split(":")[0], parts[3], parts[5]
        n = round(r["bytes_per_second"] * ms / 1e3 / 4)
        res[(op, gran, backend, phase)] = {"ms": ms, "n": n, "bits": r.get("bits_per_elem", 0.0)}
    return res, base


def main():
    path = sys.argv[1]
    layout = sys.argv[2] if len(sys.argv) > 2 else "resnet50"
    torch_path = sys.argv[3] if len(sys.argv) > 3 else None
    res, base = load(path, layout)
    if not res:
        print(f"no {layout} results in {path}")
        return 1
    n = next(iter(res.values()))["n"]
    size = str(n)
    memcpy_ms = base.get(("memcpy", size))
    read_ms = base.get(("sum", size))
    order = list(dict.fromkeys(op for (op, _, _, _) in res))

    def cell(op, gran, backend, phase):
        r = res.get((op, gran, backend, phase))
        if r is None:
            return "—"
        gbs = 4 * n / r["ms"] / 1e6
        ratio = f" ({memcpy_ms / r['ms']:.2f}×)" if memcpy_ms else ""
        return f"{gbs:.2f} GB/s{ratio}, {r['ms']:.1f} ms"

    if memcpy_ms:
        line = f"memcpy of the same {n} floats in this run: {4 * n / memcpy_ms / 1e6:.1f} GB/s, {memcpy_ms:.1f} ms"
        if read_ms:
            line += f"; plain read (sum): {4 * n / read_ms / 1e6:.1f} GB/s, {read_ms:.1f} ms"
        print(line + "\n")
    print("| operator | bits/elem | encode, entire-model | encode, layer-wise | decode, entire-model |")
    print("|---|---|---|---|---|")
    for op in order:
        bits = next(r["bits"] for k, r in res.items() if k[0] == op)
        row = [cell(op, g, "cpu", p) for g, p in (("flat", "encode"), ("layer", "encode"), ("flat", "decode"))]
        print(f"| {op} | {bits:.3f} | " + " | ".join(row) + " |")

    threaded = [op for op in order if (op, "flat", "cpu_t2", "encode") in res]
    if threaded:
        t2 = base.get(("memcpy_t2", size))
        print("\nTwo threads (`cpu_threads(2)`), encode; speedup = one-thread time / two-thread time"
              + (f"; memcpy split over two threads: {memcpy_ms / t2:.2f}× one thread's rate" if t2 and memcpy_ms else "")
              + "\n")
        print("| operator | entire-model, 2 threads | speedup | layer-wise, 2 threads | speedup |")
        print("|---|---|---|---|---|")
        for op in threaded:
            row = []
            for g in ("flat", "layer"):
                one, two = res.get((op, g, "cpu", "encode")), res.get((op, g, "cpu_t2", "encode"))
                row.append(cell(op, g, "cpu_t2", "encode"))
                row.append(f"{one['ms'] / two['ms']:.2f}×" if one and two else "—")
            print(f"| {op} | " + " | ".join(row) + " |")

    targets(res, base, size, memcpy_ms, read_ms, torch_path)
    for other in sys.argv[4:]:
        compare(res, memcpy_ms, other, layout)
    return 0


def compare(res, memcpy_ms, path, layout):
    """Entire-model encode, one thread: this build against another compiler's build."""
    other, obase = load(path, layout)
    name = path.rsplit("results-", 1)[-1].removesuffix(".json")
    omem = obase.get(("memcpy", str(next(iter(res.values()))["n"])))
    rows = []
    for (op, gran, backend, phase), r in res.items():
        o = other.get((op, gran, backend, phase))
        if gran != "flat" or backend != "cpu" or phase != "encode" or o is None:
            continue
        ratio = (o["ms"] / omem) / (r["ms"] / memcpy_ms) if omem and memcpy_ms else o["ms"] / r["ms"]
        rows.append((op, r["ms"], o["ms"], ratio))
    if not rows:
        return
    worst = max(max(x[3], 1 / x[3]) for x in rows)
    print(f"\nCompilers: entire-model encode, g++ against {name} (time ratio {name} / g++, each "
          f"normalized by its own run's memcpy; target: within 1.5× either way; worst "
          f"{worst:.2f}×, {'met' if worst <= 1.5 else 'missed'})\n")
    print(f"| operator | g++ ms | {name} ms | {name} / g++ |")
    print("|---|---|---|---|")
    for op, a, b, ratio in rows:
        print(f"| {op} | {a:.1f} | {b:.1f} | {ratio:.2f} |")


def targets(res, base, size, memcpy_ms, read_ms, torch_path):
    """The speed targets of the benchmark issue, as ratios measured in this run."""
    rows = []

    def t(op, gran="flat", phase="encode"):
        r = res.get((op, gran, "cpu", phase))
        return r["ms"] if r else None

    def add(what, ms, reference_ms, goal):
        """ratio = reference time / our time (a rate ratio); goal >= this ratio is met."""
        if ms and reference_ms:
            ratio = reference_ms / ms
            label = f"≥ {goal * 100:.0f}%" if goal <= 1 else f"≥ {goal:.0f}×"
            rows.append((what, f"{ratio:.2f}", label, "met" if ratio >= goal else "missed"))

    for op in ("sign/signbits", "scaled_sign/signbits", "threshold_v:2e-3/coo-f32",
               "adaptive_threshold/coo-f32", "identity/f32"):
        add(f"{op} encode / plain read", t(op), read_ms, 0.85)
    for op in ("terngrad/ternary2", "qsgd:15/levels", "qsgd:255/levels", "natural/nat9", "sr_bf16/bf16"):
        add(f"{op} encode / memcpy", t(op), memcpy_ms, 1.0)
    add("random_k:0.01/coo-f32 encode / memcpy", t("random_k:0.01/coo-f32"), memcpy_ms, 4.0)
    add("random_k:0.01,shared_seed/coo-f32 decode / memcpy output rate",
        t("random_k:0.01,shared_seed/coo-f32", phase="decode"), memcpy_ms, 0.85)
    for ratio, ref in (("0.001", "1pct"), ("0.01", "1pct"), ("0.1", "10pct")):
        goal = 10 if ratio == "0.1" else 20
        add(f"topk:{ratio} encode / std::nth_element ({ref[:-3]}%)", t(f"topk:{ratio}/coo-f32"),
            base.get((f"nth_element_topk_{ref}", size)), goal)
    if torch_path:
        for line in open(torch_path):
            r = json.loads(line)
            ours = t(f"topk:{r['ratio']:g}/coo-f32")
            if ours and memcpy_ms:
                # both sides normalized by their own copy of the buffer, timed in their own run
                ratio = (r["ms"] / r["copy_ms"]) / (ours / memcpy_ms)
                rows.append((f"top-k {r['ratio'] * 100:g}% / torch.topk(abs) {r['torch']} (copy-normalized; raw {r['ms']:.0f} ms)",
                             f"{ratio:.2f}", "≥ 30×" if r["ratio"] <= 0.01 else "—",
                             ("met" if ratio >= 30 else "missed") if r["ratio"] <= 0.01 else "—"))
    for op in ("sign/signbits", "terngrad/ternary2", "qsgd:15/levels", "natural/nat9", "sr_bf16/bf16",
               "topk:0.01/coo-f32", "identity/f32"):
        add(f"{op} decode / memcpy output rate", t(op, phase="decode"), memcpy_ms, 0.85)
    for op in ("sign/signbits", "terngrad/ternary2", "qsgd:15/levels", "natural/nat9", "sr_bf16/bf16",
               "threshold_v:2e-3/coo-f32", "topk:0.01/coo-f32", "random_k:0.01/coo-f32"):
        lw, em = t(op, "layer"), t(op)
        if lw and em:
            goal = 1.25 if op.startswith("topk") else 1.10
            rows.append((f"{op} layer-wise / entire-model time", f"{lw / em:.2f}", f"≤ {goal:.2f}×",
                         "met" if lw / em <= goal else "missed"))
    if rows:
        print("\nTargets (ratios from this run; one thread)\n")
        print("| measure | ratio | target | |")
        print("|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    sys.exit(main())
