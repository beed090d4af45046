/**
 * The explorer in a real browser (Debian's Chromium through playwright-core): load the page, read what
 * every panel drew, pick another sample, switch method and layer, upload an image and a bad file.
 * Screenshots go to $GLIMPSE_E2E_SCREENSHOTS (default: a temporary folder, printed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { buildExplorer, type Explorer } from '../../src/server/app.js';
import { ensureWebBundle } from '../../src/server/web_bundle.js';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';

const missing = chromiumMissing();
const shots = process.env.GLIMPSE_E2E_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'glimpse-e2e-'));
let explorer: Explorer;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let page: Page;

/** Distinct colors and mean brightness of a canvas, read back from the page. */
function canvasStats(selector: string) {
  return page.$eval(selector, (node) => {
    const canvas = node as HTMLCanvasElement;
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    const colors = new Set<number>();
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
      colors.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      sum += data[i] + data[i + 1] + data[i + 2];
    }
    return {
      colors: colors.size,
      mean: sum / (3 * (data.length / 4)),
      width: canvas.width,
      pixels: canvas.toDataURL(),
    };
  });
}

before(async () => {
  if (missing) return;
  mkdirSync(shots, { recursive: true });
  const webDir = await ensureWebBundle(() => {});
  explorer = await buildExplorer({ webDir, workers: 2 });
  const url = await explorer.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium({ width: 1400, height: 1000 });
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  await explorer?.app.close();
  if (!missing) process.stdout.write(`explorer screenshots: ${shots}\n`);
});

test('the page shows predictions, maps, heads, distances, saliency for the first sample', {
  skip: missing ?? false,
}, async () => {
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('#fixations li');
  await page.waitForSelector('#head-grid canvas');
  await page.waitForSelector('#distance-plot svg circle');
  assert.equal(await page.textContent('#image-title'), 'Ankle boot (test #0)');
  const labels = await page.$$eval('#predictions .label', (nodes) => nodes.map((n) => n.textContent ?? ''));
  assert.equal(labels.length, 5);
  for (const label of labels) {
    assert.match(label, /T-shirt|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot/);
  }
  const heat = await canvasStats('#explain-canvas');
  assert.ok(heat.colors > 20, `the overlay has ${heat.colors} colors`);
  assert.equal(await page.getAttribute('#explain-canvas', 'data-method'), 'rollout');
  const { layers, heads } = explorer.pool.descriptions[0].attention!;
  assert.equal(await page.getAttribute('#explain-canvas', 'data-layer'), String(layers));
  assert.equal(await page.locator('#head-grid canvas').count(), heads[0]);
  // A dot per layer and head, plus each layer's mean.
  assert.equal(await page.locator('#distance-plot svg circle').count(), layers * heads[0] + layers);
  const fixations = await page.locator('#scanpath .fixation').count();
  assert.ok(fixations >= 1 && fixations === (await page.locator('#fixations li').count()));
  const saliency = await canvasStats('#saliency-canvas');
  assert.ok(saliency.colors > 50, `the saliency overlay has ${saliency.colors} colors`);
  await page.screenshot({ path: join(shots, 'fashion.png'), fullPage: true });
});

test('picking a photograph, switching method and layer redraws the maps', {
  skip: missing ?? false,
}, async () => {
  const before = await canvasStats('#explain-canvas');
  await page.click('button[data-sample="chelsea"]');
  await page.waitForFunction(() => document.querySelector('#image-title')?.textContent === 'Chelsea the cat');
  await page.waitForFunction(() => !document.querySelector('#explain-card')?.classList.contains('loading'));
  assert.notEqual(
    (await canvasStats('#explain-canvas')).pixels,
    before.pixels,
    'a new image redraws the overlay',
  );

  await page.click('#method-tabs button[data-method="flow"]');
  await page.waitForSelector('#explain-canvas[data-method="flow"]');
  assert.match(String(await page.textContent('#method-caption')), /Attention flow/);

  const full = await canvasStats('#explain-canvas');
  await page.fill('#layer-slider', '0');
  await page.waitForSelector('#explain-canvas[data-layer="1"]');
  const { layers } = explorer.pool.descriptions[0].attention!;
  assert.equal(await page.textContent('#layer-label'), `layers 1-1 of ${layers}`);
  assert.equal(await page.textContent('#heads-title'), 'Attention heads of layer 1');
  assert.notEqual(
    (await canvasStats('#explain-canvas')).pixels,
    full.pixels,
    'layer 1 differs from the last',
  );

  await page.click('#method-tabs button[data-method="gradcam"]');
  await page.waitForSelector('#explain-canvas[data-method="gradcam"]');
  assert.match(String(await page.textContent('#method-caption')), /Explains class/);
  await page.screenshot({ path: join(shots, 'photo.png'), fullPage: true });
});

test('an uploaded image is explained; a bad file gets a message and changes nothing', {
  skip: missing ?? false,
}, async () => {
  const square = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#2050d0' } })
    .composite([
      { input: { create: { width: 24, height: 24, channels: 3, background: '#f03020' } }, left: 60, top: 20 },
    ])
    .png()
    .toBuffer();
  await page.setInputFiles('#file-input', { name: 'red-square.png', mimeType: 'image/png', buffer: square });
  await page.waitForFunction(() => document.querySelector('#image-title')?.textContent === 'red-square.png');
  await page.waitForSelector('#saliency-canvas[data-image="red-square.png"]');
  // The red square pops out: the saliency model looks there first.
  const first = await page.$eval('#fixations li', (li) => li.textContent ?? '');
  const [x, y] = (first.match(/\((\d+), (\d+)\)/) ?? []).slice(1).map(Number);
  const scale = 256 / 96;
  assert.ok(
    Math.abs(x - 72 * scale) < 24 * scale && Math.abs(y - 32 * scale) < 24 * scale,
    `first fixation ${first}`,
  );

  await page.setInputFiles('#file-input', {
    name: 'notes.txt',
    mimeType: 'image/png',
    buffer: Buffer.from('not an image'),
  });
  await page.waitForSelector('#upload-error:not([hidden])');
  assert.match(
    String(await page.textContent('#upload-error')),
    /Could not use notes\.txt: the upload is not an image/,
  );
  assert.equal(await page.textContent('#image-title'), 'red-square.png');
  await page.screenshot({ path: join(shots, 'upload-error.png') });
});
