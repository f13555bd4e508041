// Warden's dashboard: plain JavaScript, no dependencies. Everything it shows comes from /v1; every
// change it makes carries the session's CSRF token; the event stream keeps every view current.

const state = { csrf: null, role: null, runs: [], approvals: [], route: ['runs'], source: null, timers: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  const method = options.method || 'GET';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `${response.status} ${response.statusText}`;
    if (response.status === 401) showSignIn();
    throw new Error(message);
  }
  return data;
}

function flash(message, isError = false) {
  const node = $('flash');
  node.textContent = message;
  node.classList.toggle('error', isError);
  node.hidden = false;
}

const nsToMs = (ns) => Number(BigInt(ns) / 1000000n);
const when = (ns) => new Date(nsToMs(ns)).toLocaleTimeString();

function age(ns) {
  const seconds = Math.max(0, Math.floor((Date.now() - nsToMs(ns)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function stopText(outcome) {
  if (!outcome) return 'nothing to stop';
  if (outcome.already_ended) return `${outcome.id} had already ended; 0 processes left`;
  const left = outcome.remaining_processes;
  const how = outcome.complied_with_notice ? 'exited on notice' : `killed ${outcome.killed_processes} processes`;
  return `stopped ${outcome.id} in ${outcome.latency_ms.toFixed(1)} ms (${how}); ${left} processes left (kernel)`;
}

// MARK: - Signing in

function showSignIn() {
  $('sign-in').hidden = false;
  for (const page of document.querySelectorAll('.page')) page.hidden = true;
  $('stop-all').hidden = true;
  $('sign-out').hidden = true;
  $('whoami').textContent = '';
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  $('sign-in-error').hidden = true;
  try {
    const response = await fetch('/v1/session', {
      method: 'POST', credentials: 'same-origin', headers: { Authorization: `Bearer ${token}` },
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    $('token').value = '';
    signedIn(data);
  } catch (error) {
    $('sign-in-error').textContent = error.message;
    $('sign-in-error').hidden = false;
  }
}

function signedIn(session) {
  state.csrf = session.csrf;
  state.role = session.role;
  $('sign-in').hidden = true;
  $('whoami').textContent = `${session.name} (${session.role})`;
  $('sign-out').hidden = false;
  $('stop-all').hidden = session.role !== 'operator';
  connect();
  route();
  refreshRuns();
  refreshApprovals();
}

async function signOut() {
  try { await api('/v1/session', { method: 'DELETE' }); } catch (_) { /* signed out either way */ }
  if (state.source) state.source.close();
  state.csrf = null;
  showSignIn();
}

// MARK: - Live events

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource('/v1/events');
  state.source = source;
  source.onopen = () => { $('live').textContent = 'live'; $('live').classList.add('on'); };
  source.onerror = () => { $('live').textContent = 'reconnecting'; $('live').classList.remove('on'); };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.run) scheduleRuns();
    if (event.kind.startsWith('approval.')) scheduleApprovals();
    appendEvent($('event-log'), event, true);
    if (state.route[0] === 'runs' && state.route[1] && event.run === state.route[1]) {
      appendEvent($('timeline'), event, false);
      scheduleRun();
    }
  };
}

let pending = {};
function debounce(name, fn, ms = 80) {
  clearTimeout(pending[name]);
  pending[name] = setTimeout(fn, ms);
}
const scheduleRuns = () => debounce('runs', refreshRuns);
const scheduleApprovals = () => debounce('approvals', refreshApprovals);
const scheduleRun = () => debounce('run', () => showRun(state.route[1], false), 150);

function eventClass(kind) {
  if (kind === 'tripwire' || kind === 'denied' || kind.startsWith('server.auth')) return 'bad';
  if (kind === 'decision') return 'decision';
  if (kind.startsWith('approval.')) return 'approval';
  if (kind === 'stopped' || kind === 'killed' || kind.startsWith('stop')) return 'stop';
  return '';
}

function describe(event) {
  const d = event.details || {};
  const parts = [];
  for (const key of ['decision', 'reason', 'summary', 'approver', 'latency_ms', 'path', 'change', 'requested_by']) {
    if (d[key] !== undefined) parts.push(`${key}: ${d[key]}`);
  }
  return parts.join(' · ');
}

function appendEvent(list, event, newestFirst) {
  const item = el('li', { class: `event ${eventClass(event.kind)}` },
    el('span', { class: 'time', text: when(event.time_ns) }),
    el('span', { class: 'kind', text: event.kind }),
    el('span', { class: 'actor', text: event.actor }),
    event.run ? el('a', { href: `#/runs/${event.run}`, class: 'run', text: event.run.slice(0, 12) }) : null,
    el('span', { class: 'subject', text: event.subject || '' }),
    el('span', { class: 'detail', text: describe(event) }));
  if (newestFirst) list.prepend(item); else list.append(item);
  while (list.children.length > 500) list.lastElementChild.remove();
}

// MARK: - Runs

async function refreshRuns() {
  if (!state.csrf) return;
  try {
    const all = $('show-ended').checked;
    state.runs = await api(`/v1/runs${all ? '?all=true' : ''}`);
  } catch (error) { return flash(error.message, true); }
  const body = $('runs-table').querySelector('tbody');
  body.replaceChildren(...state.runs.map(runRow));
  $('runs-empty').hidden = state.runs.length > 0;
}

function runRow(run) {
  const usage = run.usage || {};
  const active = ['starting', 'running', 'stopping'].includes(run.state);
  const stop = active && state.role === 'operator'
    ? el('button', { type: 'button', class: 'danger small', 'data-run': run.id, onclick: () => stopRun(run.id), text: 'Stop' })
    : el('span', { class: 'muted', text: run.stop ? `stopped in ${run.stop.latency_ms.toFixed(1)} ms; ${run.stop.remaining_processes} left` : '' });
  return el('tr', { 'data-run': run.id, 'data-state': run.state },
    el('td', {}, el('a', { href: `#/runs/${run.id}`, text: run.id.slice(0, 12) })),
    el('td', { text: run.name }),
    el('td', {}, el('span', { class: `state ${run.state.replace('?', '')}`, text: run.state })),
    el('td', { text: usage.processes ?? '–' }),
    el('td', { text: bytes(usage.memory_bytes) }),
    el('td', { text: usage.cpu_seconds !== undefined ? `${usage.cpu_seconds.toFixed(2)} s` : '–' }),
    el('td', { text: age(run.created_ns) }),
    el('td', { class: 'command', text: run.command.join(' ') }),
    el('td', {}, stop));
}

async function stopRun(id) {
  flash(`stopping ${id}…`);
  try {
    const outcome = await api(`/v1/runs/${id}/stop`, { method: 'POST', body: { reason: 'stopped from the dashboard' } });
    flash(stopText(outcome), !outcome.stopped);
    if (state.route[1] === id) { $('run-stop-result').textContent = stopText(outcome); $('run-stop-result').hidden = false; }
  } catch (error) { flash(error.message, true); }
  refreshRuns();
}

async function stopAll() {
  const dialog = $('confirm-stop-all');
  dialog.returnValue = '';
  dialog.showModal();
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'confirm') return;
    flash('stopping every active run…');
    try {
      const result = await api('/v1/stop-all', { method: 'POST', body: { reason: $('stop-reason').value } });
      const slowest = Math.max(0, ...result.runs.map((r) => r.latency_ms));
      flash(`stopped ${result.stopped} of ${result.runs.length} runs (slowest ${slowest.toFixed(1)} ms); `
        + `${result.remaining_processes} processes left (kernel)`, result.stopped !== result.runs.length);
    } catch (error) { flash(error.message, true); }
    refreshRuns();
  }, { once: true });
}

