#!/usr/bin/env python3
"""Markdown table of bench_compressors results (Google Benchmark JSON) for one layout.

usage: bench_table.py RESULTS.json [LAYOUT]   (LAYOUT defaults to resnet50)
Rows: operators; columns: bits/element, encode entire-model and layer-wise, decode entire-model,
each as input GB/s, the ratio to memcpy on a buffer of the same size in the same run, and ms.
"""
import json
import sys


def main():
    path = sys.argv[1]
    layout = sys.argv[2] if len(sys.argv) > 2 else "resnet50"
    runs = json.load(open(path))["benchmarks"]
    cell, bits, order, memcpy = {}, {}, [], None
    for r in runs:
        name = r["name"].removesuffix("/real_time")
        parts = name.split("/")
        if parts[0] == "baseline":
            if parts[1] == "memcpy" and r.get("bytes_per_second") and memcpy is None:
                memcpy = r
            continue
        if len(parts) < 6 or parts[4] != layout:
            continue
        op, gran, phase = parts[0], parts[1], parts[5]
        if op not in order:
            order.append(op)
        bits[op] = r.get("bits_per_elem", 0.0)
        gbs = r["bytes_per_second"] / 1e9
        ms = r["real_time"] if r.get("time_unit") == "ms" else r["real_time"] / 1e6
        cell[(op, gran, phase)] = f"{gbs:.2f} GB/s ({r.get('vs_memcpy', 0):.2f}×), {ms:.1f} ms"
    if memcpy:
        print(f"memcpy in this run: {memcpy['bytes_per_second'] / 1e9:.1f} GB/s, "
              f"{memcpy['real_time']:.1f} ms\n")
    print("| operator | bits/elem | encode, entire-model | encode, layer-wise | decode, entire-model |")
    print("|---|---|---|---|---|")
    for op in order:
        row = [cell.get((op, g, p), "—") for g, p in
               (("flat", "encode"), ("layer", "encode"), ("flat", "decode"))]
        print(f"| {op} | {bits[op]:.3f} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
