// mriscan web UI: tabs Predict, Visualisations, Upload & Retrain, Models (Review and Audit: oversight.js). Plain
// JavaScript against the JSON API
// (see /docs); charts with Chart.js (served from npm's node_modules at /vendor/chart.umd.js). Every number shown
// comes from the server; nothing is computed or made up here beyond formatting.
'use strict';

const $ = (id) => document.getElementById(id);
const percent = (p) => (100 * p).toFixed(1) + '%';
// The page's Content-Security-Policy allows no inline style attributes: widths and colours computed here are
// written as data-* attributes in the HTML and applied through the CSSOM, which the policy allows.
function applyDataStyles(root) {
  for (const el of root.querySelectorAll('[data-width]')) el.style.width = el.dataset.width;
  for (const el of root.querySelectorAll('[data-background]')) el.style.background = el.dataset.background;
}

const escape = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
const palette = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];
const state = { classNames: [], charts: {}, activeVersion: null, pollTimer: null, currentJob: null };

// --- API -------------------------------------------------------------------------------------------------------

function adminHeaders() {
  const token = $('admin-token').value.trim();
  return token ? { Authorization: 'Bearer ' + token } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get('Content-Type') || '';
  const body = type.includes('application/json') ? await response.json() : await response.text();
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    const details = body && Array.isArray(body.details) ? ': ' + body.details.map((d) => `${d.file}: ${d.error}`).join('; ') : '';
    throw new Error(message + details);
  }
  return body;
}

function showError(element, error) {
  element.textContent = error ? String(error.message || error) : '';
  element.hidden = !error;
}

// Replaces a chart on a canvas (Chart.js needs the old one destroyed first).
function drawChart(canvasId, config) {
  if (typeof Chart === 'undefined') {
    $(canvasId).replaceWith(Object.assign(document.createElement('p'), {
      className: 'error', textContent: 'Chart.js is not installed: run `npm ci --prefix server/ui`' }));
    return;
  }
  if (state.charts[canvasId]) state.charts[canvasId].destroy();
  state.charts[canvasId] = new Chart($(canvasId), config);
}

// --- tabs and header -------------------------------------------------------------------------------------------

function selectTab(name) {
  document.querySelectorAll('.tab[data-tab]').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('.panel').forEach((p) => p.classList.toggle('active', p.id === 'tab-' + name));
  if (name === 'visualise') loadVisualisations();
  if (name === 'retrain') loadJobs();
  if (name === 'models') {
    loadModels();
    loadDrift().catch((error) => showError($('models-error'), error));
  }
  if (name === 'review') loadReviews();
  if (name === 'audit') loadAudit();
}

function formatDuration(seconds) {
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

async function refreshHeader() {
  try {
    const health = await api('/health');
    $('status-model').textContent = health.model_loaded ? 'model ' + health.model_version : 'no model loaded';
    $('status-model').classList.toggle('warn', !health.model_loaded);
    $('status-uptime').textContent = 'uptime ' + formatDuration(health.uptime_seconds);
    $('status-replica').textContent = 'replica ' + health.replica;
    state.activeVersion = health.model_version;
  } catch (error) {
    $('status-model').textContent = 'server unreachable';
    $('status-model').classList.add('warn');
  }
}

async function loadClassNames() {
  const models = await api('/models');
  state.classNames = models.class_names || [];
  $('upload-label').innerHTML = state.classNames.map((c) => `<option value="${escape(c)}">${escape(c)}</option>`).join('');
  return models;
}

// --- Predict ---------------------------------------------------------------------------------------------------

// "95% set: {glioma} · 99% set: {glioma, meningioma}": the server's sets, most confident level last; an empty set
// means no class is plausible enough at that level.
function formatPredictionSets(sets) {
  return Object.entries(sets || {})
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([alpha, classes]) => `${+(100 * (1 - Number(alpha))).toFixed(2)}% set: {${classes.join(', ')}}` +
      (classes.length ? '' : ' (no class is likely enough)'))
    .join(' · ');
}

