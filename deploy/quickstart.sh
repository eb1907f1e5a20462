#!/usr/bin/env bash
# The README's first command: set up (packages, reference data, build), then
# run the main job: prompt tuning on the shipped pretrained model
# (models/pico-llama-2.6m) for spam vs ham mail, the 8 jobs of
# configs/quickstart.yaml run by `promptsweep run` (coordinator + 2 workers),
# with a table of dev/test accuracies and the HTML report
# (build/quickstart/report.html) at the end.
# Nothing is downloaded from a model hub.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/deploy/setup.sh"

bin=${PROMPTSWEEP_BUILD_DIR:-$root/build}/promptsweep
model=$root/models/pico-llama-2.6m
out=${PROMPTSWEEP_QUICKSTART_OUT:-$root/build/quickstart}

echo; echo "== main job: the shipped model"
"$bin" inspect -q "$model"
# The sentinel keeps trailing newlines, which $(...) would strip.
continuation=$("$bin" generate "$model" --text "The President said that" --max-new-tokens 20; echo x)
printf 'generate: "The President said that" -> %q\n' "${continuation%x}"

echo; echo "== main job: the sweep configs/quickstart.yaml (8 prompt-tuning jobs on data/spam, 2 workers)"
"$bin" plan "$root/configs/quickstart.yaml"
# A coordinator and 2 worker processes on loopback; rerunning resumes.
"$bin" run "$root/configs/quickstart.yaml" --workers 2 --threads 1 -o "$out"
echo; echo "== mean ± std over seeds (promptsweep report --format md)"
"$bin" report "$out" --format md --top 0
echo; echo "== the sweep report: one self-contained HTML page (open it in a browser; it works offline)"
"$bin" report "$out" -o "$out/report.html"
