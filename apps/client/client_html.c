/* hestat-client decrypt --html FILE: the report as one self-contained page.
 *
 * The page holds everything it shows: Chart.js (Debian's libjs-chart.js,
 * read from CLIENT_CHARTJS or $HESTAT_CHARTJS when the page is written and
 * inlined), the rows of decrypted_results.csv (the same bytes, as a JSON
 * string), the study's public parameters, and the script below that draws
 * the summary table, the correlation heatmap, histograms, group comparisons,
 * regression tables, the accuracy against the plaintext (with --compare) and
 * the study's parameters and security level. Opening it fetches nothing.
 * Every number shown from the CSV carries its CSV text in data-value (and
 * its row in data-stat, data-var, data-group, data-col), so a test can check
 * what a browser shows against the file; errors in the page land in
 * #page-errors and body[data-rendered] says whether it drew cleanly.
 * The page's script and style are the two string constants below. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "apps/client/client.h"

#define CLIENT_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"
#define CHARTJS_MAX ((size_t)16 << 20)

static const char page_css[] =
    "body { font: 14px/1.45 system-ui, -apple-system, \"Segoe UI\", sans-serif; color: #222; margin: 0; background: #fafafa; }\n"
    "header { background: #24324a; color: #fff; padding: 18px 32px; }\n"
    "header h1 { margin: 0 0 4px; font-size: 22px; }\n"
    "header p { margin: 0; opacity: .85; }\n"
    "main { padding: 8px 32px 40px; max-width: 1400px; }\n"
    "section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 6px 20px 16px; margin: 18px 0; overflow-x: auto; }\n"
    "h2 { font-size: 18px; margin: 12px 0 4px; }\n"
    "h3 { font-size: 15px; margin: 14px 0 4px; }\n"
    "p.note { color: #666; margin: 0 0 10px; }\n"
    "table { border-collapse: collapse; margin: 8px 0; }\n"
    "th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }\n"
    "thead th { border-bottom: 2px solid #ccc; font-weight: 600; }\n"
    "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
    "figure { margin: 10px 0 18px; }\n"
    "figcaption { font-weight: 600; margin-bottom: 4px; }\n"
    ".chart { margin: 6px 0; }\n"
    "#page-errors { background: #fee; color: #900; padding: 10px 32px; margin: 0; }\n";

static const char page_js[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var errors = [];\n"
    "  function fail(msg) {\n"
    "    errors.push(String(msg));\n"
    "    var e = document.getElementById('page-errors');\n"
    "    e.textContent = errors.join('\\n');\n"
    "    e.hidden = false;\n"
    "  }\n"
    "  window.addEventListener('error', function (ev) { fail(ev.message); });\n"
    "  var consoleError = console.error;\n"
    "  console.error = function () { fail([].join.call(arguments, ' ')); consoleError.apply(console, arguments); };\n"
    "\n"
    "  function parseCSV(text) {\n"
    "    var out = [], row = [], field = '', q = false, i, c;\n"
    "    for (i = 0; i < text.length; i++) {\n"
    "      c = text[i];\n"
    "      if (q) {\n"
    "        if (c === '\"' && text[i + 1] === '\"') { field += '\"'; i++; }\n"
    "        else if (c === '\"') q = false;\n"
    "        else field += c;\n"
    "      } else if (c === '\"') q = true;\n"
    "      else if (c === ',') { row.push(field); field = ''; }\n"
    "      else if (c === '\\n') { row.push(field); out.push(row); row = []; field = ''; }\n"
    "      else if (c !== '\\r') field += c;\n"
    "    }\n"
    "    if (field !== '' || row.length) { row.push(field); out.push(row); }\n"
    "    return out;\n"
    "  }\n"
    "  function num(s) { return s === undefined || s === '' ? NaN : Number(s); }\n"
    "  function fmt(s) {\n"
    "    var v = num(s);\n"
    "    if (!isFinite(v)) return s;\n"
    "    if (v !== 0 && (Math.abs(v) >= 1e7 || Math.abs(v) < 1e-4)) return v.toExponential(7);\n"
    "    return String(Number(v.toPrecision(8)));\n"
    "  }\n"
    "  function el(tag, parent, text, cls) {\n"
    "    var e = document.createElement(tag);\n"
    "    if (text !== undefined) e.textContent = text;\n"
    "    if (cls) e.className = cls;\n"
    "    if (parent) parent.appendChild(e);\n"
    "    return e;\n"
    "  }\n"
    "  var main = document.getElementById('report');\n"
    "  function section(title, note) {\n"
    "    var s = el('section', main);\n"
    "    el('h2', s, title);\n"
    "    if (note) el('p', s, note, 'note');\n"
    "    return s;\n"
    "  }\n"
    "  function tableIn(parent, headers) {\n"
    "    var t = el('table', parent), tr = el('tr', el('thead', t));\n"
    "    headers.forEach(function (h) { el('th', tr, h); });\n"
    "    return el('tbody', t);\n"
    "  }\n"
    "  /* A cell showing one number of the CSV, keyed so that a test can find the row. */\n"
    "  function csvCell(tr, row, col) {\n"
    "    var td = el('td', tr, '', 'num');\n"
    "    if (!row || row[col] === undefined) { td.textContent = '\\u2013'; return td; }\n"
    "    row.shown = true;\n"
    "    td.textContent = fmt(row[col]);\n"
    "    td.setAttribute('data-value', row[col]);\n"
    "    td.setAttribute('data-stat', row.statistic);\n"
    "    td.setAttribute('data-var', row.variable);\n"
    "    td.setAttribute('data-group', row.group);\n"
    "    td.setAttribute('data-col', col);\n"
    "    return td;\n"
    "  }\n"
    "  var charts = 0;\n"
    "  function chart(parent, cfg, w, h) {\n"
    "    var box = el('div', parent, undefined, 'chart');\n"
    "    var c = el('canvas', box);\n"
    "    c.width = w; c.height = h;\n"
    "    cfg.options = Object.assign({ animation: false, responsive: false, devicePixelRatio: 1 }, cfg.options || {});\n"
    "    cfg.options.plugins = Object.assign({ legend: { display: false } }, cfg.options.plugins || {});\n"
    "    new Chart(c.getContext('2d'), cfg);\n"
    "    charts++;\n"
    "  }\n"
    "\n"
    "  var data = JSON.parse(document.getElementById('hestat-data').textContent);\n"
    "  var lines = parseCSV(data.csv), head = lines.shift();\n"
    "  var rows = lines.filter(function (l) { return l.length >= 4; }).map(function (l) {\n"
    "    var r = {};\n"
    "    head.forEach(function (h, i) { r[h] = l[i]; });\n"
    "    return r;\n"
    "  });\n"
    "  var compare = head.indexOf('plaintext') >= 0;\n"
    "  var byKey = {};\n"
    "  rows.forEach(function (r) { byKey[r.statistic + '\\u0001' + r.variable + '\\u0001' + r.group] = r; });\n"
    "  function find(stat, v, g) { return byKey[stat + '\\u0001' + v + '\\u0001' + (g || '')]; }\n"
    "  function derived(v) { return v.indexOf('=') >= 0 || v.indexOf(' in [') >= 0 || v.slice(0, 3) === 'cc:'; }\n"
    "  var BLUE = '#3b6fb6', ORANGE = '#e08a2c', GREY = '#888';\n"
    "\n"
    "  document.getElementById('subtitle').textContent = 'hestat ' + data.version + ', ' + data.generated +\n"
    "    (compare ? ', compared with ' + data.compare : '') + '. Every number below is decrypted from encrypted sums; ' +\n"
    "    'nothing on this page was fetched from a network.';\n"
    "\n"
    "  /* ---- summary ---- */\n"
    "  var vars = [];\n"
    "  rows.forEach(function (r) {\n"
    "    if (r.statistic === 'count' && r.group === '' && !derived(r.variable)) vars.push(r.variable);\n"
    "  });\n"
    "  var bins = {};\n"
    "  rows.forEach(function (r) {\n"
    "    var m = r.statistic === 'hist' && /^(.*) in \\[([^:]*):([^\\])]*)[\\])]$/.exec(r.variable);\n"
    "    if (m) (bins[m[1]] = bins[m[1]] || []).push({ lo: Number(m[2]), hi: Number(m[3]), row: r, label: r.variable.slice(m[1].length + 4) });\n"
    "  });\n"
    "  if (vars.length) {\n"
    "    var s = section('Summary', 'count, mean and standard deviation per column (pairwise-complete: missing values left out)' +\n"
    "      '; min and max are not computed on ciphertexts: where a histogram was asked for, its outermost non-empty bins bound them.');\n"
    "    var hs = ['column', 'count', 'mean', 'sd'];\n"
    "    if (compare) hs = hs.concat(['plaintext mean', 'rel. error of mean', 'plaintext sd']);\n"
    "    var tb = tableIn(s, hs.concat(['min \\u2265', 'max \\u2264']));\n"
    "    vars.forEach(function (v) {\n"
    "      var tr = el('tr', tb);\n"
    "      el('th', tr, v);\n"
    "      csvCell(tr, find('count', v), 'value');\n"
    "      csvCell(tr, find('mean', v), 'value');\n"
    "      csvCell(tr, find('sd', v), 'value');\n"
    "      if (compare) {\n"
    "        csvCell(tr, find('mean', v), 'plaintext');\n"
    "        csvCell(tr, find('mean', v), 'rel_error');\n"
    "        csvCell(tr, find('sd', v), 'plaintext');\n"
    "      }\n"
    "      var b = (bins[v] || []).filter(function (x) { return num(x.row.value) > 0; });\n"
    "      el('td', tr, b.length ? String(b[0].lo) : '\\u2013', 'num');\n"
    "      el('td', tr, b.length ? String(b[b.length - 1].hi) : '\\u2013', 'num');\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- correlations ---- */\n"
    "  var cvars = vars.filter(function (a) {\n"
    "    return vars.some(function (b) { return find('corr', a + ':' + b) || find('corr', b + ':' + a); });\n"
    "  });\n"
    "  function corrRow(a, b) { return find('corr', a + ':' + b) || find('corr', b + ':' + a); }\n"
    "  if (cvars.length > 1) {\n"
    "    var s = section('Correlations', 'Pearson correlation of every pair of columns (pairwise-complete): red positive, ' +\n"
    "      'blue negative, white 0; hover a cell for its value, or open the matrix below.');\n"
    "    var pts = [], n = cvars.length, cell = Math.max(14, Math.min(40, Math.floor(560 / n)));\n"
    "    cvars.forEach(function (a, i) {\n"
    "      cvars.forEach(function (b, j) {\n"
    "        var r = i === j ? null : corrRow(a, b), v = i === j ? 1 : num(r && r.value);\n"
    "        if (isFinite(v)) pts.push({ x: j, y: n - 1 - i, v: v, a: a, b: b });\n"
    "      });\n"
    "    });\n"
    "    function colour(v) {\n"
    "      var t = Math.max(-1, Math.min(1, v)), k = Math.abs(t);\n"
    "      var c = t > 0 ? [200, 60, 50] : [50, 100, 190];\n"
    "      return 'rgb(' + c.map(function (x) { return Math.round(255 - (255 - x) * k); }).join(',') + ')';\n"
    "    }\n"
    "    var names = function (list) { return function (val) { return list[val] !== undefined ? list[val] : ''; }; };\n"
    "    var atCells = function (axis) { axis.ticks = cvars.map(function (_, i) { return { value: i }; }); };\n"
    "    chart(s, {\n"
    "      type: 'scatter',\n"
    "      data: { datasets: [{ data: pts, pointStyle: 'rect', radius: cell / 2, hoverRadius: cell / 2,\n"
    "        backgroundColor: pts.map(function (p) { return colour(p.v); }), borderWidth: 0 }] },\n"
    "      options: {\n"
    "        scales: {\n"
    "          x: { min: -0.5, max: n - 0.5, afterBuildTicks: atCells, ticks: { autoSkip: false, maxRotation: 90, minRotation: 60, callback: names(cvars) }, grid: { display: false } },\n"
    "          y: { min: -0.5, max: n - 0.5, afterBuildTicks: atCells, ticks: { autoSkip: false, callback: names(cvars.slice().reverse()) }, grid: { display: false } }\n"
    "        },\n"
    "        plugins: { tooltip: { callbacks: { label: function (c) { var p = c.raw; return p.a + ' \\u00d7 ' + p.b + ': ' + p.v.toFixed(4); } } } }\n"
    "      }\n"
    "    }, cell * n + 140, cell * n + 130);\n"
    "    var d = el('details', s);\n"
    "    el('summary', d, 'the matrix as numbers');\n"
    "    var tb = tableIn(d, [''].concat(cvars));\n"
    "    cvars.forEach(function (a, i) {\n"
    "      var tr = el('tr', tb);\n"
    "      el('th', tr, a);\n"
    "      cvars.forEach(function (b, j) {\n"
    "        if (i === j) el('td', tr, '1', 'num');\n"
    "        else csvCell(tr, find('corr', a + ':' + b) ? find('corr', a + ':' + b) : find('corr', b + ':' + a), 'value');\n"
    "      });\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- histograms ---- */\n"
    "  var hcols = Object.keys(bins);\n"
    "  if (hcols.length) {\n"
    "    var s = section('Histograms', 'counts per bin over public bin edges (each bin is an encrypted 0/1 column the client added).');\n"
    "    hcols.forEach(function (col) {\n"
    "      var f = el('figure', s);\n"
    "      el('figcaption', f, col);\n"
    "      chart(f, { type: 'bar', data: { labels: bins[col].map(function (b) { return b.label; }),\n"
    "        datasets: [{ data: bins[col].map(function (b) { return num(b.row.value); }), backgroundColor: BLUE }] },\n"
    "        options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'rows' } } } } }, 520, 260);\n"
    "      var tb = tableIn(f, compare ? ['bin', 'count', 'plaintext'] : ['bin', 'count']);\n"
    "      bins[col].forEach(function (b) {\n"
    "        var tr = el('tr', tb);\n"
    "        el('th', tr, b.label);\n"
    "        csvCell(tr, b.row, 'value');\n"
    "        if (compare) csvCell(tr, b.row, 'plaintext');\n"
    "      });\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- groups ---- */\n"
    "  var fams = {}, order = [];\n"
    "  rows.forEach(function (r) {\n"
    "    if (!r.group || ['count', 'mean', 'sd'].indexOf(r.statistic) < 0 || derived(r.variable)) return;\n"
    "    var f = r.group.slice(0, r.group.indexOf('='));\n"
    "    if (!fams[f]) { fams[f] = { levels: [], vars: [] }; order.push(f); }\n"
    "    if (fams[f].levels.indexOf(r.group) < 0) fams[f].levels.push(r.group);\n"
    "    if (fams[f].vars.indexOf(r.variable) < 0) fams[f].vars.push(r.variable);\n"
    "  });\n"
    "  if (order.length) {\n"
    "    var s = section('Group comparisons', 'means by group; the chart shows each group mean relative to the column\\u2019s overall mean.');\n"
    "    var palette = [BLUE, ORANGE, '#4a9b5c', '#9b59b6', '#c0392b', '#16a085', '#7f8c8d', '#d35400'];\n"
    "    order.forEach(function (f) {\n"
    "      var fam = fams[f], fig = el('figure', s);\n"
    "      el('figcaption', fig, 'by ' + f);\n"
    "      chart(fig, { type: 'bar', data: { labels: fam.vars, datasets: fam.levels.map(function (g, k) {\n"
    "        return { label: g, backgroundColor: palette[k % palette.length], data: fam.vars.map(function (v) {\n"
    "          var m = num((find('mean', v, g) || {}).value), all = num((find('mean', v) || {}).value);\n"
    "          return isFinite(m) && all ? 100 * m / all : null; }) };\n"
    "      }) }, options: { plugins: { legend: { display: true } }, scales: { y: { title: { display: true, text: '% of overall mean' } } } } },\n"
    "      Math.max(520, 46 * fam.vars.length * Math.max(1, fam.levels.length / 2)), 300);\n"
    "      var hs = ['column'];\n"
    "      fam.levels.forEach(function (g) { hs.push(g + ' n', g + ' mean', g + ' sd'); });\n"
    "      var tb = tableIn(fig, hs);\n"
    "      fam.vars.forEach(function (v) {\n"
    "        var tr = el('tr', tb);\n"
    "        el('th', tr, v);\n"
    "        fam.levels.forEach(function (g) {\n"
    "          csvCell(tr, find('count', v, g), 'value');\n"
    "          csvCell(tr, find('mean', v, g), 'value');\n"
    "          csvCell(tr, find('sd', v, g), 'value');\n"
    "        });\n"
    "      });\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- regressions ---- */\n"
    "  var models = [];\n"
    "  rows.forEach(function (r) { if (r.statistic === 'coef' && models.indexOf(r.variable) < 0) models.push(r.variable); });\n"
    "  if (models.length) {\n"
    "    var s = section('Regressions', 'over complete cases: least squares (t and two-sided p from Student\\u2019s t), and logistic and Poisson models fitted by Newton rounds on encrypted totals (z and two-sided p from the normal).');\n"
    "    models.forEach(function (m) {\n"
    "      var glm = /:(binomial|poisson)$/.test(m), st4 = glm ? ['coef', 'se', 'z', 'p'] : ['coef', 'se', 't', 'p'];\n"
    "      el('h3', s, m.replace('~', ' ~ ').replace(/\\+/g, ' + ').replace(/:(binomial|poisson)$/, ' ($1)'));\n"
    "      var terms = [];\n"
    "      rows.forEach(function (r) { if (r.variable === m && r.statistic === 'coef') terms.push(r.group); });\n"
    "      var tb = tableIn(s, ['term'].concat(st4, compare ? ['plaintext coef'] : []));\n"
    "      terms.forEach(function (t) {\n"
    "        var tr = el('tr', tb);\n"
    "        el('th', tr, t);\n"
    "        st4.forEach(function (st) { csvCell(tr, find(st, m, t), 'value'); });\n"
    "        if (compare) csvCell(tr, find('coef', m, t), 'plaintext');\n"
    "      });\n"
    "      var sum = glm ? ['deviance', 'n', 'rounds'] : ['r2', 'n', 'df'];\n"
    "      var tb2 = tableIn(s, glm ? sum : ['R\\u00b2', 'n', 'df']);\n"
    "      var tr = el('tr', tb2);\n"
    "      sum.forEach(function (st) { csvCell(tr, find(st, m), 'value'); });\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- everything else (tests with p-values, covariances) ---- */\n"
    "  var rest = rows.filter(function (r) {\n"
    "    return !r.shown && ['count', 'mean', 'sd', 'var', 'cov', 'corr', 'hist'].indexOf(r.statistic) < 0;\n"
    "  });\n"
    "  if (rest.length) {\n"
    "    var s = section('Other statistics', 'the remaining rows of decrypted_results.csv (tests with p-values and the like).');\n"
    "    var tb = tableIn(s, compare ? ['statistic', 'variable', 'group', 'value', 'plaintext'] : ['statistic', 'variable', 'group', 'value']);\n"
    "    rest.forEach(function (r) {\n"
    "      var tr = el('tr', tb);\n"
    "      el('td', tr, r.statistic); el('td', tr, r.variable); el('td', tr, r.group);\n"
    "      csvCell(tr, r, 'value');\n"
    "      if (compare) csvCell(tr, r, 'plaintext');\n"
    "    });\n"
    "  }\n"
    "\n"
    "  /* ---- accuracy ---- */\n"
    "  if (compare) {\n"
    "    var s = section('Accuracy against the plaintext', 'largest error of each kind of statistic over every row of the ' +\n"
    "      'report, decrypted value against the same statistic of the plaintext table (' + data.compare + ').');\n"
    "    var acc = {}, kinds = [];\n"
    "    rows.forEach(function (r) {\n"
    "      var a = num(r.abs_error), rel = num(r.rel_error);\n"
    "      if (!acc[r.statistic]) { acc[r.statistic] = { n: 0, abs: 0, rel: 0 }; kinds.push(r.statistic); }\n"
    "      var k = acc[r.statistic];\n"
    "      k.n++;\n"
    "      if (isFinite(a) && a > k.abs) k.abs = a;\n"
    "      if (isFinite(rel) && rel > k.rel) k.rel = rel;\n"
    "    });\n"
    "    var tb = tableIn(s, ['statistic', 'rows', 'largest abs. error', 'largest rel. error']);\n"
    "    kinds.forEach(function (st) {\n"
    "      var tr = el('tr', tb), k = acc[st];\n"
    "      el('th', tr, st);\n"
    "      el('td', tr, String(k.n), 'num');\n"
    "      var a = el('td', tr, k.abs ? k.abs.toExponential(2) : '0', 'num');\n"
    "      a.setAttribute('data-acc', st); a.setAttribute('data-abs', String(k.abs));\n"
    "      var r = el('td', tr, k.rel ? k.rel.toExponential(2) : '0', 'num');\n"
    "      r.setAttribute('data-acc', st); r.setAttribute('data-rel', String(k.rel));\n"
    "    });\n"
    "    chart(s, { type: 'bar', data: { labels: kinds, datasets: [{ data: kinds.map(function (st) {\n"
    "      return acc[st].rel > 0 ? acc[st].rel : null; }), backgroundColor: ORANGE }] },\n"
    "      options: { scales: { y: { type: 'logarithmic', title: { display: true, text: 'largest relative error' },\n"
    "        ticks: { callback: function (v) { var e = Math.log10(v); return Math.abs(e - Math.round(e)) < 1e-9 ? '1e' + Math.round(e) : ''; } } } } } }, 640, 280);\n"
    "  }\n"
    "\n"
    "  /* ---- the study ---- */\n"
    "  var st = data.study, s = section('Study parameters', 'what the server saw: public parameters, the schema and each column\\u2019s public range factor.');\n"
    "  var tb = tableIn(s, ['parameter', 'value']);\n"
    "  [['ring degree N', st.poly_degree], ['slots', st.slots], ['data primes', st.data_primes],\n"
    "   ['log2 Q (all primes)', st.modulus_bits], ['largest log2 Q for 128-bit security at this N', st.max_modulus_bits],\n"
    "   ['security', st.security], ['scale', '2^40'], ['columns (with derived ones)', st.columns.length],\n"
    "   ['rows per ciphertext', st.rows_per_ct]].forEach(function (p) {\n"
    "    var tr = el('tr', tb); el('th', tr, p[0]); el('td', tr, String(p[1]));\n"
    "  });\n"
    "  var d = el('details', s);\n"
    "  el('summary', d, 'columns and their range factors F (values in [-F, F])');\n"
    "  var tb2 = tableIn(d, ['column', 'F']);\n"
    "  st.columns.forEach(function (c) { var tr = el('tr', tb2); el('th', tr, c.name); el('td', tr, String(c.factor), 'num'); });\n"
    "\n"
    "  document.body.setAttribute('data-charts', String(charts));\n"
    "  document.body.setAttribute('data-rendered', errors.length ? 'with-errors' : 'yes');\n"
    "})();\n";

