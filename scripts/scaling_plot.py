#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Where each exchange mode wins: an SVG of the fastest mode per (ranks, bandwidth) cell, from
the step-time model's CSV (examples/traffic_model.cpp --time CSV). One panel per operator, one
row of panels per model and codec-work assumption. Plain SVG: no plotting library needed.

usage: scaling_plot.py modes.csv out.svg
"""
import csv
import sys
from collections import defaultdict

COLORS = {
    "dense ring": "#bbbbbb",
    "all-reduce": "#e6a23c",
    "param. server": "#409eff",
    "sharded": "#67c23a",
    "summable all-reduce": "#9b59b6",
}
CELL, GAP, LEFT, TOP, TITLE = 26, 40, 70, 60, 34


def main(src, dst):
    best = {}  # (model, compute, op, gbps, ranks) -> (seconds, mode)
    for row in csv.DictReader(open(src)):
        key = (row["model"], row["compute"], row["operator"], float(row["gbps"]), int(row["ranks"]))
        t = float(row["seconds"])
        if key not in best or t < best[key][0]:
            best[key] = (t, row["mode"])
    panels = defaultdict(dict)  # (model, compute) -> op -> cells
    for (model, compute, op, gbps, ranks), (_, mode) in best.items():
        panels[(model, compute)].setdefault(op, {})[(gbps, ranks)] = mode
    ranks = sorted({k[4] for k in best})
    gbps = sorted({k[3] for k in best}, reverse=True)
    ops = list(dict.fromkeys(k[2] for k in best))
    width = LEFT + len(ops) * (len(ranks) * CELL + GAP)
    height = TOP + len(panels) * (len(gbps) * CELL + TITLE + 40) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="20" font-size="14">Fastest exchange per step (modeled): ranks across, '
           'link Gb/s down</text>']
    x = 10
    for mode, color in COLORS.items():
        out.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="40">{mode}</text>')
        x += 110
    y = TOP
    for (model, compute), by_op in panels.items():
        label = "codec work at measured CPU rates" if compute == "measured" else \
            "communication only"
        out.append(f'<text x="10" y="{y + 14}" font-size="13">{model}, {label}</text>')
        y += TITLE
        for i, op in enumerate(ops):
            x0 = LEFT + i * (len(ranks) * CELL + GAP)
            out.append(f'<text x="{x0}" y="{y - 6}">{op}</text>')
            for r, g in enumerate(gbps):
                if i == 0:
                    out.append(f'<text x="{x0 - 30}" y="{y + r * CELL + 17}">{g:.0f}</text>')
                for c, n in enumerate(ranks):
                    mode = by_op.get(op, {}).get((g, n), "dense ring")
                    out.append(f'<rect x="{x0 + c * CELL}" y="{y + r * CELL}" width="{CELL - 2}" '
                               f'height="{CELL - 2}" fill="{COLORS[mode]}"><title>{op}, {n} ranks, '
                               f'{g:.0f} Gb/s: {mode}</title></rect>')
            for c, n in enumerate(ranks):
                out.append(f'<text x="{x0 + c * CELL + 2}" y="{y + len(gbps) * CELL + 12}" '
                           f'font-size="9">{n}</text>')
        y += len(gbps) * CELL + 40
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
