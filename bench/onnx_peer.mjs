// ONNX Runtime peer of bench/compare_pytorch.py: times an exported MobileNetV2 at batch 1 and batch N on the CPU
// execution provider and prints one JSON document (the same fields as `mriscan bench --json`).
// onnxruntime-node is the one the tests install (tests/ui/node_modules); this script resolves it from there
// rather than installing a second copy.
// Usage: node bench/onnx_peer.mjs MODEL.onnx THREADS BATCH IMAGE_SIZE REPEATS
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/ui/package.json', import.meta.url));
const ort = require('onnxruntime-node');

const [model, threads, batch, size, repeats] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
if (!model || !(threads > 0) || !(batch > 0) || !(size > 0) || !(repeats > 0)) {
  console.error('usage: node bench/onnx_peer.mjs MODEL.onnx THREADS BATCH IMAGE_SIZE REPEATS');
  process.exit(2);
}
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(n, count) {
  const data = Float32Array.from({ length: n * 3 * size * size }, () => Math.random() * 2 - 1);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [n, 3, size, size]) };  // (N, 3, S, S)
  for (let i = 0; i < 3; ++i) await session.run(feeds);  // warm-up
  const ms = [];
  for (let i = 0; i < count; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const m = median(ms);
  return { median_ms: m, images_per_second: (1e3 * n) / m, runs_ms: ms };
}

const ortPackage = new URL('../tests/ui/node_modules/onnxruntime-node/package.json', import.meta.url);
const result = { threads, onnxruntime: JSON.parse(fs.readFileSync(ortPackage)).version };
result.infer1 = await time(1, Math.max(repeats, 20));
result.infer = await time(batch, repeats);
console.log(JSON.stringify(result));
