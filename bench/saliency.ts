/**
 * Speed of the Itti-Koch-Niebur model: a 512x512 image end to end, against the straightforward
 * NumPy/SciPy implementation of the same pipeline (tools/itti_numpy.py under /usr/bin/python3)
 * measured in the same run, which also checks that both compute the same saliency map.
 *
 * `saliencyBench()` is a part of `npm run bench` (columns SALIENCY_COLUMNS); run alone with
 * `node --import tsx bench/saliency.ts` to print its table.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readImage, type Tensor } from '../src/index.js';
import { ittiSaliency, scanpath, searchArray } from '../src/saliency/index.js';
import {
  bestMs,
  fixed,
  type PartResult,
  PYTHON,
  printTable,
  pythonHas,
  ROOT,
  type Row,
  runJson,
} from './common.js';

const PHOTO = '/work/shared/images/astronaut.png';
const ROUNDS = 3;
const PEER_REPEAT = 10;

/** A 512x512 photograph when the shared images are there, else a generated search array. */
async function benchImage(): Promise<{ image: Tensor; what: string }> {
  try {
    const image = await readImage(PHOTO);
    if (image.shape[1] === 512 && image.shape[2] === 512) return { image, what: 'astronaut.png' };
  } catch {
    // not on this machine: fall through to a generated image
  }
  return {
    image: searchArray({ kind: 'color', seed: 1, size: 512 }).image,
    what: 'a generated search array',
  };
}

interface NumpyReport {
  times_ms: number[];
  numpy: string;
  scipy: string;
}

/** Best ms of tools/itti_numpy.py on the image, and its saliency map. */
function numpyRun(image: Tensor, dir: string): { ms: number; saliency: Float32Array; report: NumpyReport } {
  const [, h, w] = image.shape;
  const input = join(dir, 'image.f32');
  const output = join(dir, 'saliency.f32');
  const data = image.data as Float32Array;
  writeFileSync(input, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const report = runJson<NumpyReport>(PYTHON, [
    join(ROOT, 'tools', 'itti_numpy.py'),
    input,
    String(h),
    String(w),
    '--repeat',
    String(PEER_REPEAT),
    '--out',
    output,
  ]);
  const bytes = readFileSync(output);
  const saliency = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
  return { ms: Math.min(...report.times_ms), saliency, report };
}

export async function saliencyBench(): Promise<PartResult> {
  const { image, what } = await benchImage();
  const notes = [
    `${what} (3, 512, 512); best of each side over ${ROUNDS} alternating rounds; the model runs on Float32Array planes of its own, so js and native backends take the same time`,
  ];
  const result = ittiSaliency(image);
  const peerReady = pythonHas('numpy', 'scipy');
  if (!peerReady)
    notes.push(`NumPy/SciPy unavailable (${PYTHON} -c "import numpy, scipy" failed): no peer column`);
  let glimpse = Number.POSITIVE_INFINITY;
  let numpy: number | null = null;
  let peer: ReturnType<typeof numpyRun> | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-bench-saliency-'));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      glimpse = Math.min(
        glimpse,
        bestMs(() => ittiSaliency(image)),
      );
      if (peerReady) {
        peer = numpyRun(image, dir);
        numpy = Math.min(numpy ?? Number.POSITIVE_INFINITY, peer.ms);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (peer) {
    const ours = result.saliency.data as Float32Array;
    let diff = 0;
    let max = 0;
    for (let i = 0; i < ours.length; i++) {
      diff = Math.max(diff, Math.abs(ours[i] - peer.saliency[i]));
      max = Math.max(max, Math.abs(peer.saliency[i]));
    }
    notes.push(
      `peer: tools/itti_numpy.py, NumPy ${peer.report.numpy}, SciPy ${peer.report.scipy}; saliency maps agree to ${(diff / (max || 1)).toExponential(1)} of their maximum`,
    );
  }
  const scan = bestMs(() => scanpath(result, { fixations: 5 }));
  const rows: Row[] = [
    {
      stage: 'ittiSaliency, 512x512',
      glimpse: fixed(glimpse),
      numpy: fixed(numpy),
      speedup: numpy === null ? '-' : `${fixed(numpy / glimpse, 2)}x`,
    },
    { stage: 'scanpath, 5 fixations', glimpse: fixed(scan, 2), numpy: '-', speedup: '-' },
  ];
  return { part: 'saliency', rows, notes };
}

export const SALIENCY_COLUMNS: Array<[string, string]> = [
  ['stage', 'Itti-Koch-Niebur'],
  ['glimpse', 'glimpse ms'],
  ['numpy', 'NumPy/SciPy ms'],
  ['speedup', 'numpy / glimpse'],
];

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { rows, notes } = await saliencyBench();
  printTable('saliency', rows, SALIENCY_COLUMNS);
  for (const note of notes) console.log(`  ${note}`);
}