/* Bits of every prime (special included): what the 128-bit table bounds. */
static int modulus_bits(const ckks_context_t *ctx)
{
    int bits = 0;
    for (size_t i = 0; i <= ckks_context_data_primes(ctx); i++) bits += 64 - __builtin_clzll(ckks_context_prime(ctx, i));
    return bits;
}

static json_t *study_json(const stats_study_t *s)
{
    const ckks_context_t *ctx = s->ctx;
    size_t n = ckks_context_n(ctx);
    int bits = modulus_bits(ctx), most = ckks_max_modulus_bits(n);
    json_t *cols = json_array();
    for (size_t c = 0; c < s->layout.ncols; c++)
        json_array_append_new(cols, json_pack("{s:s, s:f}", "name", s->layout.names[c], "factor", s->layout.factor[c]));
    return json_pack("{s:I, s:I, s:I, s:i, s:i, s:s, s:I, s:o}", "poly_degree", (json_int_t)n, "slots",
                     (json_int_t)ckks_context_slots(ctx), "data_primes", (json_int_t)ckks_context_data_primes(ctx),
                     "modulus_bits", bits, "max_modulus_bits", most, "security",
                     bits <= most ? "128-bit classical (HomomorphicEncryption.org table, ternary secret)"
                                  : "below 128 bits (parameters outside the HomomorphicEncryption.org table)",
                     "rows_per_ct", (json_int_t)s->layout.rows_per_ct, "columns", cols);
}

