// The Overview's charts, drawn as SVG from GET api/overview and redrawn every 15 s. No library, no inline
// style (the CSP allows none): colours are SVG presentation attributes.
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var W = 640, H = 220, PAD = { l: 44, r: 10, t: 10, b: 26 };
  var COLOURS = { allow: '#2da44e', allow_with_constraints: '#1b7c83', throttle: '#8250df', require_approval: '#bf8700', deny: '#cf222e', none: '#8c959f' };
  var LINES = [
    ['gatehouseP50', 'Gatehouse p50', '#0969da', ''],
    ['gatehouseP95', 'Gatehouse p95', '#0969da', '5 4'],
    ['upstreamP50', 'upstream p50', '#bc4c00', ''],
    ['upstreamP95', 'upstream p95', '#bc4c00', '5 4'],
  ];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, anchor) {
    var t = el('text', { x: x, y: y, 'font-size': 11, fill: '#59636e', 'text-anchor': anchor || 'start' }, parent);
    t.textContent = content;
    return t;
  }
  function frame(container, max, unit) {
    container.textContent = '';
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', preserveAspectRatio: 'none', focusable: 'false' }, container);
    for (var i = 0; i <= 4; i++) {
      var y = PAD.t + ((H - PAD.t - PAD.b) * i) / 4;
      el('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, stroke: '#e1e4e8' }, svg);
      text(svg, PAD.l - 4, y + 4, fmt((max * (4 - i)) / 4) + unit, 'end');
    }
    return svg;
  }
  function fmt(n) {
    return n >= 100 || n === 0 ? String(Math.round(n)) : n.toFixed(1);
  }
  function clock(ms) {
    var d = new Date(ms);
    return ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
  }
  function xAxis(svg, minutes) {
    var n = minutes.length, step = (W - PAD.l - PAD.r) / n;
    for (var i = 0; i < n; i += 15) text(svg, PAD.l + i * step, H - 8, clock(minutes[i]));
    text(svg, W - PAD.r, H - 8, 'now', 'end');
    return step;
  }
  function legend(container, items) {
    var ul = document.createElement('ul');
    ul.className = 'legend';
    items.forEach(function (item) {
      var li = document.createElement('li');
      var swatch = el('svg', { width: 14, height: 10 }, null);
      el('rect', { width: 14, height: 10, fill: item[1] }, swatch);
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(' ' + item[0]));
      ul.appendChild(li);
    });
    container.appendChild(ul);
  }

  function callsChart(container, calls) {
    var decisions = Object.keys(calls.byDecision).sort();
    var totals = calls.minutes.map(function (_, i) {
      return decisions.reduce(function (sum, d) { return sum + calls.byDecision[d][i]; }, 0);
    });
    var max = Math.max(1, Math.max.apply(null, totals));
    var svg = frame(container, max, '');
    var step = xAxis(svg, calls.minutes), plot = H - PAD.t - PAD.b;
    calls.minutes.forEach(function (_, i) {
      var y = H - PAD.b;
      decisions.forEach(function (d) {
        var n = calls.byDecision[d][i];
        if (!n) return;
        var h = (n / max) * plot;
        y -= h;
        var bar = el('rect', { x: PAD.l + i * step + 1, y: y, width: Math.max(1, step - 2), height: h, fill: COLOURS[d] || '#57606a', 'class': 'bar', 'data-decision': d }, svg);
        el('title', {}, bar).textContent = clock(calls.minutes[i]) + ' ' + d + ': ' + n;
      });
    });
    legend(container, decisions.map(function (d) { return [d + ' (' + calls.byDecision[d].reduce(function (a, b) { return a + b; }, 0) + ')', COLOURS[d] || '#57606a']; }));
  }

  function durationChart(container, calls) {
    var all = [];
    LINES.forEach(function (l) { calls.duration[l[0]].forEach(function (v) { if (v !== null) all.push(v); }); });
    var max = Math.max(1, Math.max.apply(null, all.length ? all : [1]));
    var svg = frame(container, max, '');
    var step = xAxis(svg, calls.minutes), plot = H - PAD.t - PAD.b;
    LINES.forEach(function (l) {
      var points = [];
      calls.duration[l[0]].forEach(function (v, i) {
        if (v === null) return;
        points.push([PAD.l + i * step + step / 2, H - PAD.b - (v / max) * plot]);
      });
      if (points.length === 0) return;
      if (points.length === 1) points.push([points[0][0] + 2, points[0][1]]);
      el('polyline', { points: points.map(function (p) { return p.join(','); }).join(' '), fill: 'none', stroke: l[2], 'stroke-width': 2, 'stroke-dasharray': l[3] || 'none', 'class': 'series', 'data-series': l[0] }, svg);
      points.forEach(function (p) { el('circle', { cx: p[0], cy: p[1], r: 2.5, fill: l[2] }, svg); });
    });
    legend(container, LINES.map(function (l) { return [l[1], l[2]]; }));
  }

  function approvals(list, chart, data) {
    var waits = data.approvals.waitsMs;
    list.textContent = data.approvals.pending === 0 ? 'None pending.' : data.approvals.pending + ' pending; the oldest has waited ' + human(waits[0]) + '.';
    chart.textContent = '';
    if (waits.length === 0) return;
    var shown = waits.slice(0, 10), max = Math.max.apply(null, shown), rowH = 18;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + (shown.length * rowH + 4), width: '100%', focusable: 'false' }, chart);
    shown.forEach(function (w, i) {
      el('rect', { x: 90, y: i * rowH + 2, width: Math.max(2, ((W - 100) * w) / max), height: rowH - 5, fill: '#bf8700', 'class': 'bar' }, svg);
      text(svg, 84, i * rowH + 14, human(w), 'end');
    });
  }

  function chain(box, data) {
    box.textContent = '';
    var c = data.chain;
    var p = document.createElement('p');
    if (!c) {
      p.textContent = 'Not verified yet (the first verification runs in the background), or this mode keeps no chain here: use gatehouse audit verify.';
      box.appendChild(p);
      return;
    }
    var status = document.createElement('strong');
    status.className = c.ok ? 'ok' : 'bad';
    status.id = 'chain-status';
    status.textContent = c.ok ? 'verified' : 'does not verify (' + c.code + ')';
    p.appendChild(status);
    p.appendChild(document.createTextNode(' up to record ' + (c.head ? c.head.seq : c.records) + ', checked ' + new Date(c.verifiedAt).toLocaleTimeString() + '.'));
    box.appendChild(p);
    var dl = document.createElement('dl');
    function row(k, v) {
      var dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = k;
      dd.textContent = v;
      dl.appendChild(dt);
      dl.appendChild(dd);
    }
    if (c.brokenAt) row('Broken at', 'seq ' + c.brokenAt.seq + ': ' + c.brokenAt.reason);
    row('Checkpoints', c.checkpoints.count + (c.checkpoints.checked ? ', signatures checked' : ', signatures not checked (no key)'));
    row('Last checkpoint', c.checkpoints.last ? 'covers record ' + c.checkpoints.last.seq + ', signed ' + new Date(c.checkpoints.last.at).toLocaleString() : 'none');
    row('Not yet covered', c.checkpoints.uncovered + ' records');
    box.appendChild(dl);
  }

  function human(ms) {
    var s = Math.round(ms / 1000);
    return s < 60 ? s + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : (s / 3600).toFixed(1) + ' h';
  }

  var status = document.getElementById('overview-status');
  function load() {
    fetch(new URL('api/overview', document.baseURI), { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error ? body.error.message + ' (' + body.error.code + ')' : 'HTTP ' + r.status);
          return body;
        });
      })
      .then(function (data) {
        if (data.calls) {
          callsChart(document.getElementById('calls-chart'), data.calls);
          durationChart(document.getElementById('duration-chart'), data.calls);
        }
        approvals(document.getElementById('approvals'), document.getElementById('approvals-chart'), data);
        chain(document.getElementById('chain'), data);
        status.textContent = data.calls ? data.calls.calls + ' calls in the last hour' + (data.calls.complete ? '' : ' (the oldest minutes are partial)') + '. Updated ' + new Date(data.now).toLocaleTimeString() + '.' : 'This gateway has no audit trail to chart.';
        document.body.setAttribute('data-overview', 'drawn');
      })
      .catch(function (err) {
        status.textContent = 'Could not load the overview: ' + err.message;
      });
  }
  load();
  setInterval(load, 15000);
})();
