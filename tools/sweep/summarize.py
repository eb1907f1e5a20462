#!/usr/bin/env python3
"""Summarises a sweep run by tools/sweep/run_local.sh.

    summarize.py OUT_DIR [--markdown] [--pivot ROW COLUMN]

Reads OUT_DIR/plan.json (`promptsweep plan --json`) and each job's
OUT_DIR/jobs/<id>/result.json; writes OUT_DIR/results.csv (one row per job:
id, every swept parameter, seed, status, steps, dev/test metric, train loss,
tokens/s, wall seconds, adapter path) atomically, and prints the mean ± sample
std over seeds of every parameter combination, next to the majority-class
baseline of the test set (classification). Jobs without a result are listed
as missing. --pivot ROW COLUMN prints instead a markdown table of the test
metric (mean ± std over seeds) with one swept parameter per row and another
per column (the sweep must vary only those two besides the seed).
"""
import collections
import csv
import json
import math
import os
import sys


def metric_of(evaluation, name):
    if not evaluation:
        return None
    value = evaluation.get(name)
    return None if value is None else float(value)


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None, 0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0, len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var), len(values)


def majority_share(settings):
    """Share of the test set held by the training set's most frequent label."""
    if settings.get("task", "classification") != "classification":
        return None
    def labels(path):
        with open(path, encoding="utf-8") as f:
            return [str(json.loads(line)["label"]) for line in f if line.strip()]
    train = collections.Counter(labels(settings["train"]))
    test = labels(settings["test"])
    majority = train.most_common(1)[0][0]
    return sum(1 for label in test if label == majority) / len(test)


def print_pivot(jobs, rows, row_name, column_name, metric):
    cells = collections.defaultdict(list)
    row_keys, column_keys = [], []
    for job in jobs:  # the plan's order
        r, c = job["swept"][row_name], job["swept"][column_name]
        if r not in row_keys:
            row_keys.append(r)
        if c not in column_keys:
            column_keys.append(c)
    for row in rows:
        cells[(row[row_name], row[column_name])].append(row[f"test_{metric}"])
    print(f"| {row_name} \\ {column_name} | " + " | ".join(str(c) for c in column_keys) + " |")
    print("|---|" + "---|" * len(column_keys))
    for r in row_keys:
        line = []
        for c in column_keys:
            mean, std, n = mean_std(cells[(r, c)])
            line.append("n/a" if mean is None else f"{100 * mean:.1f} ± {100 * std:.1f}")
        print(f"| {r} | " + " | ".join(line) + " |")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    markdown = "--markdown" in sys.argv[2:]
    pivot = None
    if "--pivot" in sys.argv:
        at = sys.argv.index("--pivot")
        pivot = sys.argv[at + 1:at + 3]
    with open(os.path.join(out, "plan.json"), encoding="utf-8") as f:
        plan = json.load(f)
    jobs = plan["jobs"]
    swept = list(jobs[0]["swept"].keys()) if jobs else []
    metric = plan.get("metric", {}).get("name", "accuracy")

    rows = []
    missing = []
    for job in jobs:
        job_dir = os.path.join(out, "jobs", job["id"])
        result_path = os.path.join(job_dir, "result.json")
        if not os.path.exists(result_path):
            missing.append(job["id"])
            continue
        with open(result_path, encoding="utf-8") as f:
            result = json.load(f)
        row = {"job_id": job["id"]}
        row.update({name: job["swept"][name] for name in swept})
        row["seed"] = job["seed"]
        row.update({
            "status": result.get("status"),
            "steps": result.get("steps"),
            f"dev_{metric}": metric_of(result.get("final_dev"), metric),
            f"best_dev_{metric}": metric_of(result.get("best_dev"), metric),
            f"test_{metric}": metric_of(result.get("test"), metric),
            "final_train_loss": result.get("final_train_loss"),
            "tokens_per_second": result.get("tokens_per_second"),
            "wall_seconds": result.get("wall_seconds"),
            "adapter": job_dir if result.get("status") == "succeeded" else "",
        })
        rows.append(row)

    if rows:
        tmp = os.path.join(out, "results.csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, os.path.join(out, "results.csv"))

    if pivot:
        print_pivot(jobs, rows, pivot[0], pivot[1], metric)
        return

    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(tuple(row[name] for name in swept), []).append(row)
    name = plan.get("name", os.path.basename(out))
    print(f"{name}: {len(rows)} of {len(jobs)} jobs done" + (f", missing {len(missing)}" if missing else ""))
    header = swept + ["seeds", f"best dev {metric}", f"test {metric} (best prompt)", "diverged/failed"]
    lines = []
    for key, group in groups.items():
        dev_mean, dev_std, _ = mean_std([r[f"best_dev_{metric}"] for r in group])
        test_mean, test_std, n = mean_std([r[f"test_{metric}"] for r in group])
        bad = sum(1 for r in group if r["status"] != "succeeded")
        fmt = lambda m, s: "n/a" if m is None else f"{100 * m:.1f} ± {100 * s:.1f}"
        lines.append([str(k) for k in key] + [str(n), fmt(dev_mean, dev_std), fmt(test_mean, test_std), str(bad)])
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
    if jobs:
        share = majority_share(jobs[0]["settings"])
        if share is not None:
            print(f"majority-class baseline (test): {100 * share:.1f}")
    if rows:
        print(f"results: {os.path.join(out, 'results.csv')}")


if __name__ == "__main__":
    main()
