// Size-class check for SD 1.5 (UNet ≈ 3.4 GB of fp32 external data): writes a synthetic model whose
// external weights total DIFFMIX_LARGE_GB (default 2.5 GB, i.e. past protobuf's 2 GiB limit) to a
// temp folder, then loads it, replaces one initializer, serialises with in-memory external data
// and runs it on ONNX Runtime, printing times and peak RSS. Needs ~3× the size in free RAM.
//   node bench/large-model.mjs            (after `npx tsup`)
import { mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOrtSession, loadOnnxModel, onnx } from '../dist/index.js';

const ort = createRequire(import.meta.url)('onnxruntime-node');
const totalBytes = Number(process.env.DIFFMIX_LARGE_GB ?? 2.5) * 2 ** 30;
const perTensor = 256 * 2 ** 20; // 256 MiB each
const count = Math.ceil(totalBytes / perTensor);
const n = perTensor / 4;
const dir = await mkdtemp(join(tmpdir(), 'diffmix-large-'));
const gb = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;
let peak = 0;
const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
const timer = setInterval(sample, 50);
try {
  // y = x + W0 + W1 + … ; W_i filled with the value i+1 → y = x + count(count+1)/2
  const data = await open(join(dir, 'model.onnx_data'), 'w');
  const chunk = new Float32Array(n);
  const inits = [];
  const nodes = [];
  for (let i = 0; i < count; i++) {
    chunk.fill(i + 1);
    await data.write(new Uint8Array(chunk.buffer), 0, perTensor, i * perTensor);
    inits.push({ name: `W${i}`, dataType: 1, dims: [n], dataLocation: 1, externalData: [
      { key: 'location', value: 'model.onnx_data' }, { key: 'offset', value: String(i * perTensor) }, { key: 'length', value: String(perTensor) }] });
    nodes.push({ name: `/block${i}/Add`, opType: 'Add', input: [i === 0 ? 'x' : `h${i - 1}`, `W${i}`], output: [i === count - 1 ? 'y' : `h${i}`] });
  }
  await data.close();
  const vi = (name) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: n }] } } } });
  const model = { irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'large', node: nodes, initializer: inits, input: [vi('x')], output: [vi('y')] } };
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  console.log(`wrote ${count} × 256 MiB = ${gb(count * perTensor)} of external data`);

  let t = performance.now();
  const m = await loadOnnxModel(dir);
  console.log(`load: ${(performance.now() - t).toFixed(0)} ms (external data not read), rss ${gb(process.memoryUsage().rss)}`);
  t = performance.now();
  m.setInitializer('W0', { data: new Float32Array(n).fill(100) }); // 1 → 100
  const ser = m.serialize();
  console.log(`serialize: ${(performance.now() - t).toFixed(0)} ms, protobuf ${ser.model.byteLength} bytes, ${ser.externalData.length} in-memory external files, rss ${gb(process.memoryUsage().rss)}`);
  t = performance.now();
  const session = await createOrtSession(ort, ser);
  console.log(`ORT session: ${(performance.now() - t).toFixed(0)} ms, rss ${gb(process.memoryUsage().rss)}`);
  const x = new Float32Array(n).fill(0.5);
  const out = await session.run({ x: new ort.Tensor('float32', x, [n]) });
  const y = out.y.data;
  const want = 0.5 + (count * (count + 1)) / 2 - 1 + 100;
  console.log(`y[0] = ${y[0]}, y[n-1] = ${y[n - 1]} (want ${want}) → ${y[0] === want && y[n - 1] === want ? 'OK' : 'MISMATCH'}`);
  sample();
  console.log(`peak rss ${gb(peak)}`);
} finally {
  clearInterval(timer);
  await rm(dir, { recursive: true, force: true });
}
