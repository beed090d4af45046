/** Volume files, segmentation checkpoints and `glimpse segment` end to end on tiny random models. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { after, describe, test } from 'node:test';
import { writeImage } from '../../src/io/image.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { TransUNet } from '../../src/models/transunet.js';
import { UNETR } from '../../src/models/unetr.js';
import { manualSeed, rand, randn } from '../../src/ops/creation.js';
import { loadSegmentationCheckpoint, saveSegmentationCheckpoint } from '../../src/segment/model.js';
import {
  encodeNiftiLabels,
  encodeNpyUint8,
  parseNifti,
  parseNpy,
  readVolume,
} from '../../src/segment/volume_io.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { assertClose } from '../helpers/assert.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-segment-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TRANSUNET = {
  imgSize: 32,
  inChans: 1,
  numClasses: 3,
  resnetLayers: [1, 1, 1],
  resnetWidth: 8,
  gnGroups: 4,
  hiddenSize: 16,
  numLayers: 1,
  numHeads: 2,
  mlpDim: 32,
  decoderChannels: [8, 8, 4, 4],
  headChannels: 8,
};
const UNETR_TINY = {
  inChannels: 1,
  outChannels: 3,
  imgSize: 16,
  patchSize: 8,
  featureSize: 2,
  hiddenSize: 8,
  mlpDim: 16,
  numHeads: 2,
  numLayers: 2,
  skipLayers: [0, 1],
};

const glimpse = (args: string[]) => runCli(args, true);

/** A minimal NIfTI-1 header for an (nz, ny, nx) float32 volume with voxel size (dx, dy, dz). */
function niftiFloat32(data: Float32Array, [nz, ny, nx]: number[], [dx, dy, dz]: number[]): Uint8Array {
  const out = new Uint8Array(352 + 4 * data.length);
  const v = new DataView(out.buffer);
  v.setInt32(0, 348, true);
  for (const [i, d] of [3, nx, ny, nz, 1, 1, 1, 1].entries()) v.setInt16(40 + 2 * i, d, true);
  v.setInt16(70, 16, true);
  v.setInt16(72, 32, true);
  for (const [i, d] of [1, dx, dy, dz].entries()) v.setFloat32(76 + 4 * i, d, true);
  v.setFloat32(108, 352, true);
  out.set(new TextEncoder().encode('n+1\0'), 344);
  new Float32Array(out.buffer, 352).set(data);
  return out;
}

describe('volume files', () => {
  test('.npy: uint8 written and read back; float32 headers parsed; Fortran order refused', () => {
    const labels = Uint8Array.from({ length: 24 }, (_, i) => i % 5);
    const npy = encodeNpyUint8(labels, [2, 3, 4]);
    assert.equal((npy.length - labels.length) % 64, 0, 'header aligned to 64 bytes');
    const back = parseNpy(npy, 'x.npy');
    assert.deepEqual(back.shape, [2, 3, 4]);
    assert.deepEqual([...back.data], [...labels]);
    const fortran = encodeNpyUint8(labels, [2, 3, 4]);
    fortran.set(new TextEncoder().encode("'fortran_order': True, "), 10 + "{'descr': '|u1', ".length);
    assert.throws(() => parseNpy(fortran, 'f.npy'), /Fortran order/);
    assert.throws(() => parseNpy(new Uint8Array(20), 'bad.npy'), /not a \.npy file/);
  });

  test('NIfTI-1: (z, y, x) volume, spacing, scaling; label maps keep the geometry', () => {
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 2);
    const nii = niftiFloat32(data, [2, 3, 4], [0.5, 0.7, 2]);
    const vol = parseNifti(nii, 'v.nii');
    assert.deepEqual(vol.shape, [2, 3, 4]);
    assert.deepEqual([...vol.data], [...data]);
    assert.deepEqual(
      vol.spacing?.map((s) => Math.round(s * 10) / 10),
      [2, 0.7, 0.5],
    );
    const labels = Uint8Array.from({ length: 24 }, (_, i) => i % 3);
    const back = parseNifti(encodeNiftiLabels(labels, [2, 3, 4], vol.niftiHeader as Uint8Array), 'l.nii.gz');
    assert.deepEqual(back.shape, [2, 3, 4]);
    assert.deepEqual([...back.data], [...labels]);
    assert.deepEqual(back.spacing, vol.spacing);
  });
});