async function showRun(id, full = true) {
  let detail;
  try { detail = await api(`/v1/runs/${id}`); } catch (error) { return flash(error.message, true); }
  const run = detail.summary;
  $('run-title').textContent = `${run.name} · ${run.id}`;
  const facts = [
    ['state', run.state], ['command', run.command.join(' ')], ['network', run.network],
    ['workspace', detail.record.workspace], ['processes', run.usage ? run.usage.processes : 0],
    ['memory', bytes(run.usage && run.usage.memory_bytes)],
    ['started', new Date(nsToMs(run.created_ns)).toLocaleString()],
  ];
  if (run.stop) facts.push(['stop', `${run.stop.reason} by ${run.stop.actor}, ${run.stop.latency_ms.toFixed(1)} ms, ${run.stop.remaining_processes} left`]);
  if (detail.approvals.length) facts.push(['waiting', `${detail.approvals.length} approval(s)`]);
  $('run-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
  $('run-stop').hidden = !['starting', 'running', 'stopping'].includes(run.state) || state.role !== 'operator';
  if (!full) return;
  $('run-stop-result').hidden = true;
  try {
    const events = await api(`/v1/runs/${id}/events`);
    $('timeline').replaceChildren();
    for (const event of events) appendEvent($('timeline'), { ...event, run: null, time_ns: String(event.time_ns) }, false);
  } catch (error) { flash(error.message, true); }
  try {
    const report = await api('/v1/audit/verify');
    $('chain-status').textContent = report.ok
      ? `verified: ${report.eventsChecked} events, ${report.checkpointsChecked} signed checkpoints`
      : `FAILED at event ${report.firstBadSequence}: ${report.problem}`;
    $('chain-status').className = report.ok ? 'ok' : 'error';
  } catch (error) { $('chain-status').textContent = error.message; }
}

// MARK: - Approvals

async function refreshApprovals() {
  if (!state.csrf) return;
  try { state.approvals = await api('/v1/approvals'); } catch (error) { return flash(error.message, true); }
  const count = $('approval-count');
  count.textContent = String(state.approvals.length);
  count.hidden = state.approvals.length === 0;
  $('approvals').replaceChildren(...state.approvals.map(approvalCard));
  $('approvals-empty').hidden = state.approvals.length > 0;
  tick();
}

function pretty(request) {
  try { return JSON.stringify(JSON.parse(request), null, 2); } catch (_) { return request; }
}

function approvalCard(approval) {
  const canDecide = state.role === 'approver' || state.role === 'operator';
  const decide = (approve, remember) => async () => {
    try {
      const path = `/v1/approvals/${approval.id}/${approve ? 'approve' : 'deny'}`;
      const body = approve ? { remember } : {};
      const decided = await api(path, { method: 'POST', body });
      flash(`${decided.state} ${decided.id}: ${decided.summary}`);
    } catch (error) { flash(error.message, true); }
    refreshApprovals();
  };
  return el('article', { class: 'approval', 'data-approval': approval.id, 'aria-label': `approval ${approval.id}` },
    el('header', {},
      el('span', { class: 'door', text: approval.door }),
      el('strong', { class: 'summary', text: approval.summary }),
      el('span', { class: 'countdown', 'data-expires': approval.expires_ns, text: '' })),
    el('p', { class: 'muted', text: `run ${approval.run} · ${approval.id}` }),
    el('ul', { class: 'reasons' }, ...approval.reasons.map((r) => el('li', { text: r }))),
    el('details', {}, el('summary', { text: 'the exact request' }), el('pre', { text: pretty(approval.request) })),
    canDecide ? el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'approve', onclick: decide(true, false), text: 'Approve once' }),
      el('button', { type: 'button', class: 'remember', onclick: decide(true, true), text: 'Approve and remember' }),
      el('button', { type: 'button', class: 'deny danger', onclick: decide(false, false), text: 'Deny' }))
      : el('p', { class: 'muted', text: 'Your role can only view approvals.' }));
}

