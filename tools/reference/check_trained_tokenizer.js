#!/usr/bin/env node
// Checks a tokenizer.json written by `promptsweep train-tokenizer` against an
// independent implementation: @lenml/tokenizers (transformers.js) must load it
// and encode every text to the same ids as `promptsweep tokenize`.
//
// Usage: node check_trained_tokenizer.js TOKENIZER_JSON TEXTS_JSONL PROMPTSWEEP [NPM_NODE_MODULES]
//   TEXTS_JSONL: one {"text": ...} per line (e.g. tests/data/tokenizer/gpt2_reference.jsonl)
//   NPM_NODE_MODULES defaults to .deps/npm/node_modules under the repository root.
// Exit code 0: all texts agree; 1: a mismatch (the first few are printed); 2: usage.
//
// promptsweep runs once for all texts: they are joined with the first special
// token, which both implementations match before pre-tokenization, so the ids
// split back into one list per text. Texts that contain a special token, or
// U+0085 / U+FEFF (where JavaScript's \s differs from Oniguruma's, see
// make_tokenizer_references.js), are left out.
"use strict";

const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const KNOWN_JS_DEVIATION = /[\u0085\uFEFF]/u;

function main() {
  const [tokenizerFile, textsFile, promptsweep, npmArg] = process.argv.slice(2);
  if (!tokenizerFile || !textsFile || !promptsweep) {
    console.error("usage: check_trained_tokenizer.js TOKENIZER_JSON TEXTS_JSONL PROMPTSWEEP [NPM_NODE_MODULES]");
    process.exit(2);
  }
  const npmDir = path.resolve(npmArg ?? path.join(__dirname, "..", "..", ".deps", "npm", "node_modules"));
  const { TokenizerLoader } = require(path.join(npmDir, "@lenml", "tokenizers"));

  const tokenizerJson = JSON.parse(fs.readFileSync(tokenizerFile, "utf8"));
  const specials = tokenizerJson.added_tokens.filter((token) => token.special);
  if (specials.length === 0) throw new Error(`${tokenizerFile}: no special token to separate the texts with`);
  const separator = specials[0];
  const js = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokenizerJson, tokenizerConfig: {} });

  const texts = fs
    .readFileSync(textsFile, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line).text)
    .filter((text) => !KNOWN_JS_DEVIATION.test(text) && !specials.some((token) => text.includes(token.content)));

  const output = execFileSync(promptsweep, ["tokenize", "--tokenizer", tokenizerFile, "--no-special"], {
    input: texts.join(separator.content),
    maxBuffer: 1 << 30,
  });
  const cppIds = JSON.parse(output.toString("utf8"));
  const perText = [[]];
  for (const id of cppIds) {
    if (id === separator.id) perText.push([]);
    else perText[perText.length - 1].push(id);
  }
  if (perText.length !== texts.length) {
    throw new Error(`promptsweep gave ${perText.length} texts between separators, expected ${texts.length}`);
  }

  let mismatches = 0;
  let tokens = 0;
  let bytes = 0;
  texts.forEach((text, i) => {
    const jsIds = js.encode(text, { add_special_tokens: false });
    tokens += jsIds.length;
    bytes += Buffer.byteLength(text);
    if (JSON.stringify(jsIds) === JSON.stringify(perText[i])) return;
    if (++mismatches <= 5) {
      console.log(`MISMATCH ${JSON.stringify(text)}\n  @lenml:      ${JSON.stringify(jsIds)}\n  promptsweep: ${JSON.stringify(perText[i])}`);
    }
  });
  console.log(
    `${texts.length - mismatches}/${texts.length} texts agree (${tokens} tokens, ${(bytes / tokens).toFixed(3)} bytes/token)`,
  );
  process.exit(mismatches === 0 ? 0 : 1);
}

main();