describe('segmentation checkpoints', () => {
  test('glimpse checkpoints keep the kind, config, classes and normalization', () => {
    manualSeed(1);
    const m = new TransUNet(TRANSUNET).eval();
    const path = join(dir, 'tu.safetensors');
    saveSegmentationCheckpoint(path, m, {
      kind: 'transunet',
      config: TRANSUNET,
      classes: ['bg', 'a', 'b'],
      mean: 0.1,
      std: 0.3,
    });
    const loaded = loadSegmentationCheckpoint(path);
    assert.equal(loaded.info.kind, 'transunet');
    assert.deepEqual(loaded.info.classes, ['bg', 'a', 'b']);
    assert.equal(loaded.info.std, 0.3);
    const x = randn([1, 1, 32, 32]);
    assertClose(
      noGrad(() => loaded.model.forward(x)),
      noGrad(() => m.forward(x)),
      1e-6,
      'reloaded',
    );
    assert.throws(
      () => loadSegmentationCheckpoint(path, { kind: 'unetr' }),
      /holds a transunet model, not unetr/,
    );
  });

  test("a bare MONAI UNETR state dict: config read off the shapes, MONAI's names mapped", () => {
    manualSeed(2);
    const m = new UNETR({
      ...UNETR_TINY,
      patchSize: 16,
      imgSize: 32,
      numLayers: 3,
      skipLayers: [0, 1, 2],
    }).eval();
    const monai = new Map(
      [...m.stateDict()].map(([k, t]) => [
        k
          .replace('.attn.proj.', '.attn.out_proj.')
          .replace('.mlp.fc1.', '.mlp.linear1.')
          .replace('.mlp.fc2.', '.mlp.linear2.'),
        t,
      ]),
    );
    const path = join(dir, 'monai.safetensors');
    writeSafetensors(path, monai);
    // A bare state dict records neither heads nor skip layers: MONAI's defaults apply unless overridden.
    const loaded = loadSegmentationCheckpoint(path, { config: { numHeads: 2, skipLayers: [0, 1, 2] } });
    assert.equal(loaded.info.kind, 'unetr');
    assert.equal(loaded.model.numClasses, 3);
    const x = randn([1, 1, 32, 32, 32]);
    assertClose(
      noGrad(() => loaded.model.forward(x)),
      noGrad(() => m.forward(x)),
      1e-5,
      'MONAI state dict',
    );
  });
});

describe('glimpse segment', () => {
  test('an image larger than the model: sliding windows, labels.npy, mask/overlay PNGs, summary', async () => {
    manualSeed(3);
    const weights = join(dir, 'tu2.safetensors');
    saveSegmentationCheckpoint(weights, new TransUNet(TRANSUNET), {
      kind: 'transunet',
      config: TRANSUNET,
      classes: ['bg', 'a', 'b'],
      mean: 0,
      std: 1,
    });
    const png = join(dir, 'in.png');
    await writeImage(png, rand([3, 40, 52]));
    const out = join(dir, 'seg2d');
    const r = await glimpse(['segment', png, '--weights', weights, '--out', out, '--overlap', '0.5']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(out).sort(), ['labels.npy', 'mask.png', 'overlay.png', 'summary.json']);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(summary.shape, [40, 52]);
    assert.deepEqual(summary.slidingWindow.roiSize, [32, 32]);
    assert.equal(
      summary.classes.reduce((a: number, c: { count: number }) => a + c.count, 0),
      40 * 52,
    );
    assert.deepEqual(readVolume(join(out, 'labels.npy')).shape, [40, 52]);
    assert.match(r.out, /in\.png: .*sliding window/);
  });

  test('a NIfTI volume through UNETR: labels.npy, labels.nii.gz, slices.png; errors are one line', async () => {
    manualSeed(4);
    const weights = join(dir, 'unetr.safetensors');
    saveSegmentationCheckpoint(weights, new UNETR(UNETR_TINY), {
      kind: 'unetr',
      config: UNETR_TINY,
      classes: ['bg', 'a', 'b'],
      mean: 0,
      std: 1,
    });
    const vol = join(dir, 'vol.nii');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(vol, niftiFloat32(rand([20, 16, 18]).data as Float32Array, [20, 16, 18], [1, 1, 2]));
    const out = join(dir, 'seg3d');
    const r = await glimpse([
      'segment',
      vol,
      '--weights',
      weights,
      '--out',
      out,
      '--model',
      'unetr',
      '--blend',
      'constant',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(out).sort(), ['labels.nii.gz', 'labels.npy', 'slices.png', 'summary.json']);
    assert.deepEqual(readVolume(join(out, 'labels.nii.gz')).shape, [20, 16, 18]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.classes[0].volume, summary.classes[0].count * 2);

    const png = join(dir, 'in.png');
    const wrongKind = await glimpse(['segment', png, '--weights', weights, '--out', join(dir, 'x')]);
    assert.equal(wrongKind.code, 1);
    assert.match(wrongKind.err, /^glimpse: segment: .*in\.png is an image but the unetr model .* is 3D/);
    const badOverlap = await glimpse([
      'segment',
      vol,
      '--weights',
      weights,
      '--out',
      join(dir, 'y'),
      '--overlap',
      '1',
    ]);
    assert.match(badOverlap.err, /--overlap must be in \[0, 1\)/);
    assert.ok(!existsSync(join(dir, 'y')));
  });
});
