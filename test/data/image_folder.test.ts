import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { ImageFolder } from '../../src/data/image_folder.js';
import { DataLoader } from '../../src/data/loader.js';

const root = mkdtempSync(join(tmpdir(), 'glimpse-imgfolder-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function solidPng(path: string, w: number, h: number, rgb: [number, number, number]): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(rgb, 3 * i);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

describe('ImageFolder', () => {
  test('classes are sorted subfolder names; images are resized, channels-first, in [0, 1]', async () => {
    const dir = join(root, 'good');
    for (const c of ['zebra', 'apple']) mkdirSync(join(dir, c), { recursive: true });
    mkdirSync(join(dir, 'empty_class'));
    await solidPng(join(dir, 'apple', 'a1.png'), 20, 10, [255, 0, 0]);
    await solidPng(join(dir, 'apple', 'a2.png'), 7, 9, [0, 255, 0]);
    await solidPng(join(dir, 'zebra', 'z1.png'), 16, 16, [0, 0, 255]);
    writeFileSync(join(dir, 'zebra', 'notes.txt'), 'not an image');
    const ds = new ImageFolder(dir, { size: [8, 6] });
    assert.deepEqual(ds.classes, ['apple', 'zebra']);
    assert.equal(ds.length, 3);
    assert.deepEqual(ds.imageShape, [3, 8, 6]);
    const s = await ds.get(0);
    assert.equal(s.label, 0);
    assert.equal(s.image.data.length, 3 * 48);
    assert.ok(
      s.image.data.subarray(0, 48).every((v) => v === 1),
      'red plane',
    );
    assert.ok(s.image.data.subarray(48).every((v) => v === 0));
    assert.equal((await ds.get(2)).label, 1);
    const gray = new ImageFolder(dir, { size: 5, channels: 1 });
    const g = await gray.get(2);
    assert.equal(g.image.data.length, 25);
    // libvips takes luma in linear light: 0.0722 for pure blue, sRGB-encoded to 76/255.
    assert.ok(Math.abs(g.image.data[0] - 76 / 255) < 0.01, `blue luma ${g.image.data[0]}`);
    assert.ok(g.image.data.every((v) => v === g.image.data[0]));
    const batches = [];
    for await (const b of new DataLoader(ds, { batchSize: 2 }).epoch(0)) batches.push(b);
    assert.deepEqual(batches[0].images.shape, [2, 3, 8, 6]);
    assert.deepEqual([...batches[0].labels.data], [0, 0]);
  });

  test('an empty folder, a folder without class subfolders, and a missing folder are one-line errors', () => {
    const empty = join(root, 'empty');
    mkdirSync(join(empty, 'cats'), { recursive: true });
    assert.throws(
      () => new ImageFolder(empty, { size: 8 }),
      /image folder .*empty: no images found; expected .*<class>\/<image>/,
    );
    assert.throws(
      () => new ImageFolder(join(root, 'absent'), { size: 8 }),
      /image folder .*absent: cannot read it \(ENOENT\)/,
    );
  });

  test('an unreadable image names the file', async () => {
    const dir = join(root, 'broken');
    mkdirSync(join(dir, 'x'), { recursive: true });
    writeFileSync(join(dir, 'x', 'bad.png'), 'not really a png');
    const ds = new ImageFolder(dir, { size: 4 });
    await assert.rejects(ds.get(0), /image folder: .*bad\.png is not a readable image/);
  });
});