async function predictFile(file) {
  showError($('predict-error'), null);
  // A browser shows JPEG and PNG, not DICOM: a DICOM scan is seen through its Grad-CAM overlay instead.
  if (file.type.startsWith('image/')) $('preview-img').src = URL.createObjectURL(file);
  else $('preview-img').removeAttribute('src');
  $('gradcam-img').removeAttribute('src');
  const form = new FormData();
  form.append('file', file);
  const query = $('with-gradcam').checked ? '?gradcam=1' : '';
  try {
    const result = await api('/predict' + query, { method: 'POST', body: form });
    // An input the server flags as out of distribution comes without a class: say so, show no bars.
    const ood = result.out_of_distribution;
    $('predicted-class').textContent = ood ? 'not a brain MRI?' : result.predicted_class;
    $('predicted-confidence').textContent = ood ? 'no diagnosis given' : percent(result.confidence) + ' confidence';
    $('prediction-sets').textContent = ood ? '' : formatPredictionSets(result.prediction_sets);
    $('prediction-sets').hidden = !$('prediction-sets').textContent;
    $('ood-warning').hidden = !ood;
    $('ood-reasons').textContent = ood ? 'Why: ' + result.ood_reasons.join('; ') + '.' : '';
    const sorted = ood ? [] : Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    $('probability-bars').innerHTML = sorted.map(([name, p], i) => `
      <div class="bar-row"><span class="bar-label">${escape(name)}</span>
        <span class="bar"><span class="bar-fill${i === 0 ? ' top' : ''}" data-width="${(100 * p).toFixed(1)}%"></span></span>
        <span class="bar-value">${percent(p)}</span></div>`).join('');
    applyDataStyles($('probability-bars'));
    $('predict-meta').textContent =
      `model ${result.model_version} · inference ${result.inference_time_ms.toFixed(1)} ms · request ${result.request_id}`;
    if (result.gradcam) $('gradcam-img').src = 'data:image/png;base64,' + result.gradcam.overlay_png_base64;
    $('predict-result').hidden = false;
  } catch (error) {
    $('predict-result').hidden = true;
    showError($('predict-error'), error);
  }
}

function setupDropZone(zone, input, onFiles) {
  input.addEventListener('change', () => input.files.length && onFiles(input.files));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files.length) onFiles(e.dataTransfer.files);
  });
}

// --- Visualisations --------------------------------------------------------------------------------------------

async function loadVisualisations() {
  try {
    const [stats, models] = await Promise.all([api('/dataset_stats'), loadClassNames()]);
    drawDatasetCharts(stats);
    const active = (models.models || []).find((m) => m.active);
    drawModelCharts(active);
    if (!stats.complete) setTimeout(() => { if ($('tab-visualise').classList.contains('active')) loadVisualisations(); }, 2000);
  } catch (error) {
    $('dataset-progress').textContent = 'Could not load statistics: ' + error.message;
  }
}

