/**
 * `glimpse saliency IMAGE... --out DIR`: the Itti-Koch-Niebur saliency map, its conspicuity maps
 * and the first fixations of its scanpath, as PNG overlays and JSON. `--search-array KIND` runs the
 * model on a generated pop-out display instead of a file. Everything is computed and encoded first,
 * then written through a staging folder, so a failure leaves nothing half-written.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
// The package entry: it also installs the tensor ops the library runs on.
import { readImage, type Tensor } from '../../index.js';
import { toRgbBytes } from '../../io/image.js';
import { writeFileAtomic } from '../../io/safetensors.js';
import {
  type Channel,
  defaultIorRadius,
  type Fixation,
  type IttiResult,
  ittiSaliency,
  type Normalization,
  overlay,
  heatmap,
  renderPanel,
  renderScanpath,
  resolveBias,
  SEARCH_KINDS,
  type SearchKind,
  scanpath,
  searchArray,
} from '../../saliency/index.js';

interface SaliencyCliOptions {
  out: string;
  fixations: string;
  bias?: string;
  normalization: string;
  maxSize?: string;
  json?: boolean;
  searchArray?: string;
  seed: string;
}

interface Scene {
  name: string;
  source: string;
  image: Tensor;
  /** Where the targets of a generated search array are (input pixels). */
  targets?: { x: number; y: number }[];
}

const CHANNELS: Channel[] = ['intensity', 'color', 'orientation'];

function integer(name: string, value: string, min: number): number {
  const v = Number(value);
  if (!Number.isInteger(v) || v < min)
    throw new Error(`saliency: ${name} ${value} is invalid; use an integer >= ${min}`);
  return v;
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

async function loadScenes(images: string[], o: SaliencyCliOptions): Promise<Scene[]> {
  if (o.searchArray !== undefined) {
    if (images.length > 0) throw new Error('saliency: give IMAGE files or --search-array KIND, not both');
    const kind = o.searchArray as SearchKind;
    if (!SEARCH_KINDS.includes(kind)) {
      throw new Error(`saliency: --search-array ${o.searchArray} is not one of ${SEARCH_KINDS.join(', ')}`);
    }
    const seed = integer('--seed', o.seed, 0);
    const array = searchArray({ kind, seed, size: 512 });
    return [
      {
        name: `search_${kind}_${seed}`,
        source: `search array: ${kind}, seed ${seed}, ${array.items.length} items`,
        image: array.image,
        targets: array.targets.map((i) => ({ x: round(array.items[i].x, 1), y: round(array.items[i].y, 1) })),
      },
    ];
  }
  if (images.length === 0) throw new Error('saliency: give one or more IMAGE files (or --search-array KIND)');
  const names = new Set<string>();
  const scenes: Scene[] = [];
  for (const path of images) {
    if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`saliency: ${path} is not a file`);
    const name = basename(path, extname(path));
    if (names.has(name))
      throw new Error(`saliency: two images are named ${name}; their outputs would collide`);
    names.add(name);
    scenes.push({ name, source: path, image: await readImage(path) });
  }
  return scenes;
}

