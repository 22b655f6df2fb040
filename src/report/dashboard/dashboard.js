// infergate history dashboard: draws the embedded history as inline SVG, one
// chart per case and metric over the runs, with the change points found
// when the page was built, the baseline's value, and the commit, time and
// value of a point on hover, tap or keyboard focus. No library and nothing
// from the network: the page is one file.
//
// Every text from the data goes into the page through textContent or an
// attribute, never as markup. The page reports what it drew on <html>:
// data-state (loading, then ready), data-charts, data-change-points,
// data-render-ms (the last view), data-load-ms (navigation to first view); guard.js counts errors in data-errors.
(function () {
  'use strict';
  var root = document.documentElement;
  var fail = window.infergateFail || function (message) { throw new Error(message); };
  var NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('infergate-data').textContent);
  var words = data.words || {};
  var locale = data.lang === 'ko' ? 'ko-KR' : 'en-US';
  var tip = document.getElementById('tip');
  // Chart geometry in SVG user units; the SVG scales to its column.
  var VW = 760, VH = 240, ML = 58, MR = 62, MT = 26, MB = 40;
  var PW = VW - ML - MR, PH = VH - MT - MB;
  // Above this many runs a chart draws its line without a dot per run.
  var MAX_DOTS = 120;

  function has(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  // A word of the page's language: `{name}` filled from args, `{n}` from n;
  // English words with two forms take the first for n = 1.
  function t(key, args, n) {
    if (!has(words, key)) {
      fail('the page has no word ' + key);
      return key;
    }
    var forms = words[key];
    var form = forms.length === 2 && n === 1 ? forms[0] : forms[forms.length - 1];
    return form.replace(/\{([a-z0-9_]+)\}/g, function (all, name) {
      if (name === 'n' && n !== undefined) return String(n);
      return args && has(args, name) ? String(args[name]) : all;
    });
  }

  function h(tag, attrs, text) {
    var node = document.createElement(tag);
    setAll(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgNode(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    setAll(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setAll(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (name) {
      if (attrs[name] !== undefined && attrs[name] !== null) node.setAttribute(name, String(attrs[name]));
    });
  }

  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    return v.toLocaleString(locale, { maximumSignificantDigits: 4 });
  }

  function pct(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    var sign = x > 0 ? '+' : x < 0 ? '−' : '±';
    return sign + Math.abs(x * 100).toLocaleString(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + '%';
  }

  function shortCommit(c) {
    return c ? c.slice(0, 7) : '';
  }

  function day(time) {
    return time ? time.slice(0, 10) : '';
  }

  function when(time) {
    return time ? time.replace('T', ' ').replace(/\.\d+/, '').replace(/Z$/, ' UTC') : '–';
  }

  function isCommit(c) {
    return typeof c === 'string' && /^[0-9a-f]{7,64}$/i.test(c);
  }

  function repo() {
    var url = data.repo_url;
    return typeof url === 'string' && /^https?:\/\/[^\s]+$/.test(url) ? url.replace(/\/+$/, '') : null;
  }

  function commitLink(c) {
    var r = repo();
    if (!c) return document.createTextNode('–');
    if (!r || !isCommit(c)) return document.createTextNode(shortCommit(c) || c);
    return h('a', { href: r + '/commit/' + c, title: c, rel: 'noopener', target: '_blank' }, shortCommit(c));
  }

  function rangeLink(a, b) {
    var r = repo();
    var text = (shortCommit(a) || '?') + '..' + (shortCommit(b) || '?');
    if (!r || !isCommit(a) || !isCommit(b)) return document.createTextNode(text);
    return h('a', { href: r + '/compare/' + a + '...' + b, rel: 'noopener', target: '_blank' }, text);
  }

  function metricName(m) {
    return has(words, 'dash.metric.' + m.name) ? t('dash.metric.' + m.name) : m.name;
  }

  function metricLabel(m) {
    var phase = has(words, 'phase.' + m.phase) ? t('phase.' + m.phase) : m.phase;
    return phase + ' · ' + metricName(m);
  }

  // A change for the worse in this metric's direction.
  function worse(m, step) {
    return m.higher_is_better ? step < 0 : step > 0;
  }

  function niceTicks(lo, hi, count) {
    var raw = (hi - lo) / count;
    if (!(raw > 0) || !isFinite(raw)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(raw)));
    var e = raw / step;
    step *= e >= 7.5 ? 10 : e >= 3.5 ? 5 : e >= 1.5 ? 2 : 1;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 20; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }

  // --- State: the selection, kept in the address's #fragment -------------
  var state = { profile: null, metric: null, pinned: null };

  function readHash() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (pair) {
      if (!pair) return;
      var at = pair.indexOf('=');
      try {
        out[decodeURIComponent(at < 0 ? pair : pair.slice(0, at))] = at < 0 ? '' : decodeURIComponent(pair.slice(at + 1));
      } catch (e) {
        // A malformed fragment selects nothing.
      }
    });
    return out;
  }

  function writeHash() {
    var hash = '#profile=' + encodeURIComponent(state.profile.name) + '&metric=' + encodeURIComponent(state.metric);
    if (location.hash === hash) return;
    try {
      history.replaceState(null, '', hash);
    } catch (e) {
      // Some browsers refuse history changes on file:// pages; the selection still works.
    }
  }

  function metricsOf(profile) {
    var present = {};
    profile.series.forEach(function (s) { present[s.metric] = true; });
    return data.metrics.map(function (m, i) { return i; }).filter(function (i) { return present[i]; });
  }

  function defaultMetric(profile) {
    var present = metricsOf(profile);
    for (var i = 0; i < present.length; i++) {
      if (data.metrics[present[i]].key === 'warm/tokens_per_second') return 'warm/tokens_per_second';
    }
    return present.length ? data.metrics[present[0]].key : 'all';
  }

  function fillSelectors() {
    var profileSelect = document.getElementById('profile');
    profileSelect.textContent = '';
    data.profiles.forEach(function (p, i) {
      var option = h('option', { value: String(i) }, p.name + ' (' + t('dash.runs', {}, p.runs.length) + ')');
      if (p === state.profile) option.selected = true;
      profileSelect.appendChild(option);
    });
    var metricSelect = document.getElementById('metric');
    metricSelect.textContent = '';
    metricSelect.appendChild(h('option', { value: 'all' }, t('dash.all_metrics')));
    metricsOf(state.profile).forEach(function (i) {
      var m = data.metrics[i];
      var option = h('option', { value: m.key }, metricLabel(m) + ' (' + m.unit + ')');
      if (m.key === state.metric) option.selected = true;
      metricSelect.appendChild(option);
    });
    if (state.metric === 'all') metricSelect.value = 'all';
  }

  // --- The summary and the list of change points ---------------------------
  function summary(profile, shown) {
    var box = document.getElementById('summary');
    box.textContent = '';
    var runs = profile.runs;
    var first = runs[0], last = runs[runs.length - 1];
    var line = h('p');
    line.appendChild(document.createTextNode(
      t('dash.runs', {}, runs.length) + ' · ' + t('dash.range', { first: when(first.time), last: when(last.time) }) +
      ' · ' + t('dash.latest') + ' '));
    line.appendChild(commitLink(last.commit));
    line.appendChild(document.createTextNode(' · ' + t('dash.environment') + ': ' + profile.environments[last.environment]));
    box.appendChild(line);
    if (profile.baseline) {
      var recorded = [shortCommit(profile.baseline.commit), profile.baseline.recorded_at ? when(profile.baseline.recorded_at) : '']
        .filter(function (part) { return part; });
      box.appendChild(h('p', null, t('dash.baseline_from', { file: profile.baseline.file }) +
        (recorded.length ? ' (' + recorded.join(', ') + ')' : '')));
    } else {
      box.appendChild(h('p', null, t('dash.no_baseline', { profile: profile.name })));
    }
    box.appendChild(h('p', { 'class': 'hint' }, t('dash.hint')));

    var changes = document.getElementById('changes');
    changes.textContent = '';
    var all = [];
    shown.forEach(function (s) {
      s.changes.forEach(function (c) { all.push({ s: s, c: c }); });
    });
    all.sort(function (a, b) { return b.c.index - a.c.index || a.c.p - b.c.p; });
    var about = t('dash.detection', {
      significance: data.detection.significance,
      permutations: data.detection.permutations,
      min_segment: data.detection.min_segment
    });
    if (!all.length) {
      changes.appendChild(h('p', null, t('dash.no_change_points') + ' (' + about + ')'));
      return all.length;
    }
    // Most recent first; a long list starts folded, so that the charts stay in view.
    var details = h('details');
    details.open = all.length <= 10;
    details.appendChild(h('summary', null, t('dash.change_points', {}, all.length)));
    details.appendChild(h('p', { 'class': 'hint' }, about));
    var table = h('table');
    var head = h('tr');
    ['dash.col.commits', 'dash.col.case', 'dash.col.metric', 'dash.col.before_after', 'dash.col.step', 'dash.col.p']
      .forEach(function (key) { head.appendChild(h('th', null, t(key))); });
    table.appendChild(head);
    var limit = 50;
    all.slice(0, limit).forEach(function (item) {
      var m = data.metrics[item.s.metric];
      var c = item.c;
      var tr = h('tr');
      var cell = h('td');
      cell.appendChild(rangeLink(c.index > 0 ? profile.runs[c.index - 1].commit : null, profile.runs[c.index].commit));
      tr.appendChild(cell);
      tr.appendChild(h('td', null, item.s.case));
      tr.appendChild(h('td', null, metricLabel(m)));
      tr.appendChild(h('td', { 'class': 'num' }, num(c.before) + ' → ' + num(c.after) + ' ' + m.unit));
      tr.appendChild(h('td', { 'class': 'num ' + (worse(m, c.step) ? 'worse' : 'better') }, pct(c.step)));
      tr.appendChild(h('td', { 'class': 'num' }, num(c.p)));
      table.appendChild(tr);
    });
    details.appendChild(table);
    if (all.length > limit) details.appendChild(h('p', { 'class': 'hint' }, t('dash.more', { n: all.length - limit })));
    changes.appendChild(details);
    return all.length;
  }

  // --- One chart ------------------------------------------------------------
  function chart(profile, s) {
    var m = data.metrics[s.metric];
    var runs = profile.runs, values = s.values, n = values.length;
    var lo = Infinity, hi = -Infinity, points = 0, lastIndex = -1;
    values.forEach(function (v, i) {
      if (v === null) return;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      points += 1;
      lastIndex = i;
    });
    if (s.baseline !== null) {
      lo = Math.min(lo, s.baseline);
      hi = Math.max(hi, s.baseline);
    }
    if (lo === Infinity) {
      lo = 0;
      hi = 1;
    }
    if (lo === hi) {
      var pad = Math.abs(lo) * 0.05 || 1;
      lo -= pad;
      hi += pad;
    }
    var span = hi - lo;
    lo -= span * 0.08;
    hi += span * 0.08;
    function x(i) { return n > 1 ? ML + i * PW / (n - 1) : ML + PW / 2; }
    function y(v) { return MT + (hi - v) / (hi - lo) * PH; }
    function between(i) { return (x(i - 1) + x(i)) / 2; }

    var fig = h('figure', {
      'class': 'chart',
      'data-case': s.case,
      'data-metric': m.key,
      'data-points': points,
      'data-change-points': s.changes.length,
      'data-baseline': s.baseline === null ? '' : s.baseline
    });
    var caption = h('figcaption');
    caption.appendChild(h('span', { 'class': 'case' }, s.case));
    caption.appendChild(h('span', { 'class': 'metric' },
      metricLabel(m) + ' (' + m.unit + ') · ' + t(m.higher_is_better ? 'dash.higher_is_better' : 'dash.lower_is_better')));
    if (lastIndex >= 0) {
      var last = t('dash.latest') + ' ' + num(values[lastIndex]) + ' ' + m.unit;
      if (s.baseline !== null && s.baseline !== 0) {
        last += ' · ' + t('dash.vs_baseline') + ' ' + pct((values[lastIndex] - s.baseline) / Math.abs(s.baseline));
      }
      caption.appendChild(h('span', { 'class': 'last' }, last));
    }
    fig.appendChild(caption);

    var svg = svgNode('svg', {
      viewBox: '0 0 ' + VW + ' ' + VH,
      role: 'img',
      tabindex: '0',
      'aria-label': s.case + ', ' + metricLabel(m) + ', ' + t('dash.runs', {}, n)
    });
    var ticks = niceTicks(lo, hi, 4);
    ticks.forEach(function (v) {
      svg.appendChild(svgNode('line', { 'class': 'grid', x1: ML, x2: ML + PW, y1: y(v), y2: y(v) }));
      svg.appendChild(svgNode('text', { x: ML - 6, y: y(v) + 4, 'text-anchor': 'end' }, num(v)));
    });
    svg.appendChild(svgNode('line', { 'class': 'axis', x1: ML, x2: ML + PW, y1: MT + PH, y2: MT + PH }));
    // Run labels: the short commit (or run number) and the day, at up to 6 runs.
    var k = Math.min(n, 6);
    var seen = {};
    for (var j = 0; j < k; j++) {
      var i = k > 1 ? Math.round(j * (n - 1) / (k - 1)) : 0;
      if (seen[i]) continue;
      seen[i] = true;
      var anchor = k === 1 ? 'middle' : j === 0 ? 'start' : j === k - 1 ? 'end' : 'middle';
      var label = svgNode('text', { x: x(i), y: MT + PH + 15, 'text-anchor': anchor });
      label.appendChild(svgNode('tspan', { x: x(i) }, shortCommit(runs[i].commit) || '#' + (i + 1)));
      label.appendChild(svgNode('tspan', { x: x(i), dy: 13 }, day(runs[i].time)));
      svg.appendChild(label);
    }
    // Where the environment changed: runs either side are not one series.
    var bounds = [0];
    for (var e = 1; e < n; e++) {
      if (runs[e].environment !== runs[e - 1].environment) {
        var g = svgNode('g', { 'class': 'env', 'data-index': e });
        g.appendChild(svgNode('line', { x1: between(e), x2: between(e), y1: MT, y2: MT + PH }));
        g.appendChild(svgNode('title', null, t('dash.environment_changed') + ': ' + profile.environments[runs[e].environment]));
        svg.appendChild(g);
        bounds.push(e);
      }
    }
    s.changes.forEach(function (c) { bounds.push(c.index); });
    bounds.push(n);
    bounds.sort(function (a, b) { return a - b; });
    // The mean of each segment between change points: the steps.
    var mean = '';
    for (var b = 0; b + 1 < bounds.length; b++) {
      var sum = 0, count = 0;
      for (var q = bounds[b]; q < bounds[b + 1]; q++) {
        if (values[q] !== null) {
          sum += values[q];
          count += 1;
        }
      }
      if (count && bounds[b + 1] - 1 > bounds[b]) {
        mean += 'M' + x(bounds[b]).toFixed(1) + ' ' + y(sum / count).toFixed(1) + 'H' + x(bounds[b + 1] - 1).toFixed(1);
      }
    }
    if (s.baseline !== null) {
      var base = svgNode('g', { 'class': 'baseline' });
      base.appendChild(svgNode('line', { x1: ML, x2: ML + PW, y1: y(s.baseline), y2: y(s.baseline) }));
      base.appendChild(svgNode('text', { x: ML + PW + 4, y: y(s.baseline) + 4 }, t('dash.baseline')));
      base.appendChild(svgNode('title', null, t('dash.baseline') + ' ' + num(s.baseline) + ' ' + m.unit));
      svg.appendChild(base);
    }
    var line = '', dots = '', pen = false;
    values.forEach(function (v, i) {
      if (v === null) {
        pen = false;
        return;
      }
      var px = x(i).toFixed(1), py = y(v).toFixed(1);
      line += (pen ? 'L' : 'M') + px + ' ' + py;
      dots += 'M' + px + ' ' + py + 'h0';
      pen = true;
    });
    svg.appendChild(svgNode('path', { 'class': n > MAX_DOTS ? 'series dense' : 'series', d: line }));
    if (n <= MAX_DOTS && dots) svg.appendChild(svgNode('path', { 'class': 'dots', d: dots }));
    // Over the runs, so that the steps show on a dense history.
    if (s.changes.length && mean) svg.appendChild(svgNode('path', { 'class': 'mean', d: mean }));
    // Labels of change points close together take turns on two rows.
    var lastLabel = -Infinity, row = 0;
    s.changes.forEach(function (c) {
      var cx = c.index > 0 ? between(c.index) : x(0);
      row = cx - lastLabel < 52 ? 1 - row : 0;
      lastLabel = cx;
      var g = svgNode('g', { 'class': 'cp', 'data-index': c.index });
      g.appendChild(svgNode('line', { x1: cx, x2: cx, y1: MT - 14 + 12 * row, y2: MT + PH }));
      g.appendChild(svgNode('text', { x: cx + 3, y: MT - 16 + 12 * row }, pct(c.step)));
      g.appendChild(svgNode('title', null, changeText(profile, m, c)));
      svg.appendChild(g);
    });
    var cursorLine = svgNode('line', { 'class': 'cursor-line', y1: MT, y2: MT + PH, visibility: 'hidden' });
    var cursor = svgNode('circle', { 'class': 'cursor', r: 5, visibility: 'hidden' });
    svg.appendChild(cursorLine);
    svg.appendChild(cursor);
    var hit = svgNode('rect', { 'class': 'hit', x: ML - 6, y: MT, width: PW + 12, height: PH });
    svg.appendChild(hit);
    fig.appendChild(svg);

    var ctx = {
      profile: profile, s: s, m: m, svg: svg, cursor: cursor, cursorLine: cursorLine, x: x, y: y, at: lastIndex
    };
    function indexAt(event) {
      var rect = svg.getBoundingClientRect();
      var ux = (event.clientX - rect.left) * VW / rect.width;
      var i = n > 1 ? Math.round((ux - ML) * (n - 1) / PW) : 0;
      return nearest(values, Math.max(0, Math.min(n - 1, i)));
    }
    hit.addEventListener('pointermove', function (event) {
      if (state.pinned) return;
      var i = indexAt(event);
      if (i >= 0) show(ctx, i, false);
    });
    hit.addEventListener('pointerleave', function () {
      if (!state.pinned) hide();
    });
    hit.addEventListener('click', function (event) {
      var i = indexAt(event);
      if (i >= 0) show(ctx, i, true);
      event.stopPropagation();
    });
    svg.addEventListener('focus', function () {
      if (!state.pinned && ctx.at >= 0) show(ctx, ctx.at, false);
    });
    svg.addEventListener('blur', function () {
      if (!state.pinned) hide();
    });
    svg.addEventListener('keydown', function (event) {
      var i = ctx.at;
      if (event.key === 'ArrowLeft') i = step(values, i, -1);
      else if (event.key === 'ArrowRight') i = step(values, i, 1);
      else if (event.key === 'Home') i = nearest(values, 0);
      else if (event.key === 'End') i = lastIndex;
      else if (event.key === 'Enter') {
        if (i >= 0) show(ctx, i, !(state.pinned && state.pinned.ctx === ctx));
        return;
      } else return;
      event.preventDefault();
      if (i >= 0) show(ctx, i, state.pinned !== null);
    });
    return { fig: fig, ctx: ctx };
  }

  // The finite point nearest to run i, or -1.
  function nearest(values, i) {
    for (var d = 0; d < values.length; d++) {
      if (i - d >= 0 && values[i - d] !== null) return i - d;
      if (i + d < values.length && values[i + d] !== null) return i + d;
    }
    return -1;
  }

  function step(values, i, by) {
    for (var j = i + by; j >= 0 && j < values.length; j += by) {
      if (values[j] !== null) return j;
    }
    return i;
  }

  function changeText(profile, m, c) {
    var before = c.index > 0 ? profile.runs[c.index - 1].commit : null;
    return t('dash.change_at', {
      commits: (shortCommit(before) || '?') + '..' + (shortCommit(profile.runs[c.index].commit) || '?'),
      run: c.index + 1,
      before: num(c.before),
      after: num(c.after),
      unit: m.unit,
      step: pct(c.step),
      p: num(c.p)
    });
  }

  // --- The tooltip: commit, time and value of one run -------------------------
  function show(ctx, i, pin) {
    var s = ctx.s, m = ctx.m, run = ctx.profile.runs[i], v = s.values[i];
    ctx.at = i;
    tip.textContent = '';
    tip.appendChild(h('div', { 'class': 'head' }, s.case + ' · ' + metricLabel(m)));
    var dl = h('dl');
    function row(key, content) {
      dl.appendChild(h('dt', null, t(key)));
      var dd = h('dd');
      if (typeof content === 'string') dd.textContent = content;
      else dd.appendChild(content);
      dl.appendChild(dd);
    }
    row('dash.value', num(v) + ' ' + m.unit);
    if (s.baseline !== null && s.baseline !== 0) {
      row('dash.vs_baseline', pct((v - s.baseline) / Math.abs(s.baseline)) + ' (' + num(s.baseline) + ')');
    }
    row('dash.commit', commitLink(run.commit));
    row('dash.time', when(run.time));
    row('dash.run', '#' + (i + 1) + ' · ' + run.run_id);
    if (run.ref) row('dash.ref', run.ref);
    s.changes.forEach(function (c) {
      if (c.index === i) row('dash.change_point', changeText(ctx.profile, m, c));
    });
    tip.appendChild(dl);
    var px = ctx.x(i), py = ctx.y(v);
    setAll(ctx.cursor, { cx: px, cy: py, visibility: 'visible' });
    setAll(ctx.cursorLine, { x1: px, x2: px, visibility: 'visible' });
    if (state.current && state.current !== ctx) clearCursor(state.current);
    state.current = ctx;
    state.pinned = pin ? { ctx: ctx, index: i } : null;
    tip.classList.toggle('pinned', !!pin);
    tip.setAttribute('data-case', s.case);
    tip.setAttribute('data-index', String(i));
    tip.hidden = false;
    var rect = ctx.svg.getBoundingClientRect();
    var scale = rect.width / VW;
    var left = rect.left + window.scrollX + px * scale + 14;
    var top = rect.top + window.scrollY + py * scale + 14;
    var width = tip.offsetWidth;
    if (left + width > window.scrollX + document.documentElement.clientWidth - 8) left -= width + 28;
    tip.style.left = Math.max(window.scrollX + 4, left) + 'px';
    tip.style.top = top + 'px';
  }

  function clearCursor(ctx) {
    ctx.cursor.setAttribute('visibility', 'hidden');
    ctx.cursorLine.setAttribute('visibility', 'hidden');
  }

  function hide() {
    tip.hidden = true;
    tip.classList.remove('pinned');
    state.pinned = null;
    if (state.current) clearCursor(state.current);
    state.current = null;
  }

  document.addEventListener('click', function (event) {
    if (state.pinned && !tip.contains(event.target)) hide();
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') hide();
  });

  // --- The page -------------------------------------------------------------
  function render() {
    var started = performance.now();
    root.setAttribute('data-state', 'rendering');
    hide();
    var profile = state.profile;
    var charts = document.getElementById('charts');
    charts.textContent = '';
    var shown = profile.series.filter(function (s) {
      return state.metric === 'all' || data.metrics[s.metric].key === state.metric;
    });
    var changes = summary(profile, shown);
    var made = [];
    var fragment = document.createDocumentFragment();
    shown.forEach(function (s) {
      var c = chart(profile, s);
      fragment.appendChild(c.fig);
      made.push(c.ctx);
    });
    charts.appendChild(fragment);
    root.setAttribute('data-profile', profile.name);
    root.setAttribute('data-metric', state.metric);
    root.setAttribute('data-charts', String(made.length));
    root.setAttribute('data-change-points', String(changes));
    root.setAttribute('data-render-ms', (performance.now() - started).toFixed(1));
    root.setAttribute('data-state', 'ready');
    return made;
  }

  function select(profileIndex, metric) {
    state.profile = data.profiles[profileIndex];
    var valid = metric === 'all' || metricsOf(state.profile).some(function (i) { return data.metrics[i].key === metric; });
    state.metric = valid ? metric : defaultMetric(state.profile);
    fillSelectors();
    writeHash();
    return render();
  }

  document.getElementById('profile-label').textContent = t('dash.profile');
  document.getElementById('metric-label').textContent = t('dash.metric');
  if (!data.profiles.length) {
    document.getElementById('charts').appendChild(h('p', { 'class': 'empty' }, t('dash.no_data')));
    document.getElementById('profile').disabled = true;
    document.getElementById('metric').disabled = true;
    root.setAttribute('data-charts', '0');
    root.setAttribute('data-change-points', '0');
    root.setAttribute('data-state', 'ready');
    return;
  }
  document.getElementById('profile').addEventListener('change', function (event) {
    select(Number(event.target.value), state.metric);
  });
  document.getElementById('metric').addEventListener('change', function (event) {
    select(data.profiles.indexOf(state.profile), event.target.value);
  });
  var wanted = readHash();
  var start = 0;
  data.profiles.forEach(function (p, i) {
    if (p.name === wanted.profile) start = i;
  });
  var made = select(start, has(wanted, 'metric') ? wanted.metric : null);
  // `#...&case=ID&run=N` opens on the tooltip of run N (from 1) of that case's chart.
  if (has(wanted, 'case')) {
    var run = Number(wanted.run) - 1;
    made.forEach(function (ctx) {
      if (ctx.s.case !== wanted.case || state.pinned) return;
      var i = run >= 0 && run < ctx.s.values.length ? nearest(ctx.s.values, run) : ctx.at;
      if (i >= 0) {
        ctx.svg.scrollIntoView({ block: 'center' });
        show(ctx, i, true);
      }
    });
  }
  // Milliseconds from the start of navigation to the first view drawn (parsing included).
  root.setAttribute('data-load-ms', performance.now().toFixed(1));
  window.addEventListener('hashchange', function () {
    var next = readHash();
    var index = 0;
    data.profiles.forEach(function (p, i) {
      if (p.name === next.profile) index = i;
    });
    if (data.profiles[index] !== state.profile || next.metric !== state.metric) select(index, next.metric);
  });
})();
