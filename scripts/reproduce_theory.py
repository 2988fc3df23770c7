#!/usr/bin/env python3
"""The theory in training: Lemma 1's constants as measured on the trainer's gradients, against the
accuracy gap between layer-wise and entire-model training (scripts/reproduce.sh full).

usage: reproduce_theory.py THEORY.csv RESULTS.csv OUT_DIR

THEORY.csv holds torch_train --theory rows: per run and probed step, per layer and for the model,
|x_j|^2 and the layer-wise and entire-model operators' E|Q(x)_j|^2 and E|Q(x)_j - x_j|^2 on
worker 0's gradient. Per setting (over both granularities' runs, every seed and probed step):
  - 1 + Omega_j = E|Q_j(x_j)|^2 / |x_j|^2 of each layer (layer-wise operator), Lemma 1's bound
    sum_j (1 + Omega_j) |x_j|^2 / |x|^2 and the looser max_j (1 + Omega_j);
  - 1 + Omega of the entire-model operator, E|Q(x)|^2 / |x|^2;
  - the relative compression errors e = E|Q(x) - x|^2 / |x|^2 (1 - delta for the contractive
    operators) of both;
  - the final test accuracy of layer-wise minus entire-model training (RESULTS.csv).
Writes theory.md (the table) and theory.png (the accuracy gap against the two ratios).
"""
import csv
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduce_plot import setting  # noqa: E402


def measured_constants(path):
    """setting -> lists over (run, step) of: Lemma 1 bound, max_j(1+Omega_j), 1+Omega_EM, e_LW, e_EM."""
    probes = defaultdict(lambda: defaultdict(list))  # setting -> (run, step) -> rows
    with open(path) as f:
        for row in csv.DictReader(f):
            run = (row["granularity"], row["seed"], row["step"])
            probes[(row["method"], setting(row))][run].append(row)
    out = {}
    for key, by_run in probes.items():
        m = defaultdict(list)
        for rows in by_run.values():
            model = next((r for r in rows if r["layer"] == "model"), None)
            layers = [r for r in rows if r["layer"] != "model" and float(r["norm2"]) > 0]
            if model is None or float(model["norm2"]) <= 0 or not layers:
                continue  # a truncated probe, or a zero gradient
            norm = float(model["norm2"])
            m["bound"].append(float(model["lw_second"]) / norm)
            m["max_layer"].append(max(float(r["lw_second"]) / float(r["norm2"]) for r in layers))
            m["entire"].append(float(model["em_second"]) / norm)
            m["e_lw"].append(float(model["lw_error"]) / norm)
            m["e_em"].append(float(model["em_error"]) / norm)
        if m:
            out[key] = {k: statistics.mean(v) for k, v in m.items()}
    return out


def ratio(a, b):
    """a / b, or None where it is undefined (a zero denominator or numerator: no log scale)."""
    return a / b if a > 0 and b > 0 else None


def accuracy_gaps(path):
    """setting -> final accuracy (%) layer-wise minus entire-model, mean over seeds."""
    final = defaultdict(lambda: defaultdict(dict))  # setting -> granularity -> seed -> (epoch, acc)
    with open(path) as f:
        for row in csv.DictReader(f):
            key = (row["method"], setting(row))
            e, a = int(row["epoch"]), 100 * float(row["test_accuracy"])
            cur = final[key][row["granularity"]].get(row["seed"])
            if cur is None or e > cur[0]:
                final[key][row["granularity"]][row["seed"]] = (e, a)
    gaps = {}
    for key, g in final.items():
        if "layer" in g and "flat" in g:
            gaps[key] = (statistics.mean(a for _, a in g["layer"].values()) -
                         statistics.mean(a for _, a in g["flat"].values()))
    return gaps


def main():
    theory, results, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    consts, gaps = measured_constants(theory), accuracy_gaps(results)
    keys = sorted(k for k in consts if k in gaps)
    lines = ["| setting | Lemma 1 bound Σ(1+Ω_j)‖x_j‖²/‖x‖² | max_j (1+Ω_j) | 1+Ω entire-model | "
             "error LW | error EM | error LW/EM | accuracy LW − EM | lower error trains better |",
             "|---|---|---|---|---|---|---|---|---|"]
    agree = total = 0
    for key in keys:
        c, gap = consts[key], gaps[key]
        r = ratio(c["e_lw"], c["e_em"])
        verdict = "—"
        if r is not None and abs(math.log(r)) > 0.01 and abs(gap) > 0.1:
            total += 1
            ok = (r < 1) == (gap > 0)
            agree += ok
            verdict = "yes" if ok else "no"
        shown = f"{r:.3f}" if r is not None else "—"
        lines.append(f"| {key[1]} | {c['bound']:.4g} | {c['max_layer']:.4g} | {c['entire']:.4g} | "
                     f"{c['e_lw']:.4g} | {c['e_em']:.4g} | {shown} | {gap:+.2f} | {verdict} |")
    summary = (f"\nWhere the errors differ (by more than 1 %) and the accuracies too (by more than "
               f"0.1 points), the granularity with the lower compression error trained better in "
               f"{agree} of {total} settings.\n")
    (out / "theory.md").write_text(
        "Lemma 1's constants measured on worker 0's gradient (mean over seeds, both runs' "
        "granularities and every probed step), against the final accuracy gap. The bound is "
        "E‖Q_LW(x)‖²/‖x‖² over every layer; max_j is over the layers with a nonzero gradient. "
        "EF rows probe the operator on the raw gradient (the trainer compresses gradient + "
        "residual).\n\n" +
        "\n".join(lines) + "\n" + summary)
    print("\n".join(lines) + "\n" + summary)

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    panels = ((axes[0], lambda c: ratio(c["bound"], c["entire"]),
               "Lemma 1 bound (layer-wise) / (1 + Ω) entire-model"),
              (axes[1], lambda c: ratio(c["e_lw"], c["e_em"]),
               "compression error, layer-wise / entire-model"))
    for ax, x_of, label in panels:
        for key in keys:
            x = x_of(consts[key])
            if x is None:
                continue
            nesterov = "Nesterov" in key[1]
            ax.scatter(x, gaps[key], marker="s" if nesterov else "o",
                       color="tab:orange" if "EF" in key[1] else "tab:blue" if not nesterov
                       else "tab:green", s=22)
            ax.annotate(key[1], (x, gaps[key]), fontsize=5.5, xytext=(3, 2),
                        textcoords="offset points")
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(1, color="k", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel(label + " (log)")
        ax.set_ylabel("final test accuracy, layer-wise − entire-model (points)")
        ax.grid(alpha=0.3)
    axes[0].set_title("Lemma 1 (Assumption 5 constants) vs the accuracy gap", fontsize=10)
    axes[1].set_title("relative compression error vs the accuracy gap\n"
                      "blue: vanilla SGD, green: Nesterov, orange: error feedback", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "theory.png", dpi=120)


if __name__ == "__main__":
    main()