/* JSON inside <script>: no '<' at all, so no "</script>" or "<!--" can end or bend it. */
static void put_json(FILE *f, const char *j)
{
    for (; *j; j++)
        if (*j == '<') fputs("\\u003c", f);
        else fputc(*j, f);
}

static int chartjs_load(char **js, size_t *len, const char **path)
{
    const char *env = getenv("HESTAT_CHARTJS");
    *path = env && env[0] ? env : CLIENT_CHARTJS;
    void *buf;
    int rc = ckks_file_read(*path, CHARTJS_MAX, &buf, len);
    if (rc) {
        fprintf(stderr, "hestat-client: --html: %s: %s (Chart.js: Debian's libjs-chart.js, which "
                "scripts/install-deps.sh installs, or HESTAT_CHARTJS=FILE)\n", *path,
                rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        return 1;
    }
    *js = buf;
    for (size_t i = 0; i + 8 <= *len; i++)
        if ((*js)[i] == '<' && (*js)[i + 1] == '/' && !strncasecmp(*js + i + 2, "script", 6)) {
            free(buf);
            return client_fail(*path, "--html: the chart library contains \"</script\" and cannot be inlined");
        }
    return 0;
}

int client_write_html(const char *path, const char *csv, size_t csvlen, const stats_study_t *s, const char *compare)
{
    char *js;
    size_t jslen;
    const char *jspath;
    if (chartjs_load(&js, &jslen, &jspath)) return 1;
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    json_t *data = json_pack("{s:s%, s:o, s:s, s:s, s:s?}", "csv", csv, csvlen, "study", study_json(s), "version",
                             HESTAT_VERSION, "generated", when, "compare", compare);
    char *dj = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(data);
    if (!dj) {
        free(js);
        return client_fail("--html", "could not encode the report's data");
    }
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    int err = f ? 0 : client_fail("--html", strerror(errno));
    if (!err) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
              "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
              "<title>hestat: decrypted statistics</title>\n<style>\n", f);
        fputs(page_css, f);
        fprintf(f, "</style>\n<!-- Chart.js from %s (MIT License), inlined -->\n<script>\n", jspath);
        fwrite(js, 1, jslen, f);
        fputs("\n</script>\n</head>\n<body>\n<header><h1>Decrypted statistics</h1><p id=\"subtitle\"></p></header>\n"
              "<pre id=\"page-errors\" hidden></pre>\n<main id=\"report\"></main>\n"
              "<script type=\"application/json\" id=\"hestat-data\">", f);
        put_json(f, dj);
        fputs("</script>\n<script>\n", f);
        fputs(page_js, f);
        fputs("</script>\n</body>\n</html>\n", f);
        if (fclose(f)) err = client_fail("--html", strerror(errno));
    }
    if (!err) {
        int rc = ckks_file_write(path, page, len, 0644);
        if (rc) err = client_fail(path, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    }
    free(page);
    free(dj);
    free(js);
    return err;
}
