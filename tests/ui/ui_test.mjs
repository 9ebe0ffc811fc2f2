// Browser test of the mriscan web UI, end to end against the real server binary:
//   1. trains a tiny model (MobileNetV2 width 0.35, 64x64, a few real scans per class) with `mriscan train`;
//   2. starts `mriscan serve` on a free port with a fresh state folder;
//   3. in headless Chromium (Debian's /usr/bin/chromium via playwright-core): predicts on a real scan, on its copy as
//      a 16-bit MR DICOM (the same class, its sets shown) and on a generated photograph (refused: "does not look
//      like a brain MRI"), opens the
//      visualisations, uploads two scans with a label, starts a 1-epoch retrain on a tiny subset, waits until the
//      job completes, checks the new version and the monitoring card on the Models tab, discards the photograph's
//      review and labels the scan's, and filters the audit trail;
//   4. saves a screenshot of every step to tests/ui/screenshots/ (gitignored), stops the server with SIGTERM and
//      checks it exits cleanly.
// Usage: node tests/ui/ui_test.mjs [--binary build/mriscan]   (env MRISCAN_BIN works too; npm ci in tests/ui first)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const argBinary = process.argv.indexOf('--binary');
const binary = path.resolve(argBinary > 0 ? process.argv[argBinary + 1] : process.env.MRISCAN_BIN || path.join(repo, 'build', 'mriscan'));
const shared = process.env.MRISCAN_SHARED || path.resolve(repo, '..', 'shared');
const dataDir = path.join(shared, 'data', 'brain-tumor-mri');
const screenshots = path.join(here, 'screenshots');
const token = 'ui-test-token-0123456789';
const classes = ['glioma', 'meningioma', 'notumor', 'pituitary'];

function fail(message) {
  console.error('ui_test: FAIL: ' + message);
  process.exitCode = 1;
  throw new Error(message);
}

