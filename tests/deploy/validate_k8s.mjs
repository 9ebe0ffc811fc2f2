// Offline checks of the Kubernetes manifests under deploy/k8s (ctest KubernetesManifests), with no cluster:
//   1. every YAML document parses and validates against the Kubernetes API's JSON schemas (kubernetes-models),
//      strictly: a field the schema does not know is an error, as with kubectl's default field validation, so a
//      misspelt `readinesProbe` cannot vanish silently; every file a kustomization.yaml lists exists;
//   2. the objects agree with each other: --port, the container port, the probes' ports and the Service's
//      targetPort; --threads and the CPU request and limit; selectors and pod labels; the HPA's target; the Secret
//      names and keys and the PersistentVolumeClaims referred to; writable paths on volumes;
//   3. deliberately broken copies, made in memory, are rejected by (1) and (2), so a check that lets everything
//      through fails here;
//   4. the real server, started with the Deployment's own arguments (host, port, state and web folders made local;
//      no --model, no database: SQLite in a temporary folder), answers every httpGet probe path (liveness 200,
//      readiness 503 without a model, none 404), stops on SIGTERM within the grace period, and refuses the
//      example Secret's placeholder admin token.
// What it is not: a test on a cluster (nothing is applied) nor of PostgreSQL mode (no database here).
// Usage: node tests/deploy/validate_k8s.mjs --binary build/mriscan   (npm ci in tests/deploy first)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const manifestsDir = path.join(repo, 'deploy', 'k8s');
const argBinary = process.argv.indexOf('--binary');
const binary = argBinary > 0 ? path.resolve(process.argv[argBinary + 1]) : null;
let passed = 0;
let failed = 0;

function check(condition, message) {
  if (condition) passed++;
  else failed++;
  console.log(`validate_k8s: ${condition ? 'ok' : 'FAIL'}: ${message}`);
}

// ---- 1. Parsing and the schemas ----

function yamlFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

// Every document of every file, as { where, file, doc }; YAML errors (duplicate keys included) are problems.
function loadManifests(problems) {
  const manifests = [];
  for (const file of yamlFiles(manifestsDir)) {
    parseAllDocuments(fs.readFileSync(file, 'utf8')).forEach((document, index) => {
      const where = `${path.relative(repo, file)}#${index + 1}`;
      for (const error of [...document.errors, ...document.warnings]) problems.push(`${where}: ${error.message}`);
      const doc = document.toJS();
      if (doc !== null) manifests.push({ where, file, doc });
    });
  }
  return manifests;
}