function drawDatasetCharts(stats) {
  const training = stats.training || {};
  $('dataset-progress').textContent = training.error ? training.error
    : stats.complete ? `Training folder ${training.root}: ${training.total} images; ${stats.uploads.total} uploads.`
    : `Scanning the training folder: ${training.scanned ?? 0} / ${training.total ?? '?'} images ...`;
  const classes = Object.keys(stats.class_distribution);
  drawChart('chart-classes', {
    type: 'bar',
    data: { labels: classes, datasets: [
      { label: 'training', data: classes.map((c) => (training.class_counts || {})[c] || 0), backgroundColor: palette[0] },
      { label: 'uploads', data: classes.map((c) => stats.uploads.class_counts[c] || 0), backgroundColor: palette[1] }] },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  const edges = stats.brightness_bin_edges;
  const binLabels = edges.slice(0, -1).map((e, i) => `${e}-${edges[i + 1]}`);
  drawChart('chart-brightness', {
    type: 'line',
    data: { labels: binLabels, datasets: Object.entries(training.brightness || {}).map(([name, counts], i) => ({
      label: name, data: counts, borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], tension: 0.3 })) },
    options: { scales: { x: { title: { display: true, text: 'mean luma (0-255)' } }, y: { beginAtZero: true, title: { display: true, text: 'images' } } } },
  });
  const resolutions = { ...(training.resolutions || {}) };
  for (const [key, n] of Object.entries(stats.uploads.resolutions)) resolutions[key] = (resolutions[key] || 0) + n;
  const top = Object.entries(resolutions).sort((a, b) => b[1] - a[1]).slice(0, 12);
  drawChart('chart-resolution', {
    type: 'bar',
    data: { labels: top.map(([k]) => k), datasets: [{ label: 'images', data: top.map(([, n]) => n), backgroundColor: palette[2] }] },
    options: { indexAxis: 'y', plugins: { legend: { display: false } } },
  });
  $('duplicates').textContent = training.duplicate_files !== undefined
    ? `Exact duplicates in training data: ${training.duplicate_files} extra copies in ${training.duplicate_groups} groups; ` +
      `uploads that duplicate a training file: ${stats.uploads.duplicates_of_training_files}.` : '';
}

function drawModelCharts(active) {
  const metrics = active ? active.metrics || {} : {};
  $('history-version').textContent = active ? active.version : '';
  $('confusion-version').textContent = active ? active.version : '';
  const history = metrics.history || [];
  if (history.length) {
    drawChart('chart-history', {
      type: 'line',
      data: { labels: history.map((h) => h.epoch), datasets: [
        { label: 'train loss', data: history.map((h) => h.train_loss), borderColor: palette[0], yAxisID: 'loss' },
        { label: 'val loss', data: history.map((h) => h.val_loss), borderColor: palette[1], yAxisID: 'loss' },
        { label: 'train accuracy', data: history.map((h) => h.train_accuracy), borderColor: palette[2], borderDash: [4, 3], yAxisID: 'acc' },
        { label: 'val accuracy', data: history.map((h) => h.val_accuracy), borderColor: palette[3], borderDash: [4, 3], yAxisID: 'acc' }] },
      options: { scales: { x: { title: { display: true, text: 'epoch' } }, loss: { position: 'left', title: { display: true, text: 'loss' } },
        acc: { position: 'right', min: 0, max: 1, grid: { drawOnChartArea: false }, title: { display: true, text: 'accuracy' } } } },
    });
  }
  const validation = metrics.validation || {};
  const matrix = validation.confusion_matrix;
  const names = validation.class_names || state.classNames;
  if (!matrix) { $('confusion').textContent = 'The active model has no validation confusion matrix in its metadata.'; return; }
  const max = Math.max(1, ...matrix.flat());
  let html = '<table class="confusion"><tr><th>true \\ predicted</th>' + names.map((n) => `<th>${escape(n)}</th>`).join('') + '</tr>';
  matrix.forEach((row, t) => {
    html += `<tr><th>${escape(names[t])}</th>` + row.map((n, p) =>
      `<td data-background="rgba(${t === p ? '78,121,167' : '225,87,89'}, ${(0.1 + 0.9 * n / max).toFixed(2)})">${n}</td>`).join('') + '</tr>';
  });
  $('confusion').innerHTML = html + `</table><p class="muted small">validation accuracy ${percent(validation.accuracy ?? 0)} on ${validation.num_samples ?? '?'} images</p>`;
  applyDataStyles($('confusion'));
}

// --- Upload & Retrain ------------------------------------------------------------------------------------------

let pendingUploads = [];

async function uploadFiles() {
  const result = $('upload-result');
  if (!pendingUploads.length) { result.textContent = 'Choose some scans first.'; return; }
  const form = new FormData();
  for (const file of pendingUploads) form.append('files', file);
  form.append('label', $('upload-label').value);
  result.textContent = 'Uploading ...';
  try {
    const body = await api('/upload_training_data', { method: 'POST', body: form, headers: adminHeaders() });
    result.innerHTML = `<p class="ok">${body.stored} stored, ${body.duplicates} duplicates (label ${escape(body.label)}); ${body.total_uploads} uploads in total.</p>` +
      '<ul>' + body.files.map((f) => `<li>${escape(f.filename)}: ${f.status}${f.status === 'duplicate' ? ' (already stored as ' + escape(f.label) + ')' : ''} <span class="muted">${f.sha256.slice(0, 12)}</span></li>`).join('') + '</ul>';
    pendingUploads = [];
    $('upload-count').textContent = 'Drop scans here, or click to choose files';
  } catch (error) {
    result.innerHTML = `<p class="error">${escape(error.message)}</p>`;
  }
}

async function startRetrain() {
  const params = {
    epochs: Number($('epochs').value), learning_rate: Number($('learning-rate').value),
    frozen_blocks: Number($('frozen-blocks').value), max_samples_per_class: Number($('max-per-class').value),
  };
  try {
    const body = await api('/retrain', { method: 'POST', body: JSON.stringify(params),
      headers: { 'Content-Type': 'application/json', ...adminHeaders() } });
    watchJob(body.job_id);
  } catch (error) {
    $('job-panel').hidden = false;
    $('job-status').innerHTML = `<span class="error">${escape(error.message)}</span>`;
  }
}

function watchJob(id) {
  state.currentJob = id;
  $('job-panel').hidden = false;
  $('job-result').innerHTML = '';
  $('cancel-button').hidden = false;
  clearInterval(state.pollTimer);
  const poll = async () => {
    try {
      const job = await api('/retrain_status/' + id);
      renderJob(job);
      if (['completed', 'failed', 'cancelled'].includes(job.status)) {
        clearInterval(state.pollTimer);
        $('cancel-button').hidden = true;
        loadJobs();
        refreshHeader();
      }
    } catch (error) {
      $('job-status').textContent = error.message;
    }
  };
  poll();
  state.pollTimer = setInterval(poll, 1000);
}

function renderJob(job) {
  const p = job.progress || {};
  const done = p.epochs ? ((p.epoch - 1) + (p.batches ? p.batch / p.batches : 0)) / p.epochs : 0;
  const fraction = job.status === 'completed' ? 1 : Math.max(0, Math.min(1, done));
  $('job-progress-bar').style.width = (100 * fraction).toFixed(1) + '%';
  let text = `job ${job.job_id}: <b class="status-${job.status}">${job.status}</b>`;
  if (p.phase) text += ` · ${escape(p.phase)}`;
  if (p.epochs) text += ` · epoch ${p.epoch}/${p.epochs}`;
  if (p.batches) text += ` · batch ${p.batch}/${p.batches}`;
  if (p.loss !== undefined && p.phase === 'train') text += ` · loss ${p.loss.toFixed(4)} · accuracy ${percent(p.accuracy)}`;
  if (job.status === 'running' && p.eta_seconds) text += ` · ETA ${formatDuration(p.eta_seconds)}`;
  $('job-status').innerHTML = text;
  const history = p.history || [];
  if (history.length) {
    drawChart('chart-job', {
      type: 'line',
      data: { labels: history.map((h) => h.epoch), datasets: [
        { label: 'train loss', data: history.map((h) => h.train_loss), borderColor: palette[0] },
        { label: 'val loss', data: history.map((h) => h.val_loss), borderColor: palette[1] },
        { label: 'val accuracy', data: history.map((h) => h.val_accuracy), borderColor: palette[3] }] },
    });
  }
  if (job.status === 'completed' && job.result) {
    const r = job.result;
    $('job-result').innerHTML = `<p class="ok">New version <b>${escape(r.model_version)}</b> (from ${escape(r.base_version)}):
      validation accuracy ${percent(r.candidate_val_accuracy)}; ${r.activated ? 'activated' : 'not activated'} (${escape(r.activation_reason)}).</p>`;
  } else if (job.status === 'failed') {
    $('job-result').innerHTML = `<p class="error">${escape(job.error)}</p>`;
  } else if (job.status === 'cancelled') {
    $('job-result').innerHTML = '<p class="muted">Cancelled; nothing was registered.</p>';
  }
}

async function cancelJob() {
  if (!state.currentJob) return;
  try {
    await api(`/retrain/${state.currentJob}/cancel`, { method: 'POST', headers: adminHeaders() });
  } catch (error) {
    $('job-result').innerHTML = `<p class="error">${escape(error.message)}</p>`;
  }
}

async function loadJobs() {
  try {
    const { jobs } = await api('/retrain_jobs');
    $('jobs-table').querySelector('tbody').innerHTML = jobs.map((j) => `<tr>
      <td>${j.job_id}</td><td class="status-${j.status}">${j.status}</td><td>${j.params ? j.params.epochs : ''}</td>
      <td>${escape(j.created_at)}</td>
      <td>${j.model_version ? escape(j.model_version) + (j.activated ? ' (activated)' : '') : escape(j.error || '')}</td></tr>`).join('');
  } catch (error) { /* the table stays as it was */ }
}

// --- Models ----------------------------------------------------------------------------------------------------

async function loadModels() {
  try {
    const [models, stats] = await Promise.all([api('/models'), api('/stats')]);
    const number = (v) => (typeof v === 'number' ? percent(v) : '-');
    loadModelCard(models.active_version);
    $('models-table').querySelector('tbody').innerHTML = models.models.slice().reverse().map((m) => {
      const validation = (m.metrics || {}).validation || {}, test = (m.metrics || {}).test || {};
      return `<tr class="${m.active ? 'active-row' : ''}"><td><b>${m.version}</b>${m.active ? ' <span class="pill ok">active</span>' : ''}</td>
        <td>${escape(m.created_at)}</td><td class="small">${escape(m.source)}</td>
        <td>${number(validation.accuracy)}</td><td>${number((validation.macro_avg || {}).f1)}</td><td>${number(test.accuracy)}</td>
        <td>${m.active ? '' : `<button data-activate="${m.version}">activate</button>`}</td></tr>`;
    }).join('');
    const entries = [['uptime', formatDuration(stats.uptime_seconds)], ['active model', stats.model_version || 'none'],
      ['queue depth', stats.queue_depth], ['requests shed (503)', stats.requests_shed], ['uploads', stats.uploads],
      ['inference mean', stats.latency.inference.mean_ms.toFixed(1) + ' ms'], ['inference p95', stats.latency.inference.p95_ms.toFixed(1) + ' ms'],
      ['jobs', Object.entries(stats.jobs).map(([k, v]) => `${k} ${v}`).join(', ')]];
    $('service-stats').innerHTML = entries.map(([k, v]) => `<dt>${k}</dt><dd>${escape(v)}</dd>`).join('');
    $('latency-table').querySelector('tbody').innerHTML = Object.entries(stats.latency.routes).map(([route, s]) =>
      `<tr><td><code>${escape(route)}</code></td><td>${s.count}</td><td>${s.p50_ms.toFixed(1)}</td><td>${s.p95_ms.toFixed(1)}</td><td>${s.p99_ms.toFixed(1)}</td></tr>`).join('');
    showError($('models-error'), null);
  } catch (error) {
    showError($('models-error'), error);
  }
}

// The subset of Markdown that train/model_card.cpp writes: headings, paragraphs, tables, **bold**, `code`.
function renderMarkdown(markdown) {
  const inline = (text) => escape(text).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`(.+?)`/g, '<code>$1</code>');
  const html = [];
  for (const block of markdown.split(/\n\s*\n/)) {
    const lines = block.trim().split('\n');
    if (!lines[0]) continue;
    const heading = lines[0].match(/^(#{1,3}) (.*)/);
    if (heading) {
      html.push(`<h${heading[1].length + 1}>${inline(heading[2])}</h${heading[1].length + 1}>`);
      if (lines.length > 1) html.push(`<p>${inline(lines.slice(1).join(' '))}</p>`);
    } else if (lines[0].startsWith('|')) {
      const cells = (line) => line.replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
      const rows = lines.filter((line) => !/^\|[-| ]+\|$/.test(line)).map(cells);
      html.push(`<table><thead><tr>${rows[0].map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>` +
        rows.slice(1).map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('') + '</tbody></table>');
    } else {
      html.push(`<p>${inline(lines.join(' '))}</p>`);
    }
  }
  return html.join('\n');
}

async function loadModelCard(version) {
  if (!version) return;
  $('card-version').textContent = version;
  try {
    $('model-card').innerHTML = renderMarkdown(await api(`/models/${version}/card`));
  } catch (error) {
    $('model-card').textContent = error.message;
  }
}

async function activate(version) {
  try {
    await api(`/models/${version}/activate`, { method: 'POST', headers: adminHeaders() });
    await Promise.all([loadModels(), refreshHeader()]);
  } catch (error) {
    showError($('models-error'), error);
  }
}

// --- start-up --------------------------------------------------------------------------------------------------

function init() {
  document.querySelectorAll('.tab[data-tab]').forEach((b) => b.addEventListener('click', () => selectTab(b.dataset.tab)));
  $('admin-token').value = localStorage.getItem('mriscan-admin-token') || '';
  $('admin-token').addEventListener('change', () => localStorage.setItem('mriscan-admin-token', $('admin-token').value.trim()));
  setupDropZone($('drop-zone'), $('file-input'), (files) => predictFile(files[0]));
  setupDropZone($('upload-drop'), $('upload-files'), (files) => {
    pendingUploads = Array.from(files);
    $('upload-count').textContent = `${pendingUploads.length} file(s) selected`;
  });
  $('upload-button').addEventListener('click', uploadFiles);
  $('retrain-button').addEventListener('click', startRetrain);
  $('cancel-button').addEventListener('click', cancelJob);
  $('models-table').addEventListener('click', (e) => { if (e.target.dataset.activate) activate(e.target.dataset.activate); });
  if (typeof Chart !== 'undefined') Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  refreshHeader();
  loadClassNames().catch(() => {});
  setInterval(refreshHeader, 5000);
}

document.addEventListener('DOMContentLoaded', init);
