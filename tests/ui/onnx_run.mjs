// Runs an ONNX model with ONNX Runtime (onnxruntime-node, CPU) on a raw float32 input file and prints the
// outputs as JSON. Used by tests/tools/interop_test.py to check `interop/export_onnx.py` against mriscan.
// Usage: node tests/ui/onnx_run.mjs MODEL.onnx INPUT.f32 N H W C   (INPUT: N*H*W*C little-endian float32)
import fs from 'node:fs';
import ort from 'onnxruntime-node';

const [model, inputPath, ...dims] = process.argv.slice(2);
const shape = dims.map(Number);
if (!model || !inputPath || shape.length !== 4 || shape.some((d) => !(d > 0))) {
  console.error('usage: node onnx_run.mjs MODEL.onnx INPUT.f32 N H W C');
  process.exit(2);
}
const bytes = fs.readFileSync(inputPath);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
if (data.length !== shape.reduce((a, b) => a * b, 1)) {
  console.error(`onnx_run: ${inputPath} holds ${data.length} floats, not ${shape.join('x')}`);
  process.exit(2);
}
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const outputs = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
const result = {};
for (const [name, tensor] of Object.entries(outputs)) result[name] = { dims: tensor.dims, data: Array.from(tensor.data) };
console.log(JSON.stringify(result));