// Polls `predicate` in the page through page.evaluate: page.waitForFunction compiles its predicate with
// new Function, which the server's Content-Security-Policy (no 'unsafe-eval') refuses.
async function waitUntil(page, predicate, timeout) {
  const deadline = Date.now() + timeout;
  while (!(await page.evaluate(predicate))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${predicate}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function check(condition, message) {
  if (!condition) fail(message);
  console.log('ui_test: ok: ' + message);
}

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(base, server, seconds) {
  for (let i = 0; i < seconds * 5; i++) {
    if (server.exitCode !== null) fail(`the server exited early with status ${server.exitCode}`);
    try {
      const response = await fetch(base + '/ready');
      if (response.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  fail('the server did not become ready');
}

function firstScans(className, count) {
  const dir = path.join(dataDir, 'Testing', className);
  return fs.readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort().slice(0, count).map((f) => path.join(dir, f));
}

async function main() {
  if (!fs.existsSync(binary)) fail(`${binary} not found (build it, or pass --binary PATH)`);
  if (!fs.existsSync(dataDir)) fail(`dataset not found at ${dataDir} (set MRISCAN_SHARED)`);
  fs.mkdirSync(screenshots, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscan-ui-'));

  // 1. A tiny model trained on real scans, so the Visualisations tab has a real history and confusion matrix.
  console.log('ui_test: training a tiny model ...');
  const train = spawnSync(binary, ['train', '--data', dataDir, '--out', path.join(work, 'run'), '--epochs', '2',
    '--width', '0.35', '--image-size', '64', '--max-per-class', '70', '--batch', '16', '--no-test'], { stdio: 'inherit' });
  check(train.status === 0, '`mriscan train` made the initial model');
  // Generated pictures that are not MRIs (mriscan negatives): the first colourful photograph.
  const negatives = spawnSync(binary, ['negatives', '--out', path.join(work, 'negatives'), '--per-kind', '1']);
  check(negatives.status === 0, '`mriscan negatives` wrote the generated pictures');

  // 2. The server.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(binary, ['serve', '--model', path.join(work, 'run', 'model.safetensors'), '--data', dataDir,
    '--state-dir', path.join(work, 'state'), '--port', String(port), '--quiet',
    '--retrain-max-per-class', '6', '--retrain-batch-size', '8', '--replica', 'ui-test',
    '--review-below-percent', '101'],  // every answer goes to the review queue, so the Review tab has work
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, MRISCAN_ADMIN_TOKEN: token } });
  let browser;
  try {
    await waitReady(base, server, 60);
    // A fresh profile folder (playwright's persistent context is how --user-data-dir is passed).
    browser = await chromium.launchPersistentContext(path.join(work, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1360, height: 1000 },
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    // The server's Content-Security-Policy: anything it blocks (inline script or style) is reported here.
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
    });
    await page.goto(base + '/');
    await page.fill('#admin-token', token);
    await page.dispatchEvent('#admin-token', 'change');
    // The header names the server process that answered (X-Replica, /health).
    await waitUntil(page, () => document.getElementById('status-replica').textContent === 'replica ui-test', 10000);

    // 3a. Predict on a real scan (from the Testing split: never trained on).
    await page.setInputFiles('#file-input', firstScans('meningioma', 1)[0]);
    await page.waitForSelector('#predict-result:not([hidden])', { timeout: 60000 });
    const topBarWidth = await page.evaluate(() => document.querySelector('#probability-bars .bar-fill.top').style.width);
    check(/^[0-9.]+%$/.test(topBarWidth) && parseFloat(topBarWidth) > 0,
      `the top probability bar has its width under the CSP (${topBarWidth})`);
    await waitUntil(page, () => document.getElementById('gradcam-img').naturalWidth > 0, 60000);
    const predicted = (await page.textContent('#predicted-class')).trim();
    check(classes.includes(predicted), `prediction shows a class (${predicted})`);
    check((await page.locator('#probability-bars .bar-row').count()) === 4, 'four probability bars');
    const sets = await page.textContent('#prediction-sets');
    check(/95% set: \{.*\} · 99% set: \{.*\}/.test(sets), `the prediction shows its 95% and 99% sets (${sets})`);
    check((await page.textContent('#predict-meta')).includes('model v1'), 'prediction names model v1');
    await page.screenshot({ path: path.join(screenshots, '1-predict.png'), fullPage: true });

    // 3a''. The same scan as a 16-bit MR DICOM whose window maps back onto its pixels: the same class, with sets.
    const pgm = path.join(work, 'scan.pgm');
    const converted = spawnSync('/usr/bin/python3', ['-c',
      'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("L").save(sys.argv[2])',
      firstScans('meningioma', 1)[0], pgm]);
    const made = converted.status === 0 && spawnSync('/usr/bin/python3',
      [path.join(repo, 'tests', 'io', 'make_dicom_fixtures.py'), pgm, path.join(work, 'dicom')]).status === 0;
    check(made, 'a 16-bit MR DICOM made from the scan (pydicom)');
    const jpegMeta = await page.textContent('#predict-meta');
    await page.setInputFiles('#file-input', path.join(work, 'dicom', 'mr16_window.dcm'));
    await waitUntil(page, `document.getElementById('predict-meta').textContent !== ${JSON.stringify(jpegMeta)} &&
      document.getElementById('gradcam-img').naturalWidth > 0`, 60000);
    check((await page.textContent('#predicted-class')).trim() === predicted,
      `the DICOM copy gets the JPEG's class (${predicted})`);
    check(/95% set: \{.*\}/.test(await page.textContent('#prediction-sets')), 'the DICOM answer shows its sets');
    await page.screenshot({ path: path.join(screenshots, '1a-dicom.png'), fullPage: true });

    // 3a'. A photograph is refused: the message, no class, no bars.
    await page.setInputFiles('#file-input', path.join(work, 'negatives', 'photograph_0.png'));
    await page.waitForSelector('#ood-warning:not([hidden])', { timeout: 60000 });
    check((await page.textContent('#ood-warning')).includes('does not look like a brain MRI'), 'a photograph: "does not look like a brain MRI"');
    check(!classes.includes((await page.textContent('#predicted-class')).trim()), 'a photograph gets no class');
    check((await page.locator('#probability-bars .bar-row').count()) === 0, 'a photograph gets no probability bars');
    check(await page.locator('#prediction-sets').isHidden(), 'a photograph gets no prediction sets');
    await page.screenshot({ path: path.join(screenshots, '1b-not-an-mri.png'), fullPage: true });

    // 3b. Visualisations: charts from /dataset_stats and the active model's metadata.
    await page.click('.tab[data-tab=visualise]');
    await waitUntil(page, () => Boolean(window.Chart && Chart.getChart('chart-classes') && Chart.getChart('chart-history')),
      60000);
    await page.waitForSelector('#confusion table', { timeout: 30000 });
    check(true, 'class distribution, history and confusion matrix drawn');
    await page.waitForTimeout(800);  // chart animations
    await page.screenshot({ path: path.join(screenshots, '2-visualisations.png'), fullPage: true });

    // 3c. Upload two scans with a label, then retrain for one epoch on a tiny subset.
    await page.click('.tab[data-tab=retrain]');
    await page.setInputFiles('#upload-files', firstScans('glioma', 2));
    await page.selectOption('#upload-label', 'glioma');
    await page.click('#upload-button');
    await page.waitForSelector('#upload-result .ok', { timeout: 30000 });
    check((await page.textContent('#upload-result')).includes('2 stored'), 'two scans uploaded');
    await page.fill('#epochs', '1');
    await page.fill('#frozen-blocks', '12');
    await page.fill('#learning-rate', '0.001');
    await page.click('#retrain-button');
    await page.waitForSelector('#job-status b', { timeout: 30000 });
    await page.screenshot({ path: path.join(screenshots, '3-retrain-running.png'), fullPage: true });
    await page.waitForSelector('#job-status b.status-completed, #job-status b.status-failed', { timeout: 900000 });
    check((await page.textContent('#job-status')).includes('completed'), 'retraining job completed');
    check((await page.textContent('#job-result')).includes('v2'), 'job result names the new version v2');
    await page.screenshot({ path: path.join(screenshots, '4-retrain-done.png'), fullPage: true });

    // 3d. Models: both versions listed, with service statistics.
    await page.click('.tab[data-tab=models]');
    await waitUntil(page, () => document.querySelectorAll('#models-table tbody tr').length >= 2, 30000);
    check(true, 'models tab lists two versions');
    await page.waitForSelector('#latency-table tbody tr', { timeout: 30000 });
    await waitUntil(page, () => document.getElementById('model-card').textContent.includes('Not a medical device'), 30000);
    check(true, 'models tab shows the active model card, "Not a medical device" included');
    await page.screenshot({ path: path.join(screenshots, '5-models.png'), fullPage: true });
    await waitUntil(page, () => document.getElementById('drift-summary').textContent.includes('of the last'), 30000);
    check(true, 'models tab shows the monitoring card: ' + (await page.textContent('#drift-summary')));

    // 3e. Review: the photograph (withheld) is discarded, the real scan labelled (a training upload).
    await page.click('.tab[data-tab=review]');
    await waitUntil(page, () => document.querySelectorAll('#review-table tbody tr').length >= 2, 30000);
    await waitUntil(page, () => document.getElementById('review-img').naturalWidth > 0, 30000);
    check((await page.textContent('#review-title')).includes('out of distribution'),
      'the newest review is the withheld photograph, with its scan shown');
    await page.screenshot({ path: path.join(screenshots, '6-review.png'), fullPage: true });
    await page.click('#review-discard-button');
    await waitUntil(page, () => document.getElementById('review-result').textContent.includes('discarded'), 30000);
    await waitUntil(page, () => document.getElementById('review-title').textContent.startsWith('Review 2:'), 30000);
    await waitUntil(page, () => document.getElementById('review-gradcam').naturalWidth > 0, 60000);
    await page.selectOption('#review-label', 'meningioma');
    await page.click('#review-label-button');
    await waitUntil(page, () => document.getElementById('review-result').textContent.includes('training upload'), 30000);
    check(true, 'a review labelled: ' + (await page.textContent('#review-result')));

    // 3f. Audit: every answer, the photograph's withheld, with the input's hash and request id.
    await page.click('.tab[data-tab=audit]');
    await waitUntil(page, () => document.querySelectorAll('#audit-table tbody tr').length >= 2, 30000);
    check((await page.textContent('#audit-table')).includes('withheld'), 'the audit trail lists the withheld answer');
    await page.fill('#audit-answer', 'withheld');
    await page.click('#audit-search');
    await waitUntil(page, () => document.getElementById('audit-summary').textContent.startsWith('1 entries'), 30000);
    check(true, 'the audit trail filters by answer');
    await page.screenshot({ path: path.join(screenshots, '7-audit.png'), fullPage: true });
    check(pageErrors.length === 0, 'no JavaScript errors in the page' + (pageErrors.length ? ': ' + pageErrors.join('; ') : ''));
  } finally {
    if (browser) await browser.close();
    // 4. Graceful shutdown.
    const exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
    server.kill('SIGTERM');
    const { code } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 60000))]);
    if (code !== 0) {
      server.kill('SIGKILL');
      fail(`server did not exit cleanly after SIGTERM (${code})`);
    }
    console.log('ui_test: ok: server exited cleanly after SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`ui_test: PASS (screenshots in ${screenshots})`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
