// Aion web UI. Plain DOM code, no build step. Every piece of data from the server is
// inserted with textContent (through el()), never as HTML.
'use strict';
(function () {
  // ---------- DOM helpers ----------
  function el(tag, attrs) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = String(v);
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function append(parent, ...cs) {
    for (const c of cs) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) { c.forEach(x => append(parent, x)); continue; }
      parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  // Only http(s) URLs become links; anything else is shown as text.
  function safeLink(url, text) {
    if (typeof url === 'string' && /^https?:\/\//i.test(url)) {
      return el('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, text || url);
    }
    return el('span', null, text || url || '');
  }
  function errorBox(msg) { return el('div', { class: 'alert error', role: 'alert' }, msg); }
  function warnBox(msg) { return el('div', { class: 'alert warn' }, msg); }
  function infoBox(msg) { return el('div', { class: 'alert info' }, msg); }

  // ---------- API ----------
  class ApiError extends Error {
    constructor(msg, type, warnings) { super(msg); this.errorType = type; this.warnings = warnings || []; }
  }
  async function api(path, params, post) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== '') body.set(k, v);
    }
    let resp;
    if (post) {
      resp = await fetch(path, { method: 'POST', body, headers: { Accept: 'application/json' } });
    } else {
      const qs = body.toString();
      resp = await fetch(qs ? path + '?' + qs : path, { headers: { Accept: 'application/json' } });
    }
    let json;
    try { json = await resp.json(); } catch (e) { throw new ApiError('HTTP ' + resp.status + ' ' + resp.statusText, 'http'); }
    if (json.status !== 'success') {
      throw new ApiError(json.error || ('HTTP ' + resp.status), json.errorType, json.warnings);
    }
    return json;
  }

  // ---------- formatting ----------
  function fmtValue(v) {
    if (v === null || v === undefined) return '';
    const n = Number(v);
    if (typeof v === 'string' && !isFinite(n)) return v;
    return String(v);
  }
  function fmtNum(n) {
    if (n === null || n === undefined) return '-';
    if (!isFinite(n)) return String(n);
    if (n !== 0 && (Math.abs(n) >= 1e15 || Math.abs(n) < 1e-4)) return n.toExponential(4);
    return String(Math.round(n * 1e6) / 1e6);
  }
  function fmtTime(ms) {
    if (!isFinite(ms)) return '-';
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }
  function fmtAgo(iso) {
    const t = Date.parse(iso);
    if (!iso || !isFinite(t) || t <= 0) return 'never';
    const s = (Date.now() - t) / 1000;
    return fmtDuration(Math.max(0, s)) + ' ago';
  }
  function fmtDuration(s) {
    if (!isFinite(s)) return '-';
    if (s < 1) return Math.round(s * 1000 * 100) / 100 + 'ms';
    if (s < 60) return Math.round(s * 1000) / 1000 + 's';
    const parts = [];
    let r = Math.floor(s);
    for (const [u, d] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
      if (r >= d) { parts.push(Math.floor(r / d) + u); r %= d; }
    }
    return parts.join('');
  }
  // Prometheus duration syntax: 1h30m, 5m, 2d, 500ms.
  function parseDuration(s) {
    if (!s) return null;
    const re = /(\d+)(ms|s|m|h|d|w|y)/g;
    const mult = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000, y: 31536000000 };
    let total = 0, pos = 0, m;
    s = s.trim();
    while ((m = re.exec(s)) !== null) {
      if (m.index !== pos) return null;
      total += Number(m[1]) * mult[m[2]];
      pos = re.lastIndex;
    }
    return pos === s.length && total > 0 ? total : null;
  }
  function formatDuration(ms) {
    const units = [['y', 31536000000], ['w', 604800000], ['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000], ['ms', 1]];
    if (ms <= 0) return '0s';
    let out = '';
    for (const [u, d] of units) { if (ms >= d) { out += Math.floor(ms / d) + u; ms %= d; } }
    return out;
  }
  // Accepts RFC 3339, "YYYY-MM-DD HH:MM[:SS]" (UTC) or a Unix timestamp in seconds.
  function parseTime(s) {
    if (!s || !s.trim()) return null;
    s = s.trim();
    if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
    let t = Date.parse(s);
    if (!isFinite(t)) t = Date.parse(s.replace(' ', 'T') + (/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? '' : 'Z'));
    return isFinite(t) ? t : null;
  }
  function metricNode(metric) {
    const name = metric.__name__;
    const keys = Object.keys(metric).filter(k => k !== '__name__').sort();
    const span = el('span', { class: 'metric' });
    if (name !== undefined) span.appendChild(el('span', { class: 'name' }, name));
    if (keys.length || name === undefined) {
      span.appendChild(document.createTextNode('{'));
      keys.forEach((k, i) => {
        if (i) span.appendChild(document.createTextNode(', '));
        span.appendChild(el('span', { class: 'lname' }, k));
        span.appendChild(document.createTextNode('='));
        span.appendChild(el('span', { class: 'lval' }, JSON.stringify(metric[k])));
      });
      span.appendChild(document.createTextNode('}'));
    }
    return span;
  }
  function metricText(metric) {
    const name = metric.__name__ || '';
    const keys = Object.keys(metric).filter(k => k !== '__name__').sort();
    if (!keys.length) return name || '{}';
    return name + '{' + keys.map(k => k + '=' + JSON.stringify(metric[k])).join(', ') + '}';
  }
  function labelBadges(labels) {
    const d = el('div', { class: 'labels' });
    for (const k of Object.keys(labels || {}).sort()) {
      d.appendChild(el('span', { class: 'badge' }, k + '="' + labels[k] + '"'));
    }
    return d;
  }
  function kvTable(obj) {
    const t = el('table', { class: 'data kv' });
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      t.appendChild(el('tr', null, el('th', null, k), el('td', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))));
    }
    return t;
  }

  // ---------- query page ----------
  const FUNCTIONS = ['abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh',
    'avg_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'count_over_time',
    'day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'deg', 'delta', 'deriv', 'exp', 'floor',
    'histogram_avg', 'histogram_count', 'histogram_fraction', 'histogram_quantile', 'histogram_stddev',
    'histogram_stdvar', 'histogram_sum', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace',
    'last_over_time', 'ln', 'log10', 'log2', 'mad_over_time', 'max_over_time', 'min_over_time', 'minute', 'month',
    'predict_linear', 'present_over_time', 'quantile_over_time', 'rad', 'rate', 'resets', 'round', 'scalar', 'sgn',
    'sin', 'sinh', 'sort', 'sort_by_label', 'sort_by_label_desc', 'sort_desc', 'sqrt', 'stddev_over_time',
    'stdvar_over_time', 'sum_over_time', 'tan', 'tanh', 'time', 'timestamp', 'vector', 'year'];
  const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values',
    'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio'];
  const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless'];
  const RANGE_STEPS = [60e3, 300e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3, 172800e3, 604800e3, 1209600e3, 2419200e3, 7862400e3, 31536000e3];
  const HISTORY_KEY = 'aion.queryHistory';

  const cache = { metrics: null, labels: null, values: {} };
  async function cached(key, sub, fetcher) {
    if (sub === undefined) {
      if (cache[key] === null) cache[key] = fetcher().catch(() => []);
      return cache[key];
    }
    if (!cache[key][sub]) cache[key][sub] = fetcher().catch(() => []);
    return cache[key][sub];
  }
  const metricNames = () => cached('metrics', undefined, () => api('/api/v1/label/__name__/values').then(r => r.data || []));
  const labelNames = () => cached('labels', undefined, () => api('/api/v1/labels').then(r => r.data || []));
  const labelValues = name => cached('values', name, () => api('/api/v1/label/' + encodeURIComponent(name) + '/values').then(r => r.data || []));

  function loadHistory() {
    try { const h = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]'); return Array.isArray(h) ? h.filter(x => typeof x === 'string') : []; } catch (e) { return []; }
  }
  function pushHistory(expr) {
    try {
      const h = loadHistory().filter(x => x !== expr);
      h.unshift(expr);
      localStorage.setItem(HISTORY_KEY, JSON.stringify(h.slice(0, 50)));
    } catch (e) { /* storage unavailable */ }
  }

  // What to complete at the cursor: label values inside `{name="…`, label names inside `{…`
  // or `by (…`, otherwise metric names, functions and keywords.
  function completionContext(text) {
    const valueM = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(text);
    if (valueM && insideBraces(text)) return { kind: 'value', label: valueM[1], prefix: valueM[3] };
    const wordM = /([a-zA-Z_:][a-zA-Z0-9_:]*)$/.exec(text);
    const prefix = wordM ? wordM[1] : '';
    const before = text.slice(0, text.length - prefix.length);
    if (insideBraces(text) || /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*,)?\s*$/.test(before)) {
      return { kind: 'label', prefix };
    }
    if (/[\[\d]$/.test(before) || /\[[^\]]*$/.test(before)) return null;
    return { kind: 'metric', prefix };
  }
  function insideBraces(text) {
    let depth = 0, inStr = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inStr) { if (c === '\\') i++; else if (c === '"') inStr = false; continue; }
      if (c === '"') inStr = true; else if (c === '{') depth++; else if (c === '}') depth = Math.max(0, depth - 1);
    }
    return depth > 0;
  }
  async function suggestions(ctx) {
    const p = ctx.prefix.toLowerCase();
    const pick = (list, kind) => list.filter(x => x.toLowerCase().startsWith(p) && x !== ctx.prefix).map(x => ({ text: x, kind }));
    if (ctx.kind === 'value') {
      return (await labelValues(ctx.label)).filter(v => v.startsWith(ctx.prefix) && v !== ctx.prefix).map(v => ({ text: v, kind: 'value' }));
    }
    if (ctx.kind === 'label') return pick(await labelNames(), 'label');
    if (!p) return [];
    return pick(await metricNames(), 'metric')
      .concat(pick(FUNCTIONS, 'function'), pick(AGGREGATIONS, 'aggregation'), pick(KEYWORDS, 'keyword'));
  }

  function queryPage(root) {
    const q = new URLSearchParams(location.search);
    const get = (k, d) => (q.has('g0.' + k) ? q.get('g0.' + k) : d);
    const tabParam = get('tab', 'table');
    const state = {
      expr: get('expr', ''),
      tab: (tabParam === '0' || tabParam === 'graph') ? 'graph' : 'table',
      range: get('range_input', '1h'),
      end: get('end_input', ''),
      moment: get('moment_input', ''),
      step: get('step_input', ''),
      stacked: get('stacked', '0') === '1' || get('display_mode', 'lines') === 'stacked',
    };
    if (parseDuration(state.range) === null) state.range = '1h';

    const expr = el('textarea', { class: 'expr', id: 'expr', rows: 1, spellcheck: 'false', placeholder: 'Expression (press Enter to execute, Shift+Enter for a new line)', 'aria-label': 'Expression' });
    expr.value = state.expr;
    const ac = el('ul', { class: 'ac hidden', id: 'autocomplete' });
    const execBtn = el('button', { class: 'primary', id: 'execute', type: 'button' }, 'Execute');
    const histSel = el('select', { id: 'history', 'aria-label': 'Query history' });
    function fillHistory() {
      clear(histSel);
      histSel.appendChild(el('option', { value: '' }, 'History'));
      for (const h of loadHistory()) histSel.appendChild(el('option', { value: h }, h.length > 80 ? h.slice(0, 77) + '…' : h));
    }
    fillHistory();
    histSel.addEventListener('change', () => { if (histSel.value) { expr.value = histSel.value; histSel.value = ''; expr.focus(); } });

    const tabTable = el('button', { class: 'tab', type: 'button', id: 'tab-table' }, 'Table');
    const tabGraph = el('button', { class: 'tab', type: 'button', id: 'tab-graph' }, 'Graph');
    const momentIn = el('input', { type: 'text', id: 'moment', placeholder: 'Evaluation time (now)', size: 24 });
    momentIn.value = state.moment;
    const rangeIn = el('input', { type: 'text', id: 'range', size: 6, 'aria-label': 'Range' });
    rangeIn.value = state.range;
    const endIn = el('input', { type: 'text', id: 'end', placeholder: 'End time (now)', size: 24 });
    endIn.value = state.end;
    const stepIn = el('input', { type: 'text', id: 'step', placeholder: 'Step (auto)', size: 9 });
    stepIn.value = state.step;
    const modeSel = el('select', { id: 'display-mode', 'aria-label': 'Display mode' },
      el('option', { value: 'lines' }, 'Lines'), el('option', { value: 'stacked' }, 'Stacked'));
    modeSel.value = state.stacked ? 'stacked' : 'lines';
    const rangeStep = dir => {
      const cur = parseDuration(rangeIn.value) || 3600e3;
      let next = cur;
      if (dir < 0) { for (const r of RANGE_STEPS) if (r < cur) next = r; } else { next = RANGE_STEPS.find(r => r > cur) || cur; }
      rangeIn.value = formatDuration(next);
      run();
    };
    const tableCtl = el('div', { class: 'row', id: 'table-controls' }, el('label', null, 'Evaluation time '), momentIn);
    const graphCtl = el('div', { class: 'row', id: 'graph-controls' },
      el('button', { type: 'button', title: 'Shorter range', onclick: () => rangeStep(-1) }, '−'), rangeIn,
      el('button', { type: 'button', title: 'Longer range', onclick: () => rangeStep(1) }, '+'),
      endIn, el('button', { type: 'button', onclick: () => { endIn.value = ''; run(); } }, 'Now'),
      stepIn, modeSel);
    const messages = el('div', { id: 'messages' });
    const output = el('div', { id: 'output' });
    const stats = el('div', { class: 'stats', id: 'stats' });

    append(root, el('div', { class: 'panel' },
      el('div', { class: 'row' }, el('div', { class: 'exprwrap' }, expr, ac), execBtn, histSel),
      el('div', { class: 'row', style: null }, tabTable, tabGraph),
      el('div', { class: 'panel' }, tableCtl, graphCtl, messages, output, stats)));

    let plot = null;
    function setTab(t) {
      state.tab = t;
      tabTable.classList.toggle('active', t === 'table');
      tabGraph.classList.toggle('active', t === 'graph');
      tableCtl.classList.toggle('hidden', t !== 'table');
      graphCtl.classList.toggle('hidden', t !== 'graph');
    }
    tabTable.addEventListener('click', () => { setTab('table'); run(); });
    tabGraph.addEventListener('click', () => { setTab('graph'); run(); });
    modeSel.addEventListener('change', () => run());
    for (const i of [rangeIn, endIn, stepIn, momentIn]) i.addEventListener('keydown', e => { if (e.key === 'Enter') run(); });
    execBtn.addEventListener('click', () => run());
    setTab(state.tab);

    // Autocomplete.
    let acItems = [], acSel = -1, acSeq = 0;
    function closeAc() { ac.classList.add('hidden'); acItems = []; acSel = -1; }
    async function updateAc() {
      const seq = ++acSeq;
      const before = expr.value.slice(0, expr.selectionStart);
      const ctx = completionContext(before);
      if (!ctx) { closeAc(); return; }
      const list = (await suggestions(ctx)).slice(0, 50);
      if (seq !== acSeq) return;
      if (!list.length) { closeAc(); return; }
      acItems = list.map(s => Object.assign({ replace: ctx.prefix.length }, s));
      acSel = -1;
      clear(ac);
      acItems.forEach((s, i) => {
        ac.appendChild(el('li', { 'data-i': i, onmousedown: e => { e.preventDefault(); accept(i); } },
          el('span', { class: 'mono' }, s.text), el('span', { class: 'kind' }, s.kind)));
      });
      ac.classList.remove('hidden');
    }
    function highlight() {
      Array.from(ac.children).forEach((li, i) => li.classList.toggle('sel', i === acSel));
      const li = ac.children[acSel];
      if (li) li.scrollIntoView({ block: 'nearest' });
    }
    function accept(i) {
      const s = acItems[i];
      if (!s) return;
      const pos = expr.selectionStart;
      let text = s.text;
      if (s.kind === 'value') text = text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      if (s.kind === 'function' || s.kind === 'aggregation') text += '(';
      expr.value = expr.value.slice(0, pos - s.replace) + text + expr.value.slice(pos);
      const np = pos - s.replace + text.length;
      expr.setSelectionRange(np, np);
      closeAc();
      expr.focus();
    }
    expr.addEventListener('input', () => { updateAc(); autosize(); });
    expr.addEventListener('blur', () => setTimeout(closeAc, 100));
    expr.addEventListener('keydown', e => {
      const open = !ac.classList.contains('hidden') && acItems.length;
      if (open && e.key === 'ArrowDown') { e.preventDefault(); acSel = (acSel + 1) % acItems.length; highlight(); return; }
      if (open && e.key === 'ArrowUp') { e.preventDefault(); acSel = (acSel - 1 + acItems.length) % acItems.length; highlight(); return; }
      if (open && (e.key === 'Tab' || (e.key === 'Enter' && acSel >= 0))) { e.preventDefault(); accept(acSel < 0 ? 0 : acSel); return; }
      if (e.key === 'Escape') { closeAc(); return; }
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); closeAc(); run(); }
    });
    function autosize() { expr.style.height = 'auto'; expr.style.height = Math.min(expr.scrollHeight + 2, 300) + 'px'; }

    function updateUrl() {
      const p = new URLSearchParams();
      p.set('g0.expr', expr.value);
      p.set('g0.tab', state.tab);
      if (state.tab === 'graph') {
        p.set('g0.range_input', rangeIn.value);
        if (endIn.value) p.set('g0.end_input', endIn.value);
        if (stepIn.value) p.set('g0.step_input', stepIn.value);
        p.set('g0.display_mode', modeSel.value);
      } else if (momentIn.value) {
        p.set('g0.moment_input', momentIn.value);
      }
      history.replaceState(null, '', location.pathname + '?' + p.toString());
    }

    let runSeq = 0;
    async function run() {
      const text = expr.value.trim();
      const seq = ++runSeq;
      clear(messages); clear(stats);
      if (!text) { clear(output); return; }
      updateUrl();
      pushHistory(text); fillHistory();
      const started = performance.now();
      try {
        let res;
        if (state.tab === 'table') {
          let time = null;
          if (momentIn.value) {
            time = parseTime(momentIn.value);
            if (time === null) throw new ApiError('cannot parse evaluation time "' + momentIn.value + '"', 'ui');
          }
          res = await api('/api/v1/query', { query: text, time: time === null ? null : time / 1000 }, true);
          if (seq !== runSeq) return;
          renderTable(res.data);
        } else {
          const range = parseDuration(rangeIn.value);
          if (range === null) throw new ApiError('cannot parse range "' + rangeIn.value + '"', 'ui');
          let end = Date.now();
          if (endIn.value) {
            end = parseTime(endIn.value);
            if (end === null) throw new ApiError('cannot parse end time "' + endIn.value + '"', 'ui');
          }
          let step = Math.max(Math.floor(range / 250 / 1000), 1);
          if (stepIn.value) {
            const s = parseDuration(stepIn.value);
            const n = Number(stepIn.value);
            step = s !== null ? s / 1000 : n;
            if (!(step > 0)) throw new ApiError('cannot parse step "' + stepIn.value + '"', 'ui');
          }
          const start = end - range;
          res = await api('/api/v1/query_range', { query: text, start: start / 1000, end: end / 1000, step }, true);
          if (seq !== runSeq) return;
          renderGraph(res.data, start, end, step);
        }
        for (const w of res.warnings || []) messages.appendChild(warnBox('Warning: ' + w));
        for (const w of res.infos || []) messages.appendChild(infoBox('Info: ' + w));
        const n = Array.isArray(res.data.result) ? res.data.result.length : 1;
        stats.textContent = 'Load time: ' + Math.round(performance.now() - started) + 'ms · Result series: ' + n;
      } catch (e) {
        if (seq !== runSeq) return;
        clear(output);
        destroyPlot();
        messages.appendChild(errorBox((e.errorType ? 'Error executing query (' + e.errorType + '): ' : 'Error: ') + e.message));
        for (const w of e.warnings || []) messages.appendChild(warnBox('Warning: ' + w));
      }
    }
    function destroyPlot() { if (plot) { plot.destroy(); plot = null; } }

    function renderTable(data) {
      destroyPlot();
      clear(output);
      const t = el('table', { class: 'data', id: 'result-table' });
      t.appendChild(el('tr', null, el('th', null, 'Series'), el('th', null, 'Value')));
      if (data.resultType === 'scalar' || data.resultType === 'string') {
        t.appendChild(el('tr', null, el('td', null, data.resultType), el('td', { class: 'num' }, fmtValue(data.result[1]))));
      } else if (data.resultType === 'vector') {
        for (const s of data.result) {
          const v = s.value ? fmtValue(s.value[1]) : (s.histogram ? JSON.stringify(s.histogram[1]) : '');
          t.appendChild(el('tr', null, el('td', null, metricNode(s.metric)), el('td', { class: 'num' }, v)));
        }
      } else if (data.resultType === 'matrix') {
        for (const s of data.result) {
          const lines = (s.values || []).map(([ts, v]) => fmtValue(v) + ' @' + ts);
          t.appendChild(el('tr', null, el('td', null, metricNode(s.metric)), el('td', { class: 'num mono' }, lines.map(l => el('div', null, l)))));
        }
      }
      if (Array.isArray(data.result) && data.result.length === 0) {
        output.appendChild(el('div', { class: 'muted' }, 'Empty query result'));
      } else {
        output.appendChild(t);
      }
    }

    const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
    function renderGraph(data, start, end, step) {
      destroyPlot();
      clear(output);
      if (data.resultType !== 'matrix') { output.appendChild(errorBox('Graph needs a range result, got ' + data.resultType)); return; }
      if (!data.result.length) { output.appendChild(el('div', { class: 'muted' }, 'Empty query result')); return; }
      if (typeof uPlot !== 'function') { output.appendChild(errorBox('Charting library failed to load.')); return; }
      // All series of a range query sit on the same step grid.
      const xs = [];
      const first = Math.ceil(start / 1000 / step) * step;
      for (let t = start / 1000; t <= end / 1000 + 1e-9; t += step) xs.push(Math.round(t * 1000) / 1000);
      void first;
      const index = new Map(xs.map((x, i) => [x, i]));
      const stacked = modeSel.value === 'stacked';
      const raw = data.result.map(s => {
        const ys = new Array(xs.length).fill(null);
        for (const [ts, v] of s.values || []) {
          const i = index.get(Math.round(Number(ts) * 1000) / 1000);
          if (i !== undefined) ys[i] = Number(v);
        }
        return ys;
      });
      let series = raw;
      if (stacked) {
        const acc = new Array(xs.length).fill(0);
        series = raw.map(ys => ys.map((v, i) => (v === null ? (acc[i] === 0 ? null : acc[i]) : (acc[i] += v))));
      }
      const width = Math.max(300, output.clientWidth || 900);
      const opts = {
        width, height: 360,
        cursor: { drag: { x: true, y: false } },
        legend: { show: true, live: true },
        scales: { x: { time: true } },
        axes: [{}, { size: 70, values: (u, vals) => vals.map(v => fmtNum(v)) }],
        series: [{ label: 'Time', value: (u, v) => (v === null ? '-' : fmtTime(v * 1000)) }].concat(
          data.result.map((s, i) => {
            const c = COLORS[i % COLORS.length];
            return {
              label: metricText(s.metric), stroke: c, width: 1.5,
              fill: stacked ? c + '55' : undefined,
              spanGaps: false,
              value: (u, v, si, idx) => (idx === null || idx === undefined || raw[i][idx] === null ? '-' : fmtNum(raw[i][idx])),
            };
          })),
      };
      const holder = el('div', { class: 'graph', id: 'graph' });
      output.appendChild(holder);
      plot = new uPlot(opts, [xs].concat(series), holder);
    }

    if (state.expr) run();
    else expr.focus();
  }

  // ---------- targets ----------
  async function targetsPage(root) {
    append(root, el('h1', null, 'Targets'));
    const onlyBad = el('input', { type: 'checkbox', id: 'unhealthy-only' });
    const search = el('input', { type: 'text', id: 'target-filter', placeholder: 'Filter by endpoint or labels', size: 32 });
    const body = el('div', { id: 'targets' });
    append(root, el('div', { class: 'row' }, el('label', null, onlyBad, ' Unhealthy only'), search), body);
    let data;
    try { data = (await api('/api/v1/targets', { state: 'active' })).data; } catch (e) { body.appendChild(errorBox('Error loading targets: ' + e.message)); return; }
    const targets = data.activeTargets || [];
    function render() {
      clear(body);
      const pools = new Map();
      for (const t of targets) {
        if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
        pools.get(t.scrapePool).push(t);
      }
      if (!pools.size) { body.appendChild(el('div', { class: 'muted' }, 'No active targets.')); return; }
      const f = search.value.toLowerCase();
      for (const [pool, list] of [...pools.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0])))) {
        const up = list.filter(t => t.health === 'up').length;
        const shown = list.filter(t => (!onlyBad.checked || t.health !== 'up') &&
          (!f || (t.scrapeUrl || '').toLowerCase().includes(f) || JSON.stringify(t.labels || {}).toLowerCase().includes(f)));
        if (!shown.length) continue;
        const tbl = el('table', { class: 'data' }, el('tr', null, ['Endpoint', 'State', 'Labels', 'Last scrape', 'Scrape duration', 'Error'].map(h => el('th', null, h))));
        for (const t of shown) {
          tbl.appendChild(el('tr', { class: 'target' },
            el('td', null, safeLink(t.scrapeUrl)),
            el('td', null, el('span', { class: 'badge ' + (t.health === 'up' ? 'up' : t.health === 'down' ? 'down' : 'unknown') }, (t.health || 'unknown').toUpperCase())),
            el('td', null, labelBadges(t.labels)),
            el('td', null, fmtAgo(t.lastScrape)),
            el('td', { class: 'num' }, fmtDuration(Number(t.lastScrapeDuration))),
            el('td', { class: 'target-error' }, t.lastError ? el('div', { class: 'alert error' }, t.lastError) : '')));
        }
        body.appendChild(el('section', { class: 'panel pool' }, el('h2', null, pool + ' (' + up + '/' + list.length + ' up)'), tbl));
      }
      if (!body.firstChild) body.appendChild(el('div', { class: 'muted' }, 'No targets match.'));
    }
    onlyBad.addEventListener('change', render);
    search.addEventListener('input', render);
    render();
  }

  // ---------- rules ----------
  async function rulesPage(root) {
    append(root, el('h1', null, 'Rules'));
    const body = el('div', { id: 'rules' });
    root.appendChild(body);
    let groups;
    try { groups = (await api('/api/v1/rules')).data.groups || []; } catch (e) { body.appendChild(errorBox('Error loading rules: ' + e.message)); return; }
    if (!groups.length) { body.appendChild(el('div', { class: 'muted' }, 'No rule groups configured.')); return; }
    for (const g of groups) {
      const tbl = el('table', { class: 'data' }, el('tr', null, ['Rule', 'State', 'Error', 'Last evaluation', 'Evaluation time'].map(h => el('th', null, h))));
      for (const r of g.rules || []) {
        const def = el('div', { class: 'mono' },
          el('div', null, (r.type === 'alerting' ? 'alert: ' : 'record: ') + r.name),
          el('div', null, 'expr: ' + r.query),
          r.duration ? el('div', null, 'for: ' + fmtDuration(r.duration)) : null,
          r.keepFiringFor ? el('div', null, 'keep_firing_for: ' + fmtDuration(r.keepFiringFor)) : null,
          r.labels && Object.keys(r.labels).length ? el('div', null, 'labels: ', labelBadges(r.labels)) : null,
          r.annotations && Object.keys(r.annotations).length ? el('div', null, 'annotations: ', labelBadges(r.annotations)) : null);
        tbl.appendChild(el('tr', null, el('td', null, def),
          el('td', null, el('span', { class: 'badge ' + (r.health === 'ok' ? 'ok' : r.health === 'err' ? 'err' : 'unknown') }, (r.health || 'unknown').toUpperCase())),
          el('td', null, r.lastError ? el('div', { class: 'alert error' }, r.lastError) : ''),
          el('td', null, fmtAgo(r.lastEvaluation)),
          el('td', { class: 'num' }, fmtDuration(Number(r.evaluationTime)))));
      }
      root.appendChild(el('section', { class: 'panel' },
        el('h2', null, g.name),
        el('div', { class: 'muted' }, 'file: ' + (g.file || '') + ' · interval: ' + fmtDuration(Number(g.interval)) +
          ' · last evaluation: ' + fmtAgo(g.lastEvaluation) + ' · evaluation time: ' + fmtDuration(Number(g.evaluationTime))),
        tbl));
    }
  }

  // ---------- alerts ----------
  async function alertsPage(root) {
    append(root, el('h1', null, 'Alerts'));
    const boxes = {};
    const filter = el('div', { class: 'row' });
    for (const s of ['inactive', 'pending', 'firing']) {
      boxes[s] = el('input', { type: 'checkbox', checked: true, id: 'show-' + s });
      filter.appendChild(el('label', null, boxes[s], ' ' + s));
    }
    const body = el('div', { id: 'alerts' });
    append(root, filter, body);
    let groups;
    try { groups = (await api('/api/v1/rules', { type: 'alert' })).data.groups || []; } catch (e) { body.appendChild(errorBox('Error loading alerts: ' + e.message)); return; }
    const rules = [];
    for (const g of groups) for (const r of g.rules || []) if (r.type === 'alerting') rules.push([g, r]);
    function render() {
      clear(body);
      const counts = { inactive: 0, pending: 0, firing: 0 };
      for (const [, r] of rules) counts[r.state] = (counts[r.state] || 0) + 1;
      body.appendChild(el('div', { class: 'muted' }, 'Firing: ' + counts.firing + ' · Pending: ' + counts.pending + ' · Inactive: ' + counts.inactive));
      if (!rules.length) { body.appendChild(el('div', { class: 'muted' }, 'No alerting rules configured.')); return; }
      for (const [g, r] of rules) {
        if (boxes[r.state] && !boxes[r.state].checked) continue;
        const alerts = r.alerts || [];
        const tbl = el('table', { class: 'data' }, el('tr', null, ['Labels', 'State', 'Active since', 'Value', 'Annotations'].map(h => el('th', null, h))));
        for (const a of alerts) {
          tbl.appendChild(el('tr', { class: 'alert-instance' },
            el('td', null, labelBadges(a.labels)),
            el('td', null, el('span', { class: 'badge ' + a.state }, String(a.state).toUpperCase())),
            el('td', null, a.activeAt ? fmtTime(Date.parse(a.activeAt)) + ' (' + fmtAgo(a.activeAt) + ')' : '-'),
            el('td', { class: 'num' }, isFinite(Number(a.value)) ? fmtNum(Number(a.value)) : fmtValue(a.value)),
            el('td', null, Object.keys(a.annotations || {}).sort().map(k => el('div', null, el('b', null, k + ': '), a.annotations[k])))));
        }
        body.appendChild(el('details', { class: 'panel group', open: r.state !== 'inactive' },
          el('summary', null, el('span', { class: 'badge ' + r.state }, String(r.state).toUpperCase()), ' ', r.name,
            ' (' + alerts.length + ' active) ', el('span', { class: 'muted' }, g.file || '')),
          el('div', { class: 'mono' }, 'expr: ' + r.query),
          r.duration ? el('div', { class: 'mono' }, 'for: ' + fmtDuration(r.duration)) : null,
          r.labels && Object.keys(r.labels).length ? el('div', null, 'labels: ', labelBadges(r.labels)) : null,
          r.lastError ? errorBox(r.lastError) : null,
          alerts.length ? tbl : null));
      }
    }
    for (const b of Object.values(boxes)) b.addEventListener('change', render);
    render();
  }

  // ---------- status ----------
  async function statusPage(root) {
    append(root, el('h1', null, 'Status'));
    const section = (id, title) => { const s = el('section', { class: 'panel', id }, el('h2', null, title)); root.appendChild(s); return s; };
    const build = section('build', 'Build information');
    const runtime = section('runtime', 'Runtime information');
    const tsdb = section('tsdb', 'TSDB status');
    const flags = section('flags', 'Command-line flags');
    const config = section('config', 'Configuration');
    const load = async (target, path, render) => {
      try { render((await api(path)).data); } catch (e) { target.appendChild(errorBox('Error loading ' + path + ': ' + e.message)); }
    };
    await Promise.all([
      load(build, '/api/v1/status/buildinfo', d => build.appendChild(kvTable(d))),
      load(runtime, '/api/v1/status/runtimeinfo', d => runtime.appendChild(kvTable(d))),
      load(tsdb, '/api/v1/status/tsdb', d => {
        const h = d.headStats || {};
        tsdb.appendChild(kvTable({
          'Number of series': h.numSeries, 'Number of label pairs': h.numLabelPairs, 'Number of chunks': h.chunkCount,
          'Min time': h.minTime !== undefined ? fmtTime(h.minTime) + ' (' + h.minTime + ')' : '-',
          'Max time': h.maxTime !== undefined ? fmtTime(h.maxTime) + ' (' + h.maxTime + ')' : '-',
        }));
        for (const [key, title, col] of [['seriesCountByMetricName', 'Top series count by metric name', 'Count'],
          ['labelValueCountByLabelName', 'Top label names with value count', 'Count'],
          ['memoryInBytesByLabelName', 'Top label names with memory usage', 'Bytes'],
          ['seriesCountByLabelValuePair', 'Top series count by label value pairs', 'Count']]) {
          const t = el('table', { class: 'data' }, el('tr', null, el('th', null, 'Name'), el('th', null, col)));
          for (const e of d[key] || []) t.appendChild(el('tr', null, el('td', { class: 'mono' }, e.name), el('td', { class: 'num' }, String(e.value))));
          tsdb.appendChild(el('h2', null, title));
          tsdb.appendChild(t);
        }
      }),
      load(flags, '/api/v1/status/flags', d => {
        const f = el('input', { type: 'text', placeholder: 'Filter flags', size: 30 });
        const t = el('table', { class: 'data kv' });
        const render = () => {
          clear(t);
          for (const k of Object.keys(d).sort()) {
            if (f.value && !(k + ' ' + d[k]).toLowerCase().includes(f.value.toLowerCase())) continue;
            t.appendChild(el('tr', null, el('th', { class: 'mono' }, '--' + k), el('td', { class: 'mono' }, d[k])));
          }
        };
        f.addEventListener('input', render);
        render();
        append(flags, f, t);
      }),
      load(config, '/api/v1/status/config', d => config.appendChild(el('pre', { class: 'yaml' }, d.yaml || '(no configuration file)'))),
    ]);
    const anchor = location.pathname.replace(/^\//, '');
    const target = { 'tsdb-status': tsdb, flags, config }[anchor];
    if (target) target.scrollIntoView();
  }

  // ---------- router ----------
  const routes = {
    '/': ['query', queryPage], '/query': ['query', queryPage], '/graph': ['query', queryPage],
    '/targets': ['targets', targetsPage], '/rules': ['rules', rulesPage], '/alerts': ['alerts', alertsPage],
    '/status': ['status', statusPage], '/tsdb-status': ['status', statusPage], '/flags': ['status', statusPage],
    '/config': ['status', statusPage],
  };
  function start() {
    const [name, page] = routes[location.pathname] || routes['/'];
    for (const a of document.querySelectorAll('.topbar nav a')) a.classList.toggle('active', a.getAttribute('data-page') === name);
    const root = clear(document.getElementById('app'));
    document.title = 'Aion · ' + name.charAt(0).toUpperCase() + name.slice(1);
    Promise.resolve(page(root)).catch(e => root.appendChild(errorBox('Error: ' + e.message)));
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
