/**
 * Screenshots of every panel of the explorer for docs/explorer, taken in Debian's Chromium.
 *
 *   node --import tsx scripts/explorer_screenshots.ts [--out docs/explorer]
 *     [--weights RUN/model.safetensors | --model ID --weights FILE]
 *
 * Serves the embedded model (or the given one, first) on a free port, opens the page, and shoots the
 * predictions, the rollout and flow panels (with the head grid), the attention-distance plot, the
 * saliency panel after its scanpath has played, the training curve, and the whole page.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildExplorer } from '../src/server/app.js';
import { embeddedModelSpecs, type ModelSpec, userModelSpec } from '../src/server/model_spec.js';
import { ensureWebBundle } from '../src/server/web_bundle.js';
import { chromiumMissing, launchChromium } from '../test/helpers/chromium.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/explorer' },
    model: { type: 'string' },
    weights: { type: 'string' },
  },
});
const missing = chromiumMissing();
if (missing) throw new Error(`explorer_screenshots: ${missing}`);
const out = values.out as string;
mkdirSync(out, { recursive: true });

const models: ModelSpec[] = values.weights
  ? [userModelSpec(values), ...embeddedModelSpecs()]
  : embeddedModelSpecs();
const webDir = await ensureWebBundle(console.log);
const explorer = await buildExplorer({ models, webDir });
const url = await explorer.app.listen({ host: '127.0.0.1', port: 0 });
const browser = await launchChromium({ width: 1400, height: 1000 });
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
/** A palette PNG: a fraction of the bytes of Chromium's truecolor PNG, no visible difference. */
const save = async (png: Buffer, file: string) => {
  await sharp(png).png({ palette: true, quality: 95, effort: 8 }).toFile(join(out, file));
  console.log(join(out, file));
};
const shoot = async (selector: string, file: string) => save(await page.locator(selector).screenshot(), file);
const settled = async () => {
  await page.waitForFunction(() => !document.querySelector('.card.loading'));
  await page.waitForFunction(() => !document.querySelector('#status.busy'));
};

try {
  await page.goto(url);
  await page.waitForSelector('#fixations li');
  await page.waitForSelector('#distance-plot svg');
  await settled();
  await shoot('#predictions-card', 'predictions.png');
  await shoot('#explain-card', 'explain_rollout.png');
  await shoot('#distance-card', 'attention_distance.png');
  await shoot('#training-card', 'training_curve.png');

  await page.click('#method-tabs button[data-method="flow"]');
  await page.waitForSelector('#explain-canvas[data-method="flow"]');
  const layers = Number(await page.getAttribute('#layer-slider', 'max'));
  await page.fill('#layer-slider', String(Math.floor(layers / 2)));
  await shoot('#explain-card', 'explain_flow_layer.png');
  await page.click('#method-tabs button[data-method="grad-rollout"]');
  await page.waitForSelector('#explain-canvas[data-method="grad-rollout"]');
  await shoot('#explain-card', 'explain_grad_rollout.png');

  await page.click('button[data-sample="chelsea"]');
  await page.waitForSelector('#saliency-canvas[data-image="Chelsea the cat"]');
  await settled();
  // Let the scanpath play to its end (0.7 s per fixation).
  await page.waitForTimeout(6000);
  await shoot('#saliency-card', 'saliency_scanpath.png');
  await save(await page.screenshot({ fullPage: true }), 'overview.png');
} finally {
  await browser.close();
  await explorer.app.close();
}
