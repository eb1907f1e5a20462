#!/usr/bin/env python3
"""Summarises a sweep's results.csv (written by the coordinator; `promptsweep run`).

    summarize.py OUT_DIR [--markdown] [--pivot ROW COLUMN]

Reads OUT_DIR/results.csv (one row per finished job: job_id, every swept
parameter, seed, status, attempts, final/best dev metric, test metric, ...)
and prints the mean ± sample std over seeds of every parameter combination,
next to the majority-class baseline of the test set (classification; the
data paths come from a job's adapters/<id>/result.json). --pivot ROW COLUMN
prints instead a markdown table of the test metric (mean ± std over seeds)
with one swept parameter per row and another per column (the sweep must vary
only those two besides the seed).
"""
import collections
import csv
import json
import math
import os
import sys


def number(text):
    return None if text in ("", None) else float(text)


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None, 0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0, len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var), len(values)


def majority_share(result):
    """Share of the test set held by the training set's most frequent label."""
    def labels(path):
        with open(path, encoding="utf-8") as f:
            return [str(json.loads(line)["label"]) for line in f if line.strip()]
    if not result.get("test_data") or result.get("eval_metric") != "accuracy":
        return None
    train = collections.Counter(labels(result["train"]))
    test = labels(result["test_data"])
    majority = train.most_common(1)[0][0]
    return sum(1 for label in test if label == majority) / len(test)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    markdown = "--markdown" in sys.argv[2:]
    pivot = None
    if "--pivot" in sys.argv:
        at = sys.argv.index("--pivot")
        pivot = sys.argv[at + 1:at + 3]
    with open(os.path.join(out, "results.csv"), newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames
        rows = list(reader)
    swept = columns[1:columns.index("seed")]
    metric = next(c for c in columns if c.startswith("test_"))[len("test_"):]

    if pivot:
        row_name, column_name = pivot
        cells = collections.defaultdict(list)
        row_keys, column_keys = [], []
        for row in rows:
            r, c = row[row_name], row[column_name]
            row_keys += [r] if r not in row_keys else []
            column_keys += [c] if c not in column_keys else []
            cells[(r, c)].append(number(row[f"test_{metric}"]))
        print(f"| {row_name} \\ {column_name} | " + " | ".join(column_keys) + " |")
        print("|---|" + "---|" * len(column_keys))
        for r in row_keys:
            line = []
            for c in column_keys:
                mean, std, _ = mean_std(cells[(r, c)])
                line.append("n/a" if mean is None else f"{100 * mean:.1f} ± {100 * std:.1f}")
            print(f"| {r} | " + " | ".join(line) + " |")
        return

    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(tuple(row[name] for name in swept), []).append(row)
    print(f"{len(rows)} jobs finished, {sum(1 for r in rows if r['status'] == 'succeeded')} succeeded")
    header = swept + ["seeds", f"best dev {metric}", f"test {metric} (best prompt)", "diverged/failed"]
    lines = []
    for key, group in groups.items():
        dev_mean, dev_std, _ = mean_std([number(r[f"best_dev_{metric}"]) for r in group])
        test_mean, test_std, n = mean_std([number(r[f"test_{metric}"]) for r in group])
        bad = sum(1 for r in group if r["status"] != "succeeded")
        fmt = lambda m, s: "n/a" if m is None else f"{100 * m:.1f} ± {100 * s:.1f}"
        lines.append(list(key) + [str(n), fmt(dev_mean, dev_std), fmt(test_mean, test_std), str(bad)])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    adapter = next((r["adapter"] for r in rows if r["adapter"]), None)
    if adapter:
        with open(os.path.join(out, adapter, "result.json"), encoding="utf-8") as f:
            share = majority_share(json.load(f))
        if share is not None:
            print(f"majority-class baseline (test): {100 * share:.1f}")


if __name__ == "__main__":
    main()
