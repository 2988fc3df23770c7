#!/usr/bin/env python3
"""Figures and summary of scripts/reproduce.sh: one PNG per method (test accuracy per epoch,
layer-wise vs entire-model, mean over seeds with the min-max band, in the style of the paper's
Figures 2-7) and summary.md (final accuracy mean +- spread, the direction observed, the
direction the paper reports, SPECS.md 1.5).

usage: reproduce_plot.py RESULTS.csv OUT_DIR
"""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"randomk": "Random-k", "topk": "Top-k", "threshold": "Threshold-v",
         "terngrad": "TernGrad", "adaptive": "Adaptive Threshold", "qsgd": "QSGD",
         "identity": "no compression", "sign": "signSGD", "scaled_sign": "scaled sign",
         "natural": "natural compression", "sr_bf16": "stochastic rounding (bf16)",
         "powersgd": "PowerSGD"}
# the paper's finding per method (Dutta et al. 2020, SPECS.md 1.5)
PAPER = {"randomk": "comparable; layer-wise better at 0.1 %",
         "topk": "entire-model better at <= 10 % with vanilla SGD on CIFAR; layer-wise with Nesterov / on ResNet-50",
         "threshold": "comparable (elementwise operator)",
         "terngrad": "layer-wise better",
         "adaptive": "layer-wise better",
         "qsgd": "layer-wise better",
         "identity": "identical"}
NOT_RUN = "not run in the paper (theory only, or beyond it)"


def paper_direction(row):
    """The paper's finding for a setting: top-k differs with Nesterov momentum (Fig. 7c)."""
    m = row["method"]
    if row["feedback"] == "1":
        return "not run in the paper (error feedback)"
    if m == "topk" and float(row["momentum"]) > 0:
        return "comparable or layer-wise better with Nesterov momentum (Fig. 7c)"
    if m == "randomk" and float(row["ratio"]) > 0.002:
        return "comparable"
    if m == "randomk":
        return "layer-wise better at 0.1 %"
    return PAPER.get(m, NOT_RUN)


def setting(row):
    m = row["method"]
    parts = [NAMES.get(m, m)]
    if m in ("topk", "randomk"):
        parts.append(f"{float(row['ratio']) * 100:g} %")
    if m == "threshold":
        parts.append(f"v = {float(row['threshold']):g}")
    if m == "qsgd":
        parts.append(f"s = {row['levels']}")
    if m == "powersgd":
        parts.append(f"rank {row.get('rank', '?')}")
    mom = float(row["momentum"])
    if mom > 0:
        parts.append(f"Nesterov {mom:g}")
    elif mom < 0:
        parts.append(f"momentum {-mom:g}")
    if row["feedback"] == "1":
        parts.append("EF")
    return ", ".join(parts)


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    # acc[(method, setting)][granularity][seed] = [acc per epoch]
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    paper = {}
    up = defaultdict(dict)  # up[(method, setting)][granularity] = bytes sent up per step
    model_name = "CNN"
    with src.open() as f:
        for row in csv.DictReader(f):
            key = (row["method"], setting(row))
            paper[key] = paper_direction(row)
            model_name = {"resnet": "small ResNet"}.get(row.get("model", "cnn"), "CNN")
            acc[key][row["granularity"]][row["seed"]][int(row["epoch"])] = \
                100 * float(row["test_accuracy"])
            up[key][row["granularity"]] = float(row["bytes_up_per_step"])
    by_method = defaultdict(list)
    for key in acc:
        by_method[key[0]].append(key)
    lines = ["| method, setting | layer-wise final acc. | entire-model final acc. | "
             "observed | KB up per step (LW / EM) | paper |", "|---|---|---|---|---|---|"]
    for method, keys in sorted(by_method.items()):
        cols = min(4, len(keys))
        rows = (len(keys) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(max(5.5, 4.2 * cols), 3.6 * rows),
                                 squeeze=False)
        for ax in axes.flat[len(keys):]:
            ax.set_visible(False)
        for ax, key in zip(axes.flat, sorted(keys, key=lambda k: k[1])):
            finals = {}
            for gran, style in (("layer", "-"), ("flat", "--")):
                seeds = acc[key].get(gran, {})
                if not seeds:
                    continue
                epochs = sorted(set.intersection(*(set(s) for s in seeds.values())))
                mean = [statistics.mean(s[e] for s in seeds.values()) for e in epochs]
                lo = [min(s[e] for s in seeds.values()) for e in epochs]
                hi = [max(s[e] for s in seeds.values()) for e in epochs]
                label = "layer-wise" if gran == "layer" else "entire-model"
                ax.plot(epochs, mean, style, marker="o", ms=3, label=label)
                ax.fill_between(epochs, lo, hi, alpha=0.2)
                last = [s[epochs[-1]] for s in seeds.values()]
                finals[gran] = (statistics.mean(last),
                                statistics.stdev(last) if len(last) > 1 else 0.0, len(last))
            ax.set_title(key[1], fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_ylabel("test accuracy (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            if "layer" in finals and "flat" in finals:
                (ml, sl, n), (mf, sf, _) = finals["layer"], finals["flat"]
                spread = max(sl, sf, 0.1)
                observed = ("comparable" if abs(ml - mf) <= spread
                            else "layer-wise better" if ml > mf else "entire-model better")
                kb = f"{up[key]['layer'] / 1e3:.1f} / {up[key]['flat'] / 1e3:.1f}"
                lines.append(f"| {key[1]} | {ml:.2f} ± {sl:.2f} | {mf:.2f} ± {sf:.2f} | "
                             f"{observed} (Δ {ml - mf:+.2f}, {n} seeds) | {kb} | {paper[key]} |")
        fig.suptitle(f"{NAMES.get(method, method)}, Fashion-MNIST {model_name}, 4 workers",
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(out / f"{method}.png", dpi=110)
        plt.close(fig)
    (out / "summary.md").write_text(
        "Final test accuracy (%), mean ± standard deviation over seeds; \"comparable\" when the "
        "difference is within the larger standard deviation.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
