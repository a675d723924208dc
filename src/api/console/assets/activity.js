// The Activity feed: calls arrive from /activity/stream (server-sent events, already filtered by the server) and
// are applied to the table at most once per animation frame, the newest on top, at most MAX_ROWS kept. A row
// changes in place as its call moves on (decided, approved, succeeded). Text only, never markup from the data.
(() => {
  'use strict';
  const MAX_ROWS = 500;
  const MAX_QUEUED = 5000;
  const table = document.getElementById('feed');
  const body = table.tBodies[0];
  const status = document.getElementById('feed-status');
  const pause = document.getElementById('pause');
  const rows = new Map();
  let queue = [];
  let scheduled = false;
  let paused = false;
  let seen = 0;

  const source = new EventSource(table.dataset.stream);
  source.addEventListener('calls', (event) => take(JSON.parse(event.data)));
  source.addEventListener('open', () => say());
  source.addEventListener('error', () => say('reconnecting…'));

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) schedule();
    say();
  });

  function take(calls) {
    seen += calls.length;
    for (const call of calls) queue.push(call);
    if (queue.length > MAX_QUEUED) queue = queue.slice(-MAX_QUEUED);
    if (paused) say();
    else schedule();
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
  }

  function flush() {
    scheduled = false;
    if (paused) return;
    const latest = new Map();
    for (const call of queue) latest.set(call.jobId, call);
    queue = [];
    const fresh = [];
    for (const call of latest.values()) {
      const row = rowOf(call);
      const old = rows.get(call.jobId);
      if (old) old.replaceWith(row);
      else fresh.push(row);
      rows.set(call.jobId, row);
    }
    fresh.sort((a, b) => Number(b.dataset.seq) - Number(a.dataset.seq));
    const top = document.createDocumentFragment();
    for (const row of fresh) top.appendChild(row);
    body.prepend(top);
    while (body.rows.length > MAX_ROWS) {
      const last = body.lastElementChild;
      rows.delete(last.dataset.job);
      last.remove();
    }
    say();
  }

  function say(problem) {
    const state = problem || (paused ? `paused, ${queue.length} waiting` : 'live');
    status.textContent = `${state} · ${seen} updates received · ${body.rows.length} calls shown`;
  }

  function rowOf(call) {
    const row = document.createElement('tr');
    row.dataset.job = call.jobId;
    row.dataset.seq = String(call.seq);
    cell(row, new Date(call.at).toLocaleTimeString(), { title: new Date(call.at).toISOString() });
    if (call.session) cell(row, call.session.slice(0, 8), { href: `sessions?session=${encodeURIComponent(call.session)}`, title: call.session, mono: true });
    else cell(row, '—');
    cell(row, call.principal);
    cell(row, call.tool || '—', { href: `calls/${encodeURIComponent(call.jobId)}`, mono: true });
    const decision = cell(row, '');
    if (call.decision) badge(decision, call.decision);
    if (call.ruleIds.length) decision.append(' ', small(call.ruleIds.join(', ')));
    const approval = call.approval;
    cell(row, approval ? [approval.channel, approval.state && `${approval.state}${approval.by ? ` by ${approval.by}` : ''}`, approval.waitMs !== undefined && `waited ${ms(approval.waitMs)}`].filter(Boolean).join(' · ') || 'waiting' : '');
    cell(row, call.durationMs === undefined ? '…' : ms(call.durationMs));
    badge(cell(row, ''), call.outcome);
    return row;
  }

  function cell(row, text, options = {}) {
    const td = document.createElement('td');
    if (options.mono) td.className = 'mono';
    if (options.title) td.title = options.title;
    if (options.href) {
      const a = document.createElement('a');
      a.href = options.href;
      a.textContent = text;
      td.appendChild(a);
    } else td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function badge(parent, text) {
    const span = document.createElement('span');
    span.className = `state ${text}`;
    span.textContent = text;
    parent.appendChild(span);
  }

  function small(text) {
    const span = document.createElement('span');
    span.className = 'muted';
    span.textContent = text;
    return span;
  }

  function ms(value) {
    return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`;
  }
})();
