// mriscan web UI, the oversight views: the Review tab (answers a person should look at, with the scan, its
// Grad-CAM and the model's answer; a label makes a training upload), the Audit tab (every answer, filtered and
// paged, and its CSV) and the Monitoring card of the Models tab (this replica's drift window beside validation's
// figures). Uses app.js's helpers ($, api, adminHeaders, escape, percent, drawChart); admin routes need the token.
'use strict';

const oversight = { review: null, reviews: [], auditBefore: null };

// An admin-only image (the token goes in a header, which an <img src> cannot send) into `img`.
async function showAdminImage(path, img) {
  const response = await fetch(path, { headers: adminHeaders() });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await response.blob());
}

const answerText = (entry) => (entry.out_of_distribution ? 'withheld (not like a brain MRI)' : escape(entry.answer));
const setText = (set) => (Array.isArray(set) ? '{' + set.map(escape).join(', ') + '}' : '-');
const confidenceText = (c) => (c == null ? '-' : percent(c));

// --- Review ----------------------------------------------------------------------------------------------------

async function loadReviews() {
  showError($('review-error'), null);
  try {
    const body = await api('/reviews?limit=50', { headers: adminHeaders() });
    $('review-summary').textContent = `${body.pending} pending, ${body.dropped} dropped for the queue's bound`;
    $('review-table').querySelector('tbody').innerHTML = body.reviews.map((r) =>
      `<tr data-review="${r.id}"><td>${r.id}</td><td>${escape(r.at)}</td><td>${answerText(r)}</td>` +
      `<td>${setText(r.prediction_set)}</td><td>${confidenceText(r.confidence)}</td><td>${escape(r.reason)}</td></tr>`).join('');
    if (body.reviews.length) await openReview(body.reviews[0]);
    else $('review-detail').hidden = true;
    oversight.reviews = body.reviews;
  } catch (error) {
    showError($('review-error'), error);
  }
}

async function openReview(review) {
  oversight.review = review;
  $('review-detail').hidden = false;
  $('review-title').textContent = `Review ${review.id}: ${review.reason}`;
  $('review-answer').innerHTML = `model ${escape(review.model_version)} answered ${answerText(review)} ` +
    `(confidence ${confidenceText(review.confidence)}), prediction set ${setText(review.prediction_set)}`;
  $('review-label').innerHTML = state.classNames.map((c) => `<option>${escape(c)}</option>`).join('');
  await showAdminImage(`/reviews/${review.id}/image`, $('review-img'));
  await showAdminImage(`/reviews/${review.id}/gradcam`, $('review-gradcam')).catch(() => { $('review-gradcam').removeAttribute('src'); });
}

async function decideReview(discard) {
  const review = oversight.review;
  if (!review) return;
  const decision = discard ? { discard: true } : { label: $('review-label').value };
  try {
    const body = await api(`/reviews/${review.id}`, {
      method: 'POST', headers: { ...adminHeaders(), 'Content-Type': 'application/json' }, body: JSON.stringify(decision) });
    $('review-result').textContent = discard ? `Review ${body.id} discarded.` :
      `Review ${body.id} labelled ${body.label}: stored as training upload ${body.upload.sha256.slice(0, 12)}... (${body.upload.status}).`;
    await loadReviews();
  } catch (error) {
    showError($('review-error'), error);
  }
}

// --- Audit -----------------------------------------------------------------------------------------------------

function auditQuery() {
  const params = new URLSearchParams();
  for (const [id, name] of [['audit-from', 'from'], ['audit-to', 'to'], ['audit-answer', 'answer'], ['audit-version', 'version']]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function loadAudit(before = null) {
  showError($('audit-error'), null);
  const params = auditQuery();
  params.set('limit', '50');
  if (before) params.set('before_id', before);
  try {
    const body = await api('/audit?' + params, { headers: adminHeaders() });
    $('audit-table').querySelector('tbody').innerHTML = body.entries.map((e) =>
      `<tr><td>${e.id}</td><td>${escape(e.at)}</td><td>${escape(e.route)}</td><td>${escape(e.model_version)}</td>` +
      `<td>${answerText(e)}</td><td>${setText(e.prediction_set)}</td><td>${confidenceText(e.confidence)}</td>` +
      `<td class="mono">${escape(e.input_sha256.slice(0, 12))}</td><td class="mono">${escape(e.request_id)}</td></tr>`).join('');
    oversight.auditBefore = body.next_before_id;
    $('audit-more').hidden = body.next_before_id == null;
    $('audit-summary').textContent = `${body.count} entries on this page` + (body.dropped ? `; ${body.dropped} dropped` : '');
  } catch (error) {
    showError($('audit-error'), error);
  }
}

// The CSV needs the token too: fetched here and handed to the browser as a download.
async function downloadAuditCsv() {
  try {
    const response = await fetch('/audit.csv?' + auditQuery(), { headers: adminHeaders() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const link = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(await response.blob()), download: 'mriscan-audit.csv' });
    link.click();
    URL.revokeObjectURL(link.href);
  } catch (error) {
    showError($('audit-error'), error);
  }
}

// --- Monitoring ------------------------------------------------------------------------------------------------

async function loadDrift() {
  const health = await api('/health');
  const drift = health.drift;
  if (!drift) return;
  const ref = drift.reference;
  $('drift-summary').innerHTML = `${drift.answers} of the last ${drift.window} answers on replica ${escape(health.replica)}: ` +
    (drift.drift ? `<b class="error-text">drift: ${drift.reasons.map(escape).join(', ')}</b>` :
      ref ? 'no drift' : 'this model file has no validation figures to compare with');
  const rows = [['withheld share', drift.withheld_share, ref && ref.withheld_share, percent],
    ['mean confidence', drift.mean_confidence, ref && ref.mean_confidence, percent],
    ['mean set size', drift.mean_set_size, ref && ref.mean_set_size, (v) => v.toFixed(2)]];
  $('drift-table').querySelector('tbody').innerHTML = rows.map(([name, live, validation, format]) =>
    `<tr><td>${name}</td><td>${live == null ? '-' : format(live)}</td><td>${validation == null ? '-' : format(validation)}</td></tr>`).join('');
  const classes = Object.keys(drift.class_mix);
  drawChart('chart-drift', { type: 'bar', data: { labels: classes, datasets: [
    { label: 'live', data: classes.map((c) => drift.class_mix[c]), backgroundColor: palette[0] },
    { label: 'validation', data: classes.map((c) => (ref ? ref.class_mix[c] : null)), backgroundColor: palette[1] }] },
    options: { scales: { y: { beginAtZero: true, max: 1 } } } });
}

function initOversight() {
  $('review-table').addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-review]');
    const review = row && (oversight.reviews || []).find((r) => String(r.id) === row.dataset.review);
    if (review) openReview(review).catch((error) => showError($('review-error'), error));
  });
  $('review-label-button').addEventListener('click', () => decideReview(false));
  $('review-discard-button').addEventListener('click', () => decideReview(true));
  $('audit-search').addEventListener('click', () => loadAudit());
  $('audit-more').addEventListener('click', () => loadAudit(oversight.auditBefore));
  $('audit-csv').addEventListener('click', downloadAuditCsv);
}

document.addEventListener('DOMContentLoaded', initOversight);
