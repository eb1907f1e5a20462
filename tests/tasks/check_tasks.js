#!/usr/bin/env node
// Checks the task datasets that tools/data/make_tasks.js writes (data/):
//   - every line of {spam,genre,lastword}/{train,dev,test}.jsonl parses, has its
//     fields as non-empty strings and an allowed label;
//   - task.yaml names the same labels (in order) and the split files;
//   - no content (lowercased words) appears in two splits of a task, genre
//     documents and lastword chapters never span splits;
//   - with TRAIN_TXT (the pretraining corpus, tools/data/make_pretrain_corpus.js):
//     no genre passage, lastword example, heldout.txt paragraph (next to
//     TRAIN_TXT) or tests/data/pretrain/heldout_passage.txt line occurs in it
//     (a text counts as occurring when half or more of its word 8-grams do).
// Prints counts; exits 1 with one line per problem.
//
// usage: node tests/tasks/check_tasks.js DATA_DIR [TRAIN_TXT]
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const SPLITS = ["train", "dev", "test"];
const TASKS = {
  spam: { kind: "classification", labels: ["spam", "ham"], fields: ["text"], min: { train: 1000, dev: 100, test: 200 } },
  genre: {
    kind: "classification",
    labels: ["news", "religion", "government", "romance"],
    fields: ["text"],
    group: "doc",
    min: { train: 400, dev: 100, test: 100 },
  },
  lastword: { kind: "generation", fields: ["input", "target"], group: "chapter", min: { train: 200, dev: 50, test: 50 } },
};
const NGRAM = 8;

const problems = [];
const problem = (message) => problems.push(message);

const words = (text) => text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]+/gu) ?? [];
const hashOf = (text) => crypto.createHash("sha256").update(words(text).join(" ")).digest("hex");

function readLines(file) {
  const rows = [];
  const lines = fs.readFileSync(file, "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line.trim().length === 0) return;
    try {
      rows.push({ row: JSON.parse(line), where: `${file}:${i + 1}` });
    } catch (e) {
      problem(`${file}:${i + 1}: not JSON: ${e.message}`);
    }
  });
  return rows;
}

function checkTaskYaml(dir, name, spec) {
  const file = path.join(dir, "task.yaml");
  if (!fs.existsSync(file)) return problem(`${file}: missing`);
  const yaml = fs.readFileSync(file, "utf8");
  if (!new RegExp(`^task: ${spec.kind}$`, "m").test(yaml)) problem(`${file}: expected 'task: ${spec.kind}'`);
  if (!/^max_length: \d+$/m.test(yaml)) problem(`${file}: no max_length`);
  for (const split of SPLITS) {
    if (!new RegExp(`^${split}: ${split}\\.jsonl$`, "m").test(yaml)) {
      problem(`${file}: expected '${split}: ${split}.jsonl' (relative to the task file)`);
    }
  }
  if (spec.kind === "classification") {
    const labels = [...yaml.matchAll(/^  ([a-z]+): " ([a-z]+)"$/gm)].map((m) => m[1]);
    if (labels.join(",") !== spec.labels.join(",")) {
      problem(`${file}: verbalizer labels [${labels}] != expected [${spec.labels}]`);
    }
  }
}