/** PNG bytes of RGB, shrunk to fit maxSize on its longer side when given. */
async function png(
  rgb: { data: Uint8Array; width: number; height: number },
  maxSize?: number,
): Promise<Uint8Array> {
  let img = sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } });
  if (maxSize && Math.max(rgb.width, rgb.height) > maxSize) {
    img = img.resize(maxSize, maxSize, { fit: 'inside' });
  }
  const buf = await img.png({ compressionLevel: 9 }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function summary(scene: Scene, r: IttiResult, fixations: Fixation[], radius: number) {
  const bias = Object.fromEntries(Object.entries(r.bias).filter(([, v]) => v !== 1));
  return {
    image: scene.source,
    width: r.width,
    height: r.height,
    scale: r.scale,
    normalization: r.normalization,
    bias,
    iorRadius: round(radius, 1),
    ...(scene.targets ? { targets: scene.targets } : {}),
    fixations: fixations.map((f) => ({
      x: round(f.x, 1),
      y: round(f.y, 1),
      t: round(f.t, 1),
      feature: f.feature,
      map: f.map,
      saliency: round(f.saliency, 5),
      contributions: Object.fromEntries(CHANNELS.map((c) => [c, round(f.contributions[c], 5)])),
    })),
  };
}

/** Every output file of one scene, encoded. */
async function renderScene(scene: Scene, o: SaliencyCliOptions, maxSize?: number) {
  const fixationCount = integer('--fixations', o.fixations, 0);
  const r = ittiSaliency(scene.image, { normalization: o.normalization as Normalization, bias: o.bias });
  const radius = defaultIorRadius(r.width, r.height);
  const fixations = scanpath(r, { fixations: fixationCount, iorRadius: radius });
  let common = 0;
  for (const c of CHANNELS) for (const v of r.conspicuity[c].data) common = Math.max(common, v);
  const files: [string, Uint8Array][] = [
    ['saliency.png', await png(overlay(scene.image, r, r.saliency), maxSize)],
    ...(await Promise.all(
      CHANNELS.map(
        async (c): Promise<[string, Uint8Array]> => [
          `conspicuity_${c}.png`,
          await png(heatmap(r, r.conspicuity[c], { max: common }), maxSize),
        ],
      ),
    )),
    ['scanpath.png', await png(await renderScanpath(scene.image, fixations, radius), maxSize)],
    ['panel.png', await png(await renderPanel(scene.image, r, fixations, radius, Math.min(256, r.height)))],
  ];
  if (scene.targets) files.push(['stimulus.png', await png(toRgbBytes(scene.image), maxSize)]);
  const json = summary(scene, r, fixations, radius);
  files.push(['scanpath.json', new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`)]);
  return { files, json };
}

/** Writes all files through a staging folder inside `out`; on failure removes what it made. */
function writeAll(out: string, outputs: { dir: string; files: [string, Uint8Array][] }[]): void {
  const created = !existsSync(out);
  let stage: string | null = null;
  try {
    mkdirSync(out, { recursive: true });
    stage = mkdtempSync(join(out, '.glimpse-saliency-'));
    for (const { dir, files } of outputs) {
      mkdirSync(join(stage, dir), { recursive: true });
      for (const [name, bytes] of files) writeFileAtomic(join(stage, dir, name), bytes);
    }
    for (const { dir, files } of outputs) {
      mkdirSync(join(out, dir), { recursive: true });
      for (const [name] of files) renameSync(join(stage, dir, name), join(out, dir, name));
    }
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(`saliency: cannot write to ${out} (${reason}); choose a writable --out folder`);
  } finally {
    if (stage) rmSync(stage, { recursive: true, force: true });
    if (created && existsSync(out) && readdirSync(out).length === 0)
      rmSync(out, { recursive: true, force: true });
  }
}

async function runSaliency(images: string[], o: SaliencyCliOptions): Promise<void> {
  if (!['maxnorm', 'iterative'].includes(o.normalization)) {
    throw new Error(`saliency: --normalization ${o.normalization} is not one of maxnorm, iterative`);
  }
  resolveBias(o.bias);
  integer('--fixations', o.fixations, 0);
  const maxSize = o.maxSize === undefined ? undefined : integer('--max-size', o.maxSize, 16);
  const scenes = await loadScenes(images, o);
  const rendered = [];
  for (const scene of scenes) rendered.push({ scene, ...(await renderScene(scene, o, maxSize)) });
  const single = rendered.length === 1;
  writeAll(
    o.out,
    rendered.map(({ scene, files }) => ({ dir: single ? '.' : scene.name, files })),
  );
  if (o.json) {
    const json = rendered.map((r) => r.json);
    process.stdout.write(`${JSON.stringify(single ? json[0] : json, null, 2)}\n`);
  } else {
    for (const { scene, json } of rendered) {
      const first = json.fixations[0];
      const where = first ? `first fixation (${first.x}, ${first.y}) by ${first.map}` : 'no fixation';
      process.stdout.write(
        `${scene.name}: ${json.fixations.length} fixations, ${where} -> ${single ? o.out : join(o.out, scene.name)}\n`,
      );
    }
  }
}

export function register(program: Command): void {
  program
    .command('saliency')
    .description(
      'Itti-Koch-Niebur saliency: writes saliency.png, conspicuity_{intensity,color,orientation}.png, scanpath.png, panel.png and scanpath.json (one folder per image when several are given)',
    )
    .argument('[images...]', 'image files (JPEG, PNG, WebP, ...)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--fixations <n>', 'number of fixations of the scanpath', '5')
    .option(
      '--bias <gains>',
      'top-down gains, e.g. color=2,orientation.90=3 (keys: intensity[.on|.off], color[.RG|.BY|.red|.green|.blue|.yellow], orientation[.0|.45|.90|.135])',
    )
    .option(
      '--normalization <n>',
      'N(.): maxnorm (PAMI 1998) or iterative (DoG, Itti & Koch 2001)',
      'maxnorm',
    )
    .option('--max-size <px>', 'shrink the written pictures to fit this many pixels on their longer side')
    .option('--json', 'print the scanpath JSON to stdout')
    .option('--search-array <kind>', `run on a generated 512x512 search array: ${SEARCH_KINDS.join(', ')}`)
    .option('--seed <n>', 'seed of --search-array', '1')
    .action((images: string[], o: SaliencyCliOptions) => runSaliency(images, o));
}
