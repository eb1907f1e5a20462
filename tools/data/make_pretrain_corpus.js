#!/usr/bin/env node
// Builds the plain-text pretraining corpus from the pinned npm sources:
//   OUT_DIR/train.txt    Brown (all documents except the genre task's and the
//                        perplexity hold-out), Moby Dick (except the lastword
//                        task's chapters), the most recent State of the Union
//                        addresses (~1.0M words), SpamAssassin TRAIN-split mail
//                        (cleaned, <= 2,000 characters each, <= 0.5M words)
//   OUT_DIR/heldout.txt  the 15 perplexity hold-out Brown documents (one per
//                        category), used nowhere else
//   OUT_DIR/heldout_passage.txt (and PASSAGE_OUT when given) a fixed ~600-word
//                        passage of the first hold-out document, for a
//                        regression perplexity test
//   OUT_DIR/composition.json  words and documents per source
// Plain UTF-8, one paragraph per line, documents separated by a blank line;
// train.txt's documents are in a seeded shuffled order. Deterministic.
//
// usage: node tools/data/make_pretrain_corpus.js NODE_MODULES_DIR OUT_DIR [PASSAGE_OUT]
"use strict";

const fs = require("fs");
const path = require("path");
const S = require("./sources.js");

const SOTU_WORDS = 1000000; // most recent addresses until this many words
const SPAM_WORDS = 500000; // cap of the spam-assassin part
const PASSAGE_WORDS = 600;
const LINE_WORDS = 120; // SOTU addresses have no paragraphs: lines of <= ~120 words

function brownDocs(npmDir) {
  const excluded = new Set([...S.genreHeldoutDocs(), ...S.PERPLEXITY_HELDOUT]);
  const all = S.loadBrown(npmDir);
  return {
    train: all.filter((d) => !excluded.has(d.id)),
    heldout: S.PERPLEXITY_HELDOUT.map((id) => all.find((d) => d.id === id)),
  };
}

// ~600 words from the start of a document, ending at a sentence end; one
// paragraph per line; headlines left out.
function fixedPassage(doc) {
  const lines = [];
  let n = 0;
  for (const paragraph of doc.paragraphs) {
    const kept = [];
    for (const sentence of paragraph) {
      if (sentence.headline) continue;
      if (n >= PASSAGE_WORDS) break;
      kept.push(sentence.text);
      n += sentence.words;
    }
    if (kept.length > 0) lines.push(kept.join(" "));
    if (n >= PASSAGE_WORDS) break;
  }
  return lines.join("\n") + "\n";
}

function main() {
  const [npmDir, outDir, passageOut] = process.argv.slice(2);
  if (!npmDir || !outDir) {
    console.error("usage: node tools/data/make_pretrain_corpus.js NODE_MODULES_DIR OUT_DIR [PASSAGE_OUT]");
    process.exit(2);
  }
  const documents = []; // {source, text}
  const composition = {};
  const add = (source, text) => {
    documents.push({ source, text });
    const c = (composition[source] ??= { documents: 0, words: 0 });
    c.documents++;
    c.words += S.wordCount(text);
  };

  // Brown.
  const brown = brownDocs(npmDir);
  for (const doc of brown.train) add("brown", S.brownDocumentText(doc));

  // Moby Dick without the held-out chapters.
  const heldoutChapters = new Set(S.mobyHeldoutChapters());
  for (const section of S.loadMobyDick(npmDir)) {
    if (section.chapter !== null && heldoutChapters.has(section.chapter)) continue;
    const heading = section.chapter !== null ? `CHAPTER ${section.chapter}. ${section.title}` : section.title;
    add("moby-dick", [heading, ...section.paragraphs].filter((l) => l.length > 0).join("\n"));
  }

  // State of the Union: newest first until ~1.0M words.
  let sotuWords = 0;
  for (const address of S.loadSotu(npmDir).reverse()) {
    if (sotuWords >= SOTU_WORDS) break;
    const text = [`State of the Union address, ${address.name}, ${address.year}.`]
      .concat(S.sentenceLines(address.text, LINE_WORDS))
      .join("\n");
    add("sotu", text);
    sotuWords += S.wordCount(text);
  }

  // SpamAssassin: train-split mail only (the task's dev/test mail never).
  let spamWords = 0;
  for (const e of S.spamExamples(npmDir).examples) {
    if (e.split !== "train") continue;
    const text = `Subject: ${e.subject}\n${S.truncateWords(e.body, S.SPAM_PRETRAIN_CHARS)}`;
    const n = S.wordCount(text);
    if (spamWords + n > SPAM_WORDS) break;
    add("spam-assassin", text);
    spamWords += n;
  }

  fs.mkdirSync(outDir, { recursive: true });
  const train = S.shuffled(documents, "pretrain-document-order").map((d) => d.text);
  fs.writeFileSync(path.join(outDir, "train.txt"), train.join("\n\n") + "\n");

  const heldout = brown.heldout.map((doc) => S.brownDocumentText(doc));
  fs.writeFileSync(path.join(outDir, "heldout.txt"), heldout.join("\n\n") + "\n");
  const heldoutWords = heldout.reduce((sum, t) => sum + S.wordCount(t), 0);

  const passage = fixedPassage(brown.heldout[0]);
  fs.writeFileSync(path.join(outDir, "heldout_passage.txt"), passage);
  if (passageOut) {
    fs.mkdirSync(path.dirname(passageOut), { recursive: true });
    fs.writeFileSync(passageOut, passage);
  }

  const total = Object.values(composition).reduce((sum, c) => sum + c.words, 0);
  const summary = {
    train: { ...composition, total: { documents: documents.length, words: total } },
    heldout: { documents: S.PERPLEXITY_HELDOUT, words: heldoutWords },
    heldout_passage: { document: brown.heldout[0].id, words: S.wordCount(passage) },
  };
  fs.writeFileSync(path.join(outDir, "composition.json"), JSON.stringify(summary, null, 2) + "\n");
  for (const [source, c] of Object.entries(summary.train)) {
    console.log(`train ${source}: ${c.words} words, ${c.documents} documents`);
  }
  console.log(`heldout: ${heldoutWords} words, ${S.PERPLEXITY_HELDOUT.length} Brown documents`);
  console.log(`heldout_passage: ${summary.heldout_passage.words} words from ${brown.heldout[0].id}`);
}

main();