// Returns the texts to test against the pretraining corpus.
function checkTask(dataDir, name, spec) {
  const dir = path.join(dataDir, name);
  checkTaskYaml(dir, name, spec);
  const hashSplit = new Map();
  const groupSplit = new Map();
  const texts = [];
  const counts = {};
  for (const split of SPLITS) {
    const file = path.join(dir, `${split}.jsonl`);
    if (!fs.existsSync(file)) {
      problem(`${file}: missing`);
      continue;
    }
    const count = {};
    let n = 0;
    for (const { row, where } of readLines(file)) {
      if (row === null || typeof row !== "object" || Array.isArray(row)) {
        problem(`${where}: not a JSON object`);
        continue;
      }
      let ok = true;
      for (const field of spec.fields) {
        if (typeof row[field] !== "string" || row[field].trim().length === 0) {
          problem(`${where}: field '${field}' missing or not a non-empty string`);
          ok = false;
        }
      }
      if (spec.kind === "classification") {
        if (!spec.labels.includes(row.label)) {
          problem(`${where}: label ${JSON.stringify(row.label)} not one of ${spec.labels.join(", ")}`);
          ok = false;
        }
      } else if (typeof row.target === "string" && !/^ [A-Za-z]{3,}$/.test(row.target)) {
        problem(`${where}: target ${JSON.stringify(row.target)} is not ' ' + a word of >= 3 letters`);
      }
      if (!ok) continue;
      n++;
      const key = spec.kind === "classification" ? row.label : "examples";
      count[key] = (count[key] ?? 0) + 1;
      const content = spec.fields.map((f) => row[f]).join(" ");
      const hash = hashOf(content);
      const other = hashSplit.get(hash);
      if (other !== undefined && other !== split) problem(`${where}: same content as a line of ${other}.jsonl`);
      if (other === split) problem(`${where}: duplicate content within ${split}.jsonl`);
      hashSplit.set(hash, split);
      if (spec.group) {
        const group = String(row[spec.group]);
        const g = groupSplit.get(group);
        if (g !== undefined && g !== split) problem(`${where}: ${spec.group} ${group} is in both ${g} and ${split}`);
        groupSplit.set(group, split);
      }
      if (name !== "spam") texts.push({ text: content, where });
    }
    if (n < spec.min[split]) problem(`${file}: only ${n} examples (expected >= ${spec.min[split]})`);
    counts[split] = count;
  }
  console.log(`${name}: ${JSON.stringify(counts)}`);
  return texts;
}

// Texts of which half or more of the word 8-grams occur in the corpus.
function checkAgainstCorpus(trainTxt, texts) {
  const gramOwners = new Map(); // gram -> [text index]
  const grams = texts.map((t, i) => {
    const w = words(t.text);
    const own = new Set();
    for (let k = 0; k + NGRAM <= w.length; k++) own.add(w.slice(k, k + NGRAM).join(" "));
    if (own.size === 0 && w.length > 0) own.add(w.join(" "));
    for (const g of own) {
      if (!gramOwners.has(g)) gramOwners.set(g, []);
      gramOwners.get(g).push(i);
    }
    return own.size;
  });
  const found = new Array(texts.length).fill(0);
  const seen = new Set();
  const corpus = words(fs.readFileSync(trainTxt, "utf8"));
  for (let k = 0; k + NGRAM <= corpus.length; k++) {
    const g = corpus.slice(k, k + NGRAM).join(" ");
    if (seen.has(g) || !gramOwners.has(g)) continue;
    seen.add(g);
    for (const i of gramOwners.get(g)) found[i]++;
  }
  let touched = 0;
  for (let i = 0; i < texts.length; i++) {
    if (found[i] > 0) touched++;
    if (grams[i] > 0 && found[i] * 2 >= grams[i]) {
      problem(`${texts[i].where}: occurs in ${trainTxt} (${found[i]}/${grams[i]} of its ${NGRAM}-grams)`);
    }
  }
  console.log(
    `pretraining corpus: ${corpus.length} words; ${texts.length} held-out texts checked, ` +
      `${touched} share at least one ${NGRAM}-gram with it (allowed: stock phrases), none may share half`,
  );
}

function main() {
  const [dataDir, trainTxt] = process.argv.slice(2);
  if (!dataDir) {
    console.error("usage: node tests/tasks/check_tasks.js DATA_DIR [TRAIN_TXT]");
    process.exit(2);
  }
  const texts = [];
  for (const [name, spec] of Object.entries(TASKS)) texts.push(...checkTask(dataDir, name, spec));
  if (trainTxt) {
    const heldout = path.join(path.dirname(trainTxt), "heldout.txt");
    const passage = path.join(__dirname, "..", "data", "pretrain", "heldout_passage.txt");
    for (const file of [heldout, passage]) {
      if (!fs.existsSync(file)) {
        problem(`${file}: missing`);
        continue;
      }
      fs.readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (words(line).length >= NGRAM) texts.push({ text: line, where: `${file}:${i + 1}` });
        });
    }
    checkAgainstCorpus(trainTxt, texts);
  }
  if (problems.length > 0) {
    for (const p of problems.slice(0, 50)) console.error(`check_tasks: ${p}`);
    if (problems.length > 50) console.error(`check_tasks: ... and ${problems.length - 50} more problems`);
    process.exit(1);
  }
  console.log("check_tasks: OK");
}

main();
