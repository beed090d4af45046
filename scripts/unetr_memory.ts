/**
 * Peak memory of UNETR inference on a 96^3 volume in the standard configuration (MONAI's UNETR:
 * patch 16, hidden 768, 12 layers, 12 heads, MLP 3072, feature size 16; 1 channel in, 14 out).
 *
 *   node --import tsx scripts/unetr_memory.ts                  # forward in this process: time, peak RSS
 *   node --import tsx scripts/unetr_memory.ts --write DIR      # DIR/unetr_monai.safetensors (random
 *                                                              # weights under MONAI's names) + DIR/volume96.npy
 *   /usr/bin/time -v node bin/glimpse.js segment DIR/volume96.npy --weights DIR/unetr_monai.safetensors --out DIR/seg
 *
 * The first form prints one JSON line; the last measures the whole CLI path (reading the 370 MB
 * checkpoint, building the model, inference, writing the outputs).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
// Registers the native backend (the default when its addon loads).
import '../src/backend/native.js';
import { getBackend } from '../src/backend/backend.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { UNETR } from '../src/models/unetr.js';
import { manualSeed, randn } from '../src/ops/creation.js';
import { encodeNpyUint8 } from '../src/segment/volume_io.js';
import { noGrad } from '../src/tensor/autograd.js';

const { values } = parseArgs({
  options: { write: { type: 'string' }, size: { type: 'string', default: '96' } },
});
const size = Number(values.size);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

manualSeed(0);
if (values.write) {
  const model = new UNETR({ imgSize: size });
  const monai = new Map(
    [...model.stateDict()].map(([k, t]) => [
      k
        .replace('.attn.proj.', '.attn.out_proj.')
        .replace('.mlp.fc1.', '.mlp.linear1.')
        .replace('.mlp.fc2.', '.mlp.linear2.'),
      t,
    ]),
  );
  writeSafetensors(join(values.write, 'unetr_monai.safetensors'), monai);
  // A float32 .npy volume: the uint8 encoder's header with the dtype bytes '|u1' patched to '<f4'.
  const vol = randn([size, size, size]).data as Float32Array;
  const header = encodeNpyUint8(new Uint8Array(0), [size, size, size]);
  const at = new TextDecoder('latin1').decode(header).indexOf('|u1');
  header.set(new TextEncoder().encode('<f4'), at);
  const bytes = new Uint8Array(header.length + vol.byteLength);
  bytes.set(header, 0);
  bytes.set(new Uint8Array(vol.buffer), header.length);
  writeFileSync(join(values.write, `volume${size}.npy`), bytes);
  console.log(
    `wrote ${values.write}/unetr_monai.safetensors (${model.numParameters()} parameters) and volume${size}.npy`,
  );
} else {
  const model = new UNETR({ imgSize: size }).eval();
  const x = randn([1, 1, size, size, size]);
  const before = process.resourceUsage().maxRSS * 1024;
  const started = performance.now();
  const y = noGrad(() => model.forward(x));
  const seconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      backend: getBackend(),
      parameters: model.numParameters(),
      input: x.shape,
      output: y.shape,
      seconds: Math.round(seconds * 10) / 10,
      peak_rss_mib_before_forward: mib(before),
      peak_rss_mib: mib(process.resourceUsage().maxRSS * 1024),
    }),
  );
}