// The fields of `data` that the schema never looked at. kubernetes-models' validators are compiled JSON schemas
// that read each property they know (and enumerate the keys of maps such as labels), so, run on a proxy that
// records reads, every property never read is one the schema does not know.
function validateStrictly(Model, data) {
  const seen = new Set();
  const present = [];
  const proxies = new WeakMap();
  const wrap = (value, at) => {
    if (value === null || typeof value !== 'object') return value;
    if (proxies.has(value)) return proxies.get(value);
    if (!Array.isArray(value)) for (const key of Object.keys(value)) present.push(`${at}/${key}`);
    const proxy = new Proxy(value, {
      get(target, key) {
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return Reflect.get(target, key);
        seen.add(`${at}/${key}`);
        return wrap(target[key], `${at}/${key}`);
      },
      ownKeys(target) {
        for (const key of Object.keys(target)) seen.add(`${at}/${key}`);
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  try {
    Model.prototype.validate.call(wrap(data, ''));
  } catch (error) {
    return [error.message];
  }
  return present.filter((field) => !seen.has(field)).map((field) => `unknown field ${field}`);
}

async function schemaProblems(manifests) {
  const problems = [];
  for (const { where, file, doc } of manifests) {
    if (doc.kind === 'Kustomization') {
      for (const resource of doc.resources || []) {
        if (!fs.existsSync(path.join(path.dirname(file), resource))) problems.push(`${where}: ${resource} is missing`);
      }
      continue;
    }
    let group;
    try {
      group = await import(`kubernetes-models/${doc.apiVersion}`);
    } catch {
      problems.push(`${where}: no schemas for apiVersion ${doc.apiVersion}`);
      continue;
    }
    if (typeof group[doc.kind] !== 'function') {
      problems.push(`${where}: no kind ${doc.kind} in ${doc.apiVersion}`);
      continue;
    }
    for (const problem of validateStrictly(group[doc.kind], doc)) problems.push(`${where}: ${problem}`);
  }
  return problems;
}

// ---- 2. The objects against each other ----

function cpuCores(quantity) {
  const text = String(quantity);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

function optionValue(args, name) {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

const isSubset = (labels, of) => Object.entries(labels || {}).every(([key, value]) => of?.[key] === value);

// A probe's or a Service's port (a number, or the name of a container port) as a number, or undefined.
function resolvePort(port, containers) {
  if (typeof port === 'number') return containers.some((c) => (c.ports || []).some((p) => p.containerPort === port))
    ? port : undefined;
  for (const c of containers) for (const p of c.ports || []) if (p.name === port) return p.containerPort;
  return undefined;
}

const probesOf = (container) => ['startupProbe', 'livenessProbe', 'readinessProbe']
  .filter((kind) => container[kind]).map((kind) => ({ kind, probe: container[kind] }));

// The mriscan server's container: the one whose command and arguments run `serve`.
const serverContainer = (podSpec) => podSpec.containers.find((c) => [...(c.command || []), ...(c.args || [])]
  .includes('serve'));

function crossProblems(manifests) {
  const problems = [];
  const objects = manifests.filter(({ doc }) => doc.kind !== 'Kustomization');
  const named = (kind, name) => objects.find(({ doc }) => doc.kind === kind && doc.metadata?.name === name);
  const workloads = objects.filter(({ doc }) => ['Deployment', 'StatefulSet'].includes(doc.kind));
  const podSpecs = [...workloads.map(({ where, doc }) => ({ where, doc, spec: doc.spec.template.spec })),
    ...objects.filter(({ doc }) => doc.kind === 'Pod').map(({ where, doc }) => ({ where, doc, spec: doc.spec }))];

  for (const { where, doc } of workloads) {
    if (!isSubset(doc.spec.selector.matchLabels, doc.spec.template.metadata?.labels))
      problems.push(`${where}: the selector does not match the pod template's labels`);
    if (doc.kind === 'StatefulSet' && !named('Service', doc.spec.serviceName))
      problems.push(`${where}: no Service ${doc.spec.serviceName}`);
  }
  for (const { where, doc, spec } of podSpecs) {
    const claimTemplates = (doc.spec.volumeClaimTemplates || []).map((t) => t.metadata.name);
    const volumes = [...(spec.volumes || []).map((v) => v.name), ...claimTemplates];
    for (const volume of spec.volumes || []) {
      const claim = volume.persistentVolumeClaim?.claimName;
      if (claim && !named('PersistentVolumeClaim', claim)) problems.push(`${where}: no PersistentVolumeClaim ${claim}`);
    }
    for (const c of spec.containers) {
      for (const mount of c.volumeMounts || []) {
        if (!volumes.includes(mount.name)) problems.push(`${where}: ${c.name} mounts unknown volume ${mount.name}`);
      }
      for (const env of c.env || []) {
        const ref = env.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = named('Secret', ref.name)?.doc;
        if (!secret) problems.push(`${where}: ${env.name} reads Secret ${ref.name}, which no manifest shows`);
        else if (!(ref.key in { ...secret.data, ...secret.stringData }))
          problems.push(`${where}: ${env.name} reads key ${ref.key}, which Secret ${ref.name} does not have`);
      }
      for (const { kind, probe } of probesOf(c)) {
        const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
        if (port !== undefined && resolvePort(port, [c]) === undefined)
          problems.push(`${where}: ${c.name}'s ${kind} port ${port} is no container port`);
      }
    }
    const server = serverContainer(spec);
    if (server) problems.push(...serverProblems(where, spec, server));
  }

  for (const { where, doc } of objects.filter((o) => o.doc.kind === 'Service')) {
    const targets = workloads.filter((w) => isSubset(doc.spec.selector, w.doc.spec.template.metadata.labels));
    if (targets.length === 0) problems.push(`${where}: the selector matches no workload's pods`);
    for (const target of targets) {
      for (const port of doc.spec.ports) {
        if (resolvePort(port.targetPort ?? port.port, target.doc.spec.template.spec.containers) === undefined)
          problems.push(`${where}: targetPort ${port.targetPort} is no container port of ${target.doc.metadata.name}`);
      }
    }
  }
  for (const { where, doc } of objects.filter((o) => o.doc.kind === 'HorizontalPodAutoscaler')) {
    const target = named(doc.spec.scaleTargetRef.kind, doc.spec.scaleTargetRef.name)?.doc;
    if (!target) problems.push(`${where}: no ${doc.spec.scaleTargetRef.kind} ${doc.spec.scaleTargetRef.name}`);
    else if (target.spec.template.spec.containers.some((c) => !c.resources?.requests?.cpu))
      problems.push(`${where}: CPU utilisation needs a CPU request in every container of the target`);
  }
  for (const { where, doc } of objects.filter((o) => o.doc.kind === 'PodDisruptionBudget')) {
    if (!workloads.some((w) => isSubset(doc.spec.selector.matchLabels, w.doc.spec.template.metadata.labels)))
      problems.push(`${where}: the selector matches no workload's pods`);
  }
  return problems;
}

// The server's container against its own arguments and the probes, ports and shutdown around it.
function serverProblems(where, spec, c) {
  const problems = [];
  const args = [...(c.command || []), ...(c.args || [])];
  const port = Number(optionValue(args, '--port'));
  const http = (c.ports || []).find((p) => p.name === 'http');
  if (http?.containerPort !== port) problems.push(`${where}: container port http is not --port ${port}`);
  if (optionValue(args, '--host') !== '0.0.0.0') problems.push(`${where}: --host must be 0.0.0.0 to be reachable`);
  const threads = Number(optionValue(args, '--threads'));
  const { requests = {}, limits = {} } = c.resources || {};
  if (!(threads > 0 && cpuCores(requests.cpu) === threads && cpuCores(limits.cpu) === threads))
    problems.push(`${where}: the CPU request ${requests.cpu} and limit ${limits.cpu} are not --threads ${threads}`);
  const mounted = (file) => (c.volumeMounts || [])
    .some((m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`));
  const stateDir = optionValue(args, '--state-dir');
  if (!stateDir || !mounted(stateDir)) problems.push(`${where}: --state-dir ${stateDir} is on no volume`);
  const model = optionValue(args, '--model');
  if (model && !mounted(model)) problems.push(`${where}: --model ${model} is on no volume`);
  const replica = (c.env || []).find((e) => e.name === 'MRISCAN_REPLICA');
  if (replica?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name')
    problems.push(`${where}: MRISCAN_REPLICA is not the pod's name`);
  if (!['MRISCAN_ADMIN_TOKEN', 'MRISCAN_DATABASE_URL'].every((name) => (c.env || []).some((e) => e.name === name)))
    problems.push(`${where}: MRISCAN_ADMIN_TOKEN and MRISCAN_DATABASE_URL must both be set`);
  for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    if (!c[kind]?.httpGet) problems.push(`${where}: no httpGet ${kind}`);
  }
  const sleep = Number(c.lifecycle?.preStop?.exec?.command?.at(-1));
  if (!(sleep > 0 && sleep < (spec.terminationGracePeriodSeconds ?? 30) / 2))
    problems.push(`${where}: preStop must sleep briefly, well within terminationGracePeriodSeconds`);
  return problems;
}

// The objects are compared only once each has the shape its schema gives.
async function problemsOf(manifests) {
  const problems = await schemaProblems(manifests);
  return problems.length > 0 ? problems : crossProblems(manifests);
}

// ---- 3. Broken copies ----

const deploymentOf = (manifests) => manifests
  .find(({ doc }) => doc.kind === 'Deployment' && serverContainer(doc.spec.template.spec));
const serverOf = (manifests) => serverContainer(deploymentOf(manifests).doc.spec.template.spec);

const brokenCopies = [
  ['replicas as a string', /spec\/replicas must be integer/, (m) => { deploymentOf(m).doc.spec.replicas = 'two'; }],
  ['a misspelt readinessProbe', /unknown field .*\/readinesProbe/, (m) => {
    const c = serverOf(m);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  }],
  ['a CPU limit other than --threads', /not --threads/, (m) => { serverOf(m).resources.limits.cpu = '1'; }],
  ["a Service targetPort that names no container port", /targetPort htp/, (m) => {
    m.find(({ doc }) => doc.kind === 'Service' && doc.metadata.name === 'mriscan').doc.spec.ports[0].targetPort = 'htp';
  }],
  ['a Secret key that the Secret lacks', /key admin-tokn/, (m) => {
    serverOf(m).env.find((e) => e.name === 'MRISCAN_ADMIN_TOKEN').valueFrom.secretKeyRef.key = 'admin-tokn';
  }],
  ['a probe on another port', /port 9090 is no container port/, (m) => {
    serverOf(m).livenessProbe.httpGet.port = 9090;
  }],
];

// ---- 4. The real server ----

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function status(url) {
  try {
    return (await fetch(url)).status;
  } catch {
    return 0;  // not listening (yet)
  }
}

// The Deployment's command and arguments for this machine: the binary instead of the image's path, a local host,
// port and folders, and no --model (no volume here: the server starts with an empty registry).
function localArgs(container, port, work) {
  const args = [...container.command.slice(1), ...container.args];
  const local = { '--host': '127.0.0.1', '--port': String(port), '--state-dir': path.join(work, 'state'),
    '--web-root': path.join(repo, 'server') };
  const result = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i];
    if (name === '--model') {
      i++;
      continue;
    }
    result.push(name);
    if (name in local) {
      result.push(local[name]);
      i++;  // the manifest's value
    }
  }
  return result;
}

async function checkServer(manifests) {
  const { doc } = deploymentOf(manifests);
  const container = serverOf(manifests);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscan-k8s-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, MRISCAN_REPLICA: 'mriscan-validate-k8s',
    MRISCAN_ADMIN_TOKEN: 'validate-k8s-token-0123456789' };
  delete env.MRISCAN_DATABASE_URL;
  const args = localArgs(container, port, work);
  const server = spawn(binary, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  const exited = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
  try {
    const startup = container.startupProbe.httpGet.path;
    for (let i = 0; i < 150 && server.exitCode === null && (await status(base + startup)) !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    check(server.exitCode === null, `the server runs with the Deployment's arguments: ${args.join(' ')}`);
    for (const { kind, probe } of probesOf(container)) {
      const code = await status(base + probe.httpGet.path);
      const expected = kind === 'readinessProbe' ? 503 : 200;  // no model loaded: alive, not ready
      check(code === expected, `${kind} ${probe.httpGet.path} answers ${code} (expected ${expected}; never 404)`);
    }
    const started = Date.now();
    server.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, 30000, 'timeout'); });
    const code = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    const seconds = (Date.now() - started) / 1000;
    const grace = doc.spec.template.spec.terminationGracePeriodSeconds;
    check(code === 0 && seconds < grace, `SIGTERM: exit ${code} after ${seconds.toFixed(1)} s (grace ${grace} s)`);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }

  const secret = manifests.find(({ doc: d }) => d.kind === 'Secret' && d.metadata.name === 'mriscan').doc;
  const refused = spawnSync(binary, ['serve', '--port', '0', '--state-dir', path.join(work, 'refused')],
    { env: { ...env, MRISCAN_ADMIN_TOKEN: secret.stringData['admin-token'] }, encoding: 'utf8', timeout: 20000 });
  check(refused.status !== 0 && /16\+ characters/.test(refused.stderr),
    "the server refuses the example Secret's placeholder admin token");
  fs.rmSync(work, { recursive: true, force: true });
}

async function main() {
  if (!binary || !fs.existsSync(binary)) {
    console.error('usage: node tests/deploy/validate_k8s.mjs --binary build/mriscan (the server binary)');
    process.exit(2);
  }
  const loadErrors = [];
  const manifests = loadManifests(loadErrors);
  const kinds = manifests.map(({ doc }) => doc.kind).join(', ');
  check(loadErrors.length === 0 && manifests.length > 0, `${manifests.length} documents parse: ${kinds}`);
  loadErrors.forEach((problem) => console.log(`  ${problem}`));

  const problems = await problemsOf(manifests);
  check(problems.length === 0, 'every document validates strictly against its schema, and the objects agree');
  problems.forEach((problem) => console.log(`  ${problem}`));

  for (const [name, expected, breakIt] of brokenCopies) {
    const copy = structuredClone(manifests);
    breakIt(copy);
    const found = await problemsOf(copy);
    check(found.some((problem) => expected.test(problem)), `a copy with ${name} is rejected: ${found.join('; ')}`);
  }

  await checkServer(manifests);
  console.log(`validate_k8s: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

await main();
