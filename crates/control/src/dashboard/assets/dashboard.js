// Fulcrum dashboard: plain JavaScript, no framework, no chart library, no
// network but this origin's admin API. Every value that comes from the
// fleet (pool names, endpoints, service names, messages) is put in the page
// with textContent or setAttribute, never parsed as HTML.
//
// Views (location.hash): #/ overview, #/pool/NAME, #/services, #/events.
// Polling: /api/v1/pools every second; the open pool's history
// (/api/v1/history?since=) and the event log (/api/v1/events?after=) every
// 2 s; the registry's services every 3 s while that view is open.
'use strict';

(() => {
  const TOKEN_KEY = 'fulcrum-admin-token';
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5', '#d53f8c', '#319795',
    '#b7791f', '#e53e3e', '#4a5568', '#00a3c4'];
  // Algorithms that steer by measured latency or load: their shares follow
  // the fleet, not a promise, so the ±5 % badge does not apply.
  const ADAPTIVE = new Set(['response_time', 'resource_based']);
  const MAX_EVENTS = 1000;

  const state = {
    pools: null, // the last /api/v1/pools answer's `pools`
    events: [], // oldest first
    lastSeq: 0,
    history: null, // { pool, points, t: [], series, instances: Map }
    services: null, // { services } or { error }
    timers: [],
  };

  // ---- small DOM helpers (text only) ----------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c); // strings become text nodes
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // A cell: its shown text and the raw value (data-value) tests compare.
  function setCell(td, text, raw, cls) {
    setText(td, text);
    const v = raw === null || raw === undefined ? '' : String(raw);
    if (td.getAttribute('data-value') !== v) td.setAttribute('data-value', v);
    if (cls !== undefined && td.className !== cls) td.className = cls;
  }

  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    return Number(v).toFixed(digits);
  }

  function pct(v) {
    if (v === null || v === undefined) return '–';
    return (v * 100).toFixed(1) + ' %';
  }

  function ms(v) {
    if (v === null || v === undefined) return '–';
    return v < 10 ? v.toFixed(2) + ' ms' : v < 100 ? v.toFixed(1) + ' ms' : Math.round(v) + ' ms';
  }

  function clock(unixMs) {
    return new Date(unixMs).toLocaleTimeString();
  }

  function age(seconds) {
    if (seconds < 60) return seconds + ' s';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min ' + (seconds % 60) + ' s';
    return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
  }

  // Rows keyed by one data attribute, updated in place: rows that stay
  // keep their nodes (and a half-typed input); new ones are made; gone
  // ones removed; order follows `items`.
  function syncRows(tbody, items, keyAttr, keyOf, make, update) {
    const old = new Map();
    for (const tr of Array.from(tbody.children)) old.set(tr.getAttribute(keyAttr), tr);
    let prev = null;
    for (const item of items) {
      const key = String(keyOf(item));
      let tr = old.get(key);
      if (tr) old.delete(key);
      else {
        tr = make(item);
        tr.setAttribute(keyAttr, key);
      }
      update(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
  }

  function cells(tr, fields, classes) {
    for (const f of fields) tr.append(el('td', { 'data-field': f, class: (classes && classes[f]) || '' }));
  }

  function cell(tr, field) {
    return tr.querySelector(`td[data-field="${field}"]`);
  }

  function table(id, headers) {
    const thead = el('thead', {}, el('tr', {}, ...headers.map(([label, cls]) => el('th', { class: cls || '' }, label))));
    return el('table', { id }, thead, el('tbody'));
  }

  // ---- errors and the token ------------------------------------------

  function showError(msg) {
    const box = document.getElementById('error');
    setText(box, msg);
    box.hidden = false;
  }

  function clearError() {
    const box = document.getElementById('error');
    box.hidden = true;
    setText(box, '');
  }

  function askToken() {
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    const cancel = document.getElementById('token-cancel');
    input.value = '';
    return new Promise((resolve) => {
      const done = (value) => {
        form.removeEventListener('submit', onSubmit);
        cancel.removeEventListener('click', onCancel);
        dialog.removeEventListener('cancel', onCancel);
        if (dialog.open) dialog.close();
        resolve(value);
      };
      const onSubmit = (e) => {
        e.preventDefault();
        done(input.value);
      };
      const onCancel = (e) => {
        e.preventDefault();
        done(null);
      };
      form.addEventListener('submit', onSubmit);
      cancel.addEventListener('click', onCancel);
      dialog.addEventListener('cancel', onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  async function request(method, path, body) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method,
      headers,
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function errorOf(r) {
    try {
      const j = await r.json();
      if (j && typeof j.error === 'string') return j.error;
    } catch (_) { /* not JSON */ }
    return r.statusText;
  }

  // A change (drain, enable, weight). On 401 the token is asked once and
  // kept for this tab; a wrong one is forgotten so the next try asks again.
  async function change(method, path, body, what) {
    try {
      let r = await request(method, path, body);
      if (r.status === 401) {
        const token = await askToken();
        if (token === null) {
          showError(`${what}: not done, the gateway asks for its admin token (401)`);
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, token);
        r = await request(method, path, body);
      }
      if (!r.ok) {
        if (r.status === 401) sessionStorage.removeItem(TOKEN_KEY);
        showError(`${what}: ${r.status} ${await errorOf(r)}`);
        return;
      }
      clearError();
      await pollPools();
    } catch (e) {
      showError(`${what}: the gateway did not answer (${e.message})`);
    }
  }

  async function getJson(path) {
    const r = await fetch(path, { cache: 'no-store' });
    if (!r.ok) {
      const err = new Error(`${path}: ${r.status} ${await errorOf(r)}`);
      err.status = r.status;
      throw err;
    }
    return r.json();
  }

  // ---- KPIs against the seed's targets -------------------------------

  // [class, text, title] of each badge of a pool.
  function kpis(p) {
    const out = [];
    const members = p.instances;
    const recent = members.reduce((n, m) => n + m.window.requests, 0);
    if (ADAPTIVE.has(p.algorithm)) {
      out.push(['shares', 'na', 'shares: adaptive', `${p.algorithm} steers by what it measures; no share is promised`]);
    } else if (recent < 20 || members.length < 2) {
      out.push(['shares', 'na', 'shares: –', 'too few recent requests to judge']);
    } else {
      const worst = Math.max(...members.map((m) => Math.abs(m.window.share - m.expected_share)));
      const cls = worst <= 0.05 ? 'ok' : worst > 0.10 ? 'bad' : 'warn';
      out.push(['shares', cls, `shares ±${(worst * 100).toFixed(1)} %`,
        'largest gap between an instance\'s recent share and its expected share; target within ±5 %, alert above 10 %']);
    }
    const healthy = members.filter((m) => m.healthy).length;
    out.push(['healthy', healthy === members.length ? 'ok' : 'bad', `${healthy}/${members.length} healthy`,
      'target: every instance healthy']);
    if (p.window.requests === 0) {
      out.push(['errors', 'na', 'errors –', 'no recent requests']);
      out.push(['latency', 'na', 'mean –', 'no recent requests']);
    } else {
      const er = p.window.error_rate;
      out.push(['errors', er < 0.01 ? 'ok' : er > 0.05 ? 'bad' : 'warn', `errors ${pct(er)}`,
        'recent error rate; target below 1 %, alert above 5 %']);
      const mean = p.window.mean_ms;
      const cls = mean === null ? 'na' : mean < 500 ? 'ok' : mean > 1000 ? 'bad' : 'warn';
      out.push(['latency', cls, `mean ${ms(mean)}`, 'recent mean time to response head; target below 500 ms, alert above 1000 ms']);
    }
    return out;
  }

  function renderBadges(td, p) {
    const want = kpis(p);
    if (td.children.length !== want.length) {
      td.replaceChildren(...want.map(([kpi]) => el('span', { class: 'badge', 'data-kpi': kpi })));
    }
    want.forEach(([, cls, text, title], i) => {
      const b = td.children[i];
      const c = 'badge ' + cls;
      if (b.className !== c) b.className = c;
      setText(b, text);
      if (b.title !== title) b.title = title;
    });
  }

  // ---- views ----------------------------------------------------------

  function route() {
    const h = location.hash.replace(/^#/, '');
    if (h.startsWith('/pool/')) {
      let name;
      try {
        name = decodeURIComponent(h.slice(6));
      } catch (_) {
        name = h.slice(6);
      }
      return { view: 'pool', name };
    }
    if (h === '/services') return { view: 'services' };
    if (h === '/events') return { view: 'events' };
    return { view: 'overview' };
  }

  function poolLink(name) {
    return el('a', { href: '#/pool/' + encodeURIComponent(name) }, name);
  }

  function mountOverview(view) {
    view.replaceChildren(
      el('h2', {}, 'Pools'),
      table('pools', [['Pool'], ['Algorithm'], ['Instances', 'num'], ['Req/s', 'num'], ['p99', 'num'],
        ['Errors', 'num'], ['Queued', 'num'], ['KPIs']]),
      el('h3', {}, 'Latest events'),
      eventsTable('recent-events'),
    );
    updateOverview();
  }

  function updateOverview() {
    const t = document.getElementById('pools');
    if (!t || !state.pools) return;
    syncRows(t.tBodies[0], state.pools, 'data-pool', (p) => p.name, (p) => {
      const tr = el('tr');
      tr.append(el('td', { 'data-field': 'name' }, poolLink(p.name)));
      cells(tr, ['algorithm', 'instances', 'rps', 'p99_ms', 'error_rate', 'queued', 'kpis'],
        { instances: 'num', rps: 'num', p99_ms: 'num', error_rate: 'num', queued: 'num' });
      return tr;
    }, (tr, p) => {
      const healthy = p.instances.filter((m) => m.healthy).length;
      setCell(cell(tr, 'algorithm'), p.algorithm, p.algorithm);
      setCell(cell(tr, 'instances'), `${healthy}/${p.instances.length}`, p.instances.length);
      setCell(cell(tr, 'rps'), num(p.window.rps, 1), p.window.rps);
      setCell(cell(tr, 'p99_ms'), ms(p.window.p99_ms), p.window.p99_ms);
      setCell(cell(tr, 'error_rate'), pct(p.window.error_rate), p.window.error_rate);
      setCell(cell(tr, 'queued'), String(p.queued), p.queued);
      renderBadges(cell(tr, 'kpis'), p);
    });
    updateEventsTable('recent-events', 8);
  }

  const INSTANCE_FIELDS = ['endpoint', 'priority', 'state', 'weight', 'dynamic_weight', 'effective_weight', 'in_flight',
    'max_concurrent', 'requests', 'window_share', 'expected_share', 'error_rate', 'p50_ms', 'p99_ms'];

  function mountPool(view, name) {
    const charts = el('div', { class: 'charts' },
      chartBox('chart-rps', 'Requests per second, per instance'),
      chartBox('chart-p99', 'p99 time to response head (ms), per instance'),
      chartBox('chart-inflight', 'In flight, per instance'),
      chartBox('chart-queue', 'Queue length (pool)'));
    view.replaceChildren(
      el('h2', { id: 'pool-title' }, 'Pool ', el('span', { id: 'pool-name' }, name), ' ',
        el('span', { id: 'pool-algorithm', class: 'muted' })),
      el('div', { id: 'pool-kpis' }),
      table('instances', [['Endpoint'], ['Priority'], ['State'], ['Weight', 'num'], ['Dynamic', 'num'], ['Effective', 'num'],
        ['In flight', 'num'], ['Max', 'num'], ['Calls', 'num'], ['Share (recent)', 'num'],
        ['Expected', 'num'], ['Errors', 'num'], ['p50', 'num'], ['p99', 'num'], ['Actions']]),
      el('p', { class: 'muted' }, 'Shares, errors and percentiles are over the recent window; calls count since start. ' +
        'Charts: the last 15 minutes.'),
      charts,
    );
    state.history = null;
    updatePool(name);
    pollHistory();
  }

  function poolNamed(name) {
    return state.pools && state.pools.find((p) => p.name === name);
  }

  function instanceRow(m) {
    const tr = el('tr');
    cells(tr, INSTANCE_FIELDS, {
      endpoint: 'endpoint', weight: 'num', dynamic_weight: 'num', effective_weight: 'num', in_flight: 'num', max_concurrent: 'num',
      requests: 'num', window_share: 'num', expected_share: 'num', error_rate: 'num', p50_ms: 'num', p99_ms: 'num',
    });
    const ep = m.endpoint;
    const id = encodeURIComponent(ep);
    const input = el('input', { 'data-field': 'weight-input', type: 'number', min: '1', max: '1000000',
      placeholder: 'weight', 'aria-label': 'new weight' });
    const button = (action, label, onClick) => {
      const b = el('button', { type: 'button', 'data-action': action }, label);
      b.addEventListener('click', onClick);
      return b;
    };
    const actions = el('td', { class: 'actions' },
      button('drain', 'Drain', () => change('POST', `/api/v1/instances/${id}/drain`, undefined, `drain ${ep}`)),
      button('enable', 'Enable', () => change('POST', `/api/v1/instances/${id}/enable`, undefined, `enable ${ep}`)),
      input,
      button('weight', 'Set', () => {
        const w = Number(input.value);
        if (!Number.isInteger(w) || w < 1 || w > 1000000) {
          showError(`weight of ${ep}: a whole number from 1 to 1000000`);
          return;
        }
        change('PUT', `/api/v1/instances/${id}/weight`, { weight: w }, `weight of ${ep}`);
      }),
      button('clear', 'Clear', () => change('PUT', `/api/v1/instances/${id}/weight`, { weight: null }, `weight of ${ep}`)),
    );
    tr.append(actions);
    return tr;
  }

  function updateInstanceRow(tr, m) {
    setCell(cell(tr, 'endpoint'), m.endpoint, m.endpoint);
    setCell(cell(tr, 'priority'), m.priority, m.priority);
    const st = m.state.replaceAll('_', ' ') + (m.ejected && m.state !== 'ejected' ? ' (ejected)' : '');
    setCell(cell(tr, 'state'), st, m.state, 'state ' + m.state);
    setCell(cell(tr, 'weight'), String(m.weight), m.weight);
    setCell(cell(tr, 'dynamic_weight'), m.dynamic_weight === null ? '–' : String(m.dynamic_weight), m.dynamic_weight);
    const eff = m.weight_override !== null && m.weight_override !== undefined
      ? `${m.effective_weight} (set)` : String(m.effective_weight);
    setCell(cell(tr, 'effective_weight'), eff, m.effective_weight);
    setCell(cell(tr, 'in_flight'), String(m.in_flight), m.in_flight);
    setCell(cell(tr, 'max_concurrent'),
      m.max_concurrent === null ? '∞' : String(m.max_concurrent) + (m.learned_limit == null ? '' : ' (auto)'),
      m.max_concurrent);
    setCell(cell(tr, 'requests'), String(m.requests), m.requests);
    setCell(cell(tr, 'window_share'), pct(m.window.share), m.window.share);
    setCell(cell(tr, 'expected_share'), pct(m.expected_share), m.expected_share);
    setCell(cell(tr, 'error_rate'), pct(m.window.error_rate), m.window.error_rate);
    setCell(cell(tr, 'p50_ms'), ms(m.window.p50_ms), m.window.p50_ms);
    setCell(cell(tr, 'p99_ms'), ms(m.window.p99_ms), m.window.p99_ms);
  }

  function updatePool(name) {
    const t = document.getElementById('instances');
    if (!t || !state.pools) return;
    const p = poolNamed(name);
    if (!p) {
      showError(`no pool named “${name}” (it may have been removed by a reload)`);
      syncRows(t.tBodies[0], [], 'data-endpoint', () => '', instanceRow, updateInstanceRow);
      return;
    }
    setText(document.getElementById('pool-algorithm'), `(${p.algorithm}, ${p.queued} queued)`);
    const k = document.getElementById('pool-kpis');
    if (k.children.length === 0) k.append(el('span', { id: 'pool-kpi-badges' }));
    renderBadges(document.getElementById('pool-kpi-badges'), p);
    syncRows(t.tBodies[0], p.instances, 'data-endpoint', (m) => m.endpoint, instanceRow, updateInstanceRow);
  }

  function mountServices(view) {
    view.replaceChildren(
      el('h2', {}, 'Services'),
      el('p', { id: 'services-note', class: 'muted' }, 'Algorithm services registered over the registry API.'),
      table('services', [['Service id'], ['Name'], ['Endpoint'], ['Version'], ['Task types'],
        ['Calls', 'num'], ['Heartbeat age', 'num'], ['Health']]),
    );
    updateServices();
    pollServices();
  }

  function updateServices() {
    const t = document.getElementById('services');
    if (!t || !state.services) return;
    const note = document.getElementById('services-note');
    if (state.services.error) {
      setText(note, state.services.error);
      return;
    }
    setText(note, `${state.services.services.length} registered.`);
    syncRows(t.tBodies[0], state.services.services, 'data-service', (s) => s.service_id, () => {
      const tr = el('tr');
      cells(tr, ['service_id', 'name', 'endpoint', 'version', 'task_types', 'call_count', 'heartbeat_age_s', 'healthy'],
        { endpoint: 'endpoint', name: 'wrap', call_count: 'num', heartbeat_age_s: 'num' });
      return tr;
    }, (tr, s) => {
      setCell(cell(tr, 'service_id'), s.service_id, s.service_id);
      setCell(cell(tr, 'name'), s.name, s.name);
      setCell(cell(tr, 'endpoint'), s.endpoint, s.endpoint);
      setCell(cell(tr, 'version'), s.version, s.version);
      setCell(cell(tr, 'task_types'), s.task_types.join(', '), s.task_types.join(','));
      setCell(cell(tr, 'call_count'), String(s.call_count), s.call_count);
      setCell(cell(tr, 'heartbeat_age_s'), age(s.heartbeat_age_s), s.heartbeat_age_s);
      setCell(cell(tr, 'healthy'), s.healthy ? 'healthy' : 'down', s.healthy, 'state ' + (s.healthy ? 'up' : 'down'));
    });
  }

  function eventsTable(id) {
    return table(id, [['Time'], ['Event'], ['Pool'], ['Instance'], ['What happened']]);
  }

  function mountEvents(view) {
    view.replaceChildren(el('h2', {}, 'Events'),
      el('p', { class: 'muted' }, 'Newest first; the gateway keeps the last 1000.'),
      eventsTable('events'));
    updateEventsTable('events', MAX_EVENTS);
  }

  function updateEventsTable(id, limit) {
    const t = document.getElementById(id);
    if (!t) return;
    const newest = state.events.slice(-limit).reverse();
    syncRows(t.tBodies[0], newest, 'data-seq', (e) => e.seq, () => {
      const tr = el('tr');
      cells(tr, ['time', 'kind', 'pool', 'endpoint', 'message'], { endpoint: 'endpoint', message: 'wrap' });
      return tr;
    }, (tr, e) => {
      setCell(cell(tr, 'time'), clock(e.unix_ms), e.unix_ms);
      setCell(cell(tr, 'kind'), e.kind.replaceAll('_', ' '), e.kind, 'kind ' + e.kind);
      setCell(cell(tr, 'pool'), e.pool || '', e.pool || '');
      setCell(cell(tr, 'endpoint'), e.endpoint || '', e.endpoint || '');
      setCell(cell(tr, 'message'), e.message, e.message);
    });
  }

  // ---- charts (SVG polylines) ----------------------------------------

  function chartBox(id, title) {
    return el('div', { class: 'chart' },
      el('div', { class: 'title' }, title),
      (() => {
        const s = svg('svg', { id, viewBox: '0 0 600 160', preserveAspectRatio: 'none', role: 'img' });
        s.setAttribute('aria-label', title);
        return s;
      })(),
      el('div', { class: 'legend', id: id + '-legend' }));
  }

  // Draws `series` ([{label, values}]) aligned with times `t`.
  function drawChart(id, t, series) {
    const root = document.getElementById(id);
    if (!root) return;
    const W = 600, H = 160, L = 44, B = 16, T = 6;
    let max = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    max = max > 0 ? niceCeil(max) : 1;
    const nodes = [];
    for (let i = 0; i <= 4; i++) {
      const y = T + (H - T - B) * (i / 4);
      nodes.push(svg('line', { class: 'grid', x1: L, x2: W, y1: y, y2: y }));
      const label = svg('text', { x: L - 4, y: y + 3, 'text-anchor': 'end' });
      label.textContent = fmtAxis(max * (1 - i / 4));
      nodes.push(label);
    }
    if (t.length > 0) {
      const t0 = t[0], t1 = t[t.length - 1];
      const span = Math.max(t1 - t0, 1);
      const x = (ti) => L + (W - L) * ((ti - t0) / span);
      const y = (v) => T + (H - T - B) * (1 - v / max);
      series.forEach((s, k) => {
        // One polyline per unbroken run of values (gaps stay gaps).
        let run = [];
        const flush = () => {
          if (run.length > 0) {
            const color = COLORS[k % COLORS.length];
            if (run.length === 1) nodes.push(svg('circle', { cx: run[0][0], cy: run[0][1], r: 1.5, fill: color }));
            else nodes.push(svg('polyline', { points: run.map((p) => p.join(',')).join(' '), stroke: color }));
          }
          run = [];
        };
        s.values.forEach((v, i) => {
          if (v === null || v === undefined) flush();
          else run.push([x(t[i]).toFixed(1), y(v).toFixed(1)]);
        });
        flush();
      });
      const first = svg('text', { x: L, y: H - 2 });
      first.textContent = clock(t0);
      const last = svg('text', { x: W, y: H - 2, 'text-anchor': 'end' });
      last.textContent = clock(t1);
      nodes.push(first, last);
    }
    root.replaceChildren(...nodes);
    const legend = document.getElementById(id + '-legend');
    if (legend) {
      legend.replaceChildren(...series.map((s, k) => el('span', {},
        (() => {
          const i = el('i');
          i.style.background = COLORS[k % COLORS.length];
          return i;
        })(), s.label)));
    }
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function fmtAxis(v) {
    return v >= 100 ? String(Math.round(v)) : v >= 1 ? v.toFixed(1).replace(/\.0$/, '') : v.toFixed(2);
  }

  function drawHistory() {
    const h = state.history;
    if (!h) return;
    const inst = Array.from(h.instances.entries());
    drawChart('chart-rps', h.t, inst.map(([ep, s]) => ({ label: ep, values: s.rps })));
    drawChart('chart-p99', h.t, inst.map(([ep, s]) => ({ label: ep, values: s.p99_ms })));
    drawChart('chart-inflight', h.t, inst.map(([ep, s]) => ({ label: ep, values: s.in_flight })));
    drawChart('chart-queue', h.t, [{ label: 'queued', values: h.queued }]);
  }

  // Appends the samples of one /api/v1/history answer to what the page
  // holds, keeping series aligned with the times and at most `points`.
  function mergeHistory(pool, answer) {
    const p = answer.pools.find((x) => x.name === pool);
    let h = state.history;
    if (!h || h.pool !== pool) {
      h = { pool, points: answer.points, t: [], queued: [], instances: new Map() };
      state.history = h;
    }
    const n = answer.t.length;
    if (n === 0) return;
    const before = h.t.length;
    h.t.push(...answer.t);
    h.queued.push(...(p ? p.queued : new Array(n).fill(null)));
    const seen = new Set();
    for (const i of (p ? p.instances : [])) {
      seen.add(i.endpoint);
      let s = h.instances.get(i.endpoint);
      if (!s) {
        const gap = () => new Array(before).fill(null);
        s = { rps: gap(), p99_ms: gap(), in_flight: gap() };
        h.instances.set(i.endpoint, s);
      }
      s.rps.push(...i.rps);
      s.p99_ms.push(...i.p99_ms);
      s.in_flight.push(...i.in_flight);
    }
    for (const ep of Array.from(h.instances.keys())) if (!seen.has(ep)) h.instances.delete(ep);
    const extra = h.t.length - h.points;
    if (extra > 0) {
      h.t.splice(0, extra);
      h.queued.splice(0, extra);
      for (const s of h.instances.values()) {
        s.rps.splice(0, extra);
        s.p99_ms.splice(0, extra);
        s.in_flight.splice(0, extra);
      }
    }
  }

  // ---- polling ----------------------------------------------------------

  async function pollPools() {
    try {
      const j = await getJson('/api/v1/pools');
      state.pools = j.pools;
      setText(document.getElementById('updated'), 'updated ' + new Date().toLocaleTimeString());
      const r = route();
      if (r.view === 'overview') updateOverview();
      else if (r.view === 'pool') updatePool(r.name);
      const box = document.getElementById('error');
      if (box.dataset.source === 'poll') {
        delete box.dataset.source;
        clearError();
      }
    } catch (e) {
      showError(`cannot read the gateway's pools: ${e.message}`);
      document.getElementById('error').dataset.source = 'poll';
    }
  }

  async function pollHistory() {
    const r = route();
    if (r.view !== 'pool') return;
    const h = state.history;
    const since = h && h.pool === r.name && h.t.length > 0 ? h.t[h.t.length - 1] : 0;
    try {
      const j = await getJson(`/api/v1/history?pool=${encodeURIComponent(r.name)}&since=${since}`);
      const now = route();
      if (now.view !== 'pool' || now.name !== r.name) return;
      mergeHistory(r.name, j);
      drawHistory();
    } catch (_) {
      // pollPools reports an unreachable gateway.
    }
  }

  async function pollEvents() {
    try {
      const j = await getJson(`/api/v1/events?after=${state.lastSeq}`);
      if (j.last_seq < state.lastSeq) state.events = []; // the gateway restarted
      state.lastSeq = j.last_seq;
      if (j.events.length > 0) {
        state.events.push(...j.events);
        if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
      }
      const r = route();
      if (r.view === 'events') updateEventsTable('events', MAX_EVENTS);
      if (r.view === 'overview') updateEventsTable('recent-events', 8);
    } catch (_) {
      // pollPools reports an unreachable gateway.
    }
  }

  async function pollServices() {
    if (route().view !== 'services') return;
    try {
      state.services = await getJson('/api/v1/ai_analysis/services');
    } catch (e) {
      state.services = {
        error: e.status === 404
          ? 'The registry is off on this gateway (registry.enabled: false).'
          : `cannot read the registry: ${e.message}`,
      };
    }
    updateServices();
  }

  function render() {
    const r = route();
    for (const [id, v] of [['nav-overview', 'overview'], ['nav-services', 'services'], ['nav-events', 'events']]) {
      document.getElementById(id).classList.toggle('active', r.view === v);
    }
    const view = document.getElementById('view');
    if (r.view === 'pool') mountPool(view, r.name);
    else if (r.view === 'services') mountServices(view);
    else if (r.view === 'events') mountEvents(view);
    else mountOverview(view);
  }

  function every(ms, f) {
    state.timers.push(setInterval(f, ms));
  }

  document.addEventListener('DOMContentLoaded', () => {
    window.addEventListener('hashchange', () => {
      clearError();
      render();
    });
    render();
    pollPools();
    pollEvents();
    every(1000, pollPools);
    every(2000, pollHistory);
    every(2000, pollEvents);
    every(3000, pollServices);
  });
})();