function tick() {
  for (const node of document.querySelectorAll('.countdown')) {
    const left = Math.max(0, Math.round((nsToMs(node.dataset.expires) - Date.now()) / 1000));
    node.textContent = left > 0 ? `expires in ${left}s` : 'expired (denied)';
    node.classList.toggle('urgent', left <= 10);
  }
}

// MARK: - Reports and events

async function showReports() {
  let reports;
  try { reports = await api('/v1/reports'); } catch (error) { return flash(error.message, true); }
  $('reports').replaceChildren(...reports.map((r) => el('li', {},
    el('a', { href: `/v1/reports/${encodeURIComponent(r.name)}`, target: '_blank', rel: 'noopener', text: r.name }),
    el('span', { class: 'muted', text: ` ${r.kind}, ${bytes(r.bytes)}, ${new Date(nsToMs(r.modified_ns)).toLocaleString()}` }))));
  $('reports-empty').hidden = reports.length > 0;
}

async function showEvents() {
  if ($('event-log').children.length) return;
  try {
    const events = await api('/v1/events?n=200');
    for (const event of events) appendEvent($('event-log'), event, true);
  } catch (error) { flash(error.message, true); }
}

// MARK: - Routing

function route() {
  if (!state.csrf) return;
  const parts = (location.hash || '#/runs').slice(2).split('/').filter(Boolean);
  state.route = parts.length ? parts : ['runs'];
  for (const page of document.querySelectorAll('.page')) page.hidden = true;
  for (const link of document.querySelectorAll('nav a')) link.removeAttribute('aria-current');
  const [name, id] = state.route;
  const nav = $(`nav-${name}`);
  if (nav) nav.setAttribute('aria-current', 'page');
  if (name === 'runs' && id) { $('page-run').hidden = false; showRun(id); }
  else if (name === 'approvals') { $('page-approvals').hidden = false; refreshApprovals(); }
  else if (name === 'events') { $('page-events').hidden = false; showEvents(); }
  else if (name === 'reports') { $('page-reports').hidden = false; showReports(); }
  else { $('page-runs').hidden = false; refreshRuns(); }
}

async function start() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('stop-all').addEventListener('click', stopAll);
  $('run-stop').addEventListener('click', () => stopRun(state.route[1]));
  $('show-ended').addEventListener('change', refreshRuns);
  window.addEventListener('hashchange', route);
  setInterval(tick, 1000);
  // Resource use changes without an event: the runs table is refreshed every 2 s as well.
  setInterval(() => { if (state.route[0] === 'runs' && !state.route[1]) refreshRuns(); }, 2000);
  try {
    const session = await api('/v1/session');
    if (session.signed_in) signedIn(session); else showSignIn();
  } catch (_) { showSignIn(); }
}

start();
