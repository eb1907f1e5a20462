// In-page checker for a `promptsweep report` HTML file. tests/report/browser_check.sh
// injects it as the first script in <head> of a copy of the report, so it sees
// every error the page raises:
//   - records window errors, unhandled rejections and console.error calls;
//   - waits for window.promptsweepReportReady (set once every plot is drawn), then
//     a short settle;
//   - per <section>: the plots drawn (a .js-plotly-plot with a .main-svg and data)
//     against the section's data-expected-plots, which must also match what the
//     data blob calls for (recomputed here from the schema's rules, independently
//     of the page's code);
//   - clicks results-table headers and checks the row order (numbers numerically,
//     missing values last, both directions);
//   - exercises the status filter, the top-k selector and the text filter;
//   - switches the learning-curve controls (colour by each choice, best 100 / all) and
//     checks the curves redraw without errors, "all" drawing more than the default;
//   - writes the verdict as one line of ASCII JSON into <pre id="report-check">:
//     {"errors": [...], "sections": {id: {"expected": n, "drawn": n}}, "sort": "ok"|msg,
//      "filter": "ok"|msg, "controls": "ok"|msg, "ok": bool, "ready_ms_page": ms, "page_height": px, "jobs": n,
//      "notes": [...]}
// Console lines starting "PSCHECK" mark its start, the moment the page's sections
// are built (tables usable) and the ready moment, for the script's real-time
// measurement (under --virtual-time-budget the page's own clocks stand still
// while it computes).
(function () {
  'use strict';
  const errors = [];
  const notes = [];
  const text = x => {
    if (x instanceof Error) return x.stack || x.message || String(x);
    if (typeof x === 'object') { try { return JSON.stringify(x); } catch (e) { return String(x); } }
    return String(x);
  };
  window.addEventListener('error', e => {
    if (e.error || e.message) errors.push('uncaught: ' + (e.message || '') + (e.filename ? ` (${e.filename.split('/').pop()}:${e.lineno})` : ''));
    else if (e.target && e.target !== window) errors.push('resource failed to load: ' + (e.target.src || e.target.href || e.target.tagName));
  }, true);
  window.addEventListener('unhandledrejection', e => errors.push('unhandled rejection: ' + text(e.reason)));
  const consoleError = console.error.bind(console);
  console.error = function (...args) {
    errors.push('console.error: ' + args.map(text).join(' ').slice(0, 500));
    consoleError(...args);
  };
  console.log('PSCHECK start ' + performance.now().toFixed(1));

  // Whether this browser offers WebGL at all (the probe's context is released at once).
  const webgl = (() => {
    try {
      const gl = document.createElement('canvas').getContext('webgl');
      if (!gl) return false;
      const lose = gl.getExtension('WEBGL_lose_context');
      if (lose) lose.loseContext();
      return true;
    } catch (e) { return false; }
  })();
  const WAIT_MS = 100000;   // virtual time under --virtual-time-budget
  const SETTLE_MS = 300;
  let started = false;
  function begin() {
    if (started) return;
    started = true;
    console.log('PSCHECK ready ' + performance.now().toFixed(1));
    const readyMs = performance.now();
    setTimeout(() => finish(readyMs), SETTLE_MS);
  }
  window.addEventListener('promptsweep-report-ready', begin);
  window.addEventListener('promptsweep-report-built', () => console.log('PSCHECK built'));
  const t0 = Date.now();
  (function poll() {
    if (window.promptsweepReportReady) return begin();
    if (Date.now() - t0 > WAIT_MS) {
      errors.push(`the page never set window.promptsweepReportReady (waited ${WAIT_MS} ms)`);
      return finish(null);
    }
    setTimeout(poll, 50);
  })();

  async function finish(readyMs) {
    const verdict = { errors, sections: {}, sort: 'not run', filter: 'not run', controls: 'not run', ok: false,
                      ready_ms_page: readyMs === null ? null : Math.round(readyMs), page_height: 0, jobs: null, notes };
    let data = null;
    try {
      data = JSON.parse(document.getElementById('report-data').textContent);
    } catch (e) {
      errors.push('cannot parse #report-data: ' + e.message);
    }
    if (data) {
      verdict.jobs = (data.jobs && data.jobs.id || []).length;
      guard('sections', () => checkSections(data, verdict));
      verdict.sort = guard('sort', () => checkSort(data));
      verdict.filter = guard('filter', () => checkFilter(data));
      try { verdict.controls = await checkControls(); } catch (e) { verdict.controls = 'controls check threw: ' + (e && e.message || e); }
    }
    verdict.page_height = Math.ceil(document.documentElement.scrollHeight);
    const sectionsOk = Object.values(verdict.sections).every(s => s.drawn === s.expected && s.expected === s.wanted);
    verdict.ok = errors.length === 0 && sectionsOk && Object.keys(verdict.sections).length > 0 &&
                 verdict.sort === 'ok' && verdict.filter === 'ok' && verdict.controls === 'ok';
    // One ASCII line: no HTML entities in the dumped DOM, so a shell can cut it out verbatim.
    const json = JSON.stringify(verdict).replace(/[^\x20-\x7e]|[<>&]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    const pre = document.createElement('pre');
    pre.id = 'report-check';
    pre.textContent = json;
    document.body.append(pre);
    console.log('PSCHECK done ok=' + verdict.ok);
  }
  function guard(what, fn) {
    try { return fn(); } catch (e) { return `${what} check threw: ${e && e.message || e}`; }
  }

  // ------------------------------------------------------------ plots per section
  const isNum = v => typeof v === 'number' && isFinite(v);
  // The plots the data calls for, by the report's rules (one bar chart when a setting
  // has a mean; a scatter per parameter with points; a heatmap per pair with a value;
  // one parcoords when a job has a primary value and every parameter, and there are two
  // axes (parameters, the seed when it varies, the metric); one importance
  // chart when there are items; a train and a dev plot when any curve has them; one
  // timeline when there are attempts).
  function wantedPlots(d) {
    const jobs = d.jobs || {}, n = (jobs.id || []).length, params = d.parameters || [];
    const prim = jobs[d.primary && d.primary.key] || [];
    const pcol = p => (jobs.params && jobs.params[p]) || [];
    const has = v => v !== null && v !== undefined;
    const withPrim = [];
    for (let j = 0; j < n; j++) if (isNum(prim[j])) withPrim.push(j);
    const curves = ((d.curves && d.curves.jobs) || []).filter(c => c && isNum(c.job) && c.job >= 0 && c.job < n);
    // Parcoords needs two axes: the parameters, the seed when it varies, the metric.
    function parallelWanted() {
      const usable = withPrim.filter(j => params.every((p, i) => has(pcol(i)[j])));
      const seeds = new Set(usable.map(j => (jobs.seed || [])[j]).filter(isNum));
      return usable.length > 0 && params.length + (seeds.size > 1 ? 1 : 0) + 1 >= 2 ? 1 : 0;
    }
    return {
      summary: 0,
      results: 0,
      settings: (d.groups || []).some(g => isNum(g.mean)) ? 1 : 0,
      parameters: params.filter((p, i) => withPrim.some(j => has(pcol(i)[j]))).length +
        (d.heatmaps || []).filter(h => params[h.x] && params[h.y] && (h.z || []).some(r => (r || []).some(isNum))).length,
      parallel: parallelWanted(),
      importance: ((d.importance && d.importance.items) || []).some(it => it && isNum(it.share)) ? 1 : 0,
      curves: (curves.some(c => (c.train_step || []).length) ? 1 : 0) + (curves.some(c => (c.dev_step || []).length) ? 1 : 0),
      timeline: ((d.timeline && d.timeline.attempts) || []).some(a => a && isNum(a.start)) ? 1 : 0,
    };
  }
  function checkSections(d, verdict) {
    const wanted = wantedPlots(d);
    let glMissing = false;
    for (const id of Object.keys(wanted)) {
      if (!document.getElementById(id)) errors.push(`section #${id} is missing`);
    }
    for (const sec of document.querySelectorAll('main section[id]')) {
      const attr = sec.getAttribute('data-expected-plots');
      const expected = attr === null ? NaN : Number(attr);
      let drawn = 0;
      for (const div of sec.querySelectorAll('.js-plotly-plot')) {
        const svg = div.querySelector('.main-svg');
        const traces = div._fullData || [];
        if (!svg || traces.length === 0) continue;
        // WebGL traces draw into canvases: none without WebGL (Plotly then shows .no-webgl).
        const gl = traces.some(t => /gl$|parcoords/.test(t.type));
        if (gl) {
          if (!webgl) { glMissing = true; continue; }
          if (div.querySelector('.no-webgl')) continue;
          if (!Array.from(div.querySelectorAll('canvas')).some(c => c.width > 0 && c.height > 0)) continue;
        }
        drawn++;
      }
      const want = id => (wanted[id] === undefined ? expected : wanted[id]);
      verdict.sections[sec.id] = { expected, drawn, wanted: want(sec.id) };
      if (!(expected >= 0)) errors.push(`section #${sec.id} has no valid data-expected-plots`);
      else if (drawn !== expected) errors.push(`section #${sec.id}: ${drawn} of ${expected} plots drawn`);
      if (expected !== want(sec.id)) errors.push(`section #${sec.id}: the page expects ${expected} plots, the data calls for ${want(sec.id)}`);
    }
    if (glMissing) errors.push('WebGL is unavailable, so WebGL plots (parcoords, scattergl) cannot draw: run Chromium with --use-angle=swiftshader --enable-unsafe-swiftshader');
  }

  // ------------------------------------------------------------ results table
  function resultsTable() { return document.querySelector('#results table[data-table="results"]'); }
  function rowJobs(table) { return Array.from(table.querySelectorAll('tbody tr[data-row]')).map(tr => Number(tr.dataset.row)); }
  // A column's value for job j, read from the blob by the header's data-key.
  function valueOf(d, key, j) {
    if (key.startsWith('param:')) return d.jobs.params[Number(key.slice(6))][j];
    return d.jobs[key] ? d.jobs[key][j] : undefined;
  }
  function cmp(a, b) {
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    if (typeof a === 'number') return -1;
    if (typeof b === 'number') return 1;
    return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
  }
  const missing = v => v === null || v === undefined || v === '';
  // Whether rows are ordered by key in dir (missing values last); null or a problem.
  function orderProblem(d, key, rows, desc) {
    let seenMissing = false;
    for (let i = 0; i < rows.length; i++) {
      const v = valueOf(d, key, rows[i]);
      if (missing(v)) { seenMissing = true; continue; }
      if (seenMissing) return `row ${i} of '${key}' has a value after a missing one`;
      if (i > 0 && !missing(valueOf(d, key, rows[i - 1]))) {
        const c = cmp(valueOf(d, key, rows[i - 1]), v);
        if (desc ? c < 0 : c > 0) return `rows ${i - 1} and ${i} of '${key}' out of ${desc ? 'descending' : 'ascending'} order`;
      }
    }
    return null;
  }
  function checkSort(d) {
    const table = resultsTable();
    if (!table) return 'no results table (#results table[data-table="results"])';
    const n = d.jobs.id.length;
    if (n === 0) { notes.push('sort: no jobs, headers clicked only'); }
    // The primary metric, a string, a parameter and a column with missing values.
    const keys = [d.primary && d.primary.key, 'id', 'param:0', 'stopped_at_step'].filter(k => table.querySelector(`th[data-key="${k}"]`));
    if (keys.length === 0) return 'no sortable header found';
    for (const key of keys) {
      const th = table.querySelector(`th[data-key='${key}']`);
      const seen = new Set();
      for (let click = 0; click < 2; click++) {
        th.click();
        const dir = th.getAttribute('aria-sort');
        if (dir !== 'ascending' && dir !== 'descending') return `header '${key}' shows aria-sort '${dir}' after a click`;
        const arrow = th.textContent.includes(dir === 'ascending' ? '▲' : '▼');
        if (!arrow) return `header '${key}' shows no ${dir} arrow`;
        seen.add(dir);
        const rows = rowJobs(table);
        if (Number(table.dataset.matching) !== n) return `sorting by '${key}' changed the row count (${table.dataset.matching} of ${n})`;
        if (rows.length !== Math.min(n, Number(table.dataset.rendered))) return 'rendered row count disagrees with data-rendered';
        const problem = orderProblem(d, key, rows, dir === 'descending');
        if (problem) return problem;
        // The first row must be the extreme of all jobs, not just of the rendered page.
        const vals = d.jobs.id.map((_, j) => valueOf(d, key, j)).filter(v => !missing(v));
        if (vals.length && rows.length) {
          const extreme = vals.reduce((a, b) => ((dir === 'descending' ? cmp(b, a) > 0 : cmp(b, a) < 0) ? b : a));
          if (cmp(valueOf(d, key, rows[0]), extreme) !== 0) return `sorted by '${key}' ${dir}, the first row is not the ${dir === 'descending' ? 'largest' : 'smallest'} value`;
        }
      }
      if (seen.size !== 2) return `two clicks on '${key}' did not toggle the direction`;
    }
    return 'ok';
  }

  function fire(elm, type) { elm.dispatchEvent(new Event(type, { bubbles: true })); }
  function checkFilter(d) {
    const table = resultsTable();
    if (!table) return 'no results table';
    const n = d.jobs.id.length, status = d.jobs.status;
    const boxes = Array.from(document.querySelectorAll('#results input[type=checkbox][data-status]'));
    const topk = document.querySelector('#results select[data-control="topk"]');
    const search = document.querySelector('#results input[data-control="text"]');
    if (!topk || !search) return 'missing filter controls (select[data-control=topk], input[data-control=text])';
    const statuses = [...new Set(status)];
    if (boxes.length !== statuses.length) return `${boxes.length} status checkboxes for ${statuses.length} statuses`;
    if (n === 0) { notes.push('filter: no jobs, controls present only'); return 'ok'; }

    // Status: keep only the most common status.
    const count = s => status.filter(x => x === s).length;
    const keep = statuses.slice().sort((a, b) => count(b) - count(a))[0];
    for (const b of boxes) if (b.dataset.status !== keep) b.click();
    let rows = rowJobs(table);
    if (Number(table.dataset.matching) !== count(keep)) return `status filter '${keep}': ${table.dataset.matching} rows match, want ${count(keep)}`;
    if (rows.some(j => status[j] !== keep)) return `status filter '${keep}' shows other statuses`;
    for (const b of boxes) if (!b.checked) b.click();
    if (Number(table.dataset.matching) !== n) return `status filter reset: ${table.dataset.matching} rows, want ${n}`;

    // Top k by the primary metric (respecting maximize).
    const prim = d.jobs[d.primary.key] || [];
    const max = d.sweep.maximize !== false;
    const withPrim = prim.map((v, j) => j).filter(j => isNum(prim[j]));
    topk.value = '10';
    fire(topk, 'change');
    rows = rowJobs(table);
    const k = Math.min(10, withPrim.length);
    if (Number(table.dataset.matching) !== k) return `top 10: ${table.dataset.matching} rows, want ${k}`;
    if (rows.some(j => !isNum(prim[j]))) return 'top 10 shows a job without a primary value';
    const worstShown = rows.reduce((w, j) => (max ? Math.min(w, prim[j]) : Math.max(w, prim[j])), max ? Infinity : -Infinity);
    const shown = new Set(rows);
    if (withPrim.some(j => !shown.has(j) && (max ? prim[j] > worstShown : prim[j] < worstShown))) return 'top 10 leaves out a better job';
    topk.value = 'all';
    fire(topk, 'change');
    if (Number(table.dataset.matching) !== n) return `top k reset: ${table.dataset.matching} rows, want ${n}`;

    // Free text: a job's id finds it, and every row shown holds the text.
    const id = d.jobs.id[n - 1];
    search.value = String(id).toUpperCase();
    fire(search, 'input');
    rows = rowJobs(table);
    if (!rows.includes(n - 1)) return `text filter '${id}' does not show job ${n - 1}`;
    const q = String(id).toLowerCase();
    const trs = Array.from(table.querySelectorAll('tbody tr'));
    if (trs.some(tr => !tr.textContent.toLowerCase().includes(q))) return `text filter '${id}' shows a row without it`;
    search.value = 'no-such-text-' + Math.random().toString(36).slice(2);
    fire(search, 'input');
    if (Number(table.dataset.matching) !== 0) return 'text filter with a missing text still shows rows';
    search.value = '';
    fire(search, 'input');
    if (Number(table.dataset.matching) !== n) return `text filter reset: ${table.dataset.matching} rows, want ${n}`;
    return 'ok';
  }

  // ------------------------------------------------------------ curve controls
  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
  const points = div => (div && div._fullData || []).reduce((n, t) => n + (t.x ? t.x.filter(x => x !== null).length : 0), 0);
  async function checkControls() {
    const color = document.querySelector('#curves select[data-control="curve-color"]');
    if (!color) return 'ok';   // no curves, no controls
    const count = document.querySelector('#curves select[data-control="curve-count"]');
    const before = errors.length;
    const plots = Array.from(document.querySelectorAll('#curves .js-plotly-plot'));
    const choices = Array.from(color.options).map(o => o.value);
    for (const v of choices.concat(choices[0])) {
      color.value = v;
      fire(color, 'change');
      await sleep(50);
    }
    if (count && count.options.length > 1) {
      const base = points(plots[0]);
      count.value = 'all';
      fire(count, 'change');
      await sleep(200);
      if (!(points(plots[0]) > base)) return `showing all curves did not draw more points (${points(plots[0])} vs ${base})`;
      count.value = count.options[0].value;
      fire(count, 'change');
    }
    await sleep(300);
    if (errors.length > before) return 'switching the curve controls raised: ' + errors[before];
    if (plots.some(d => !(d._fullData || []).length)) return 'a learning-curve plot lost its traces';
    return 'ok';
  }
})();
