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
  range: string;
  polarity: string;
  maxSize?: string;
  outputs: string;
  json?: boolean;
  searchArray?: string;
  seed: string;
}

interface Scene {
  name: string;
  source: string;
  image: Tensor;
  /** The targets of a generated search array: where (input pixels) and how they look. */
  targets?: { x: number; y: number; color: number[]; orientation: number }[];
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
        targets: array.targets.map((i) => {
          const { x, y, color, orientation } = array.items[i];
          return { x: round(x, 1), y: round(y, 1), color: [...color], orientation };
        }),
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
    range: r.range,
    polarity: r.polarity,
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

const OUTPUTS = ['saliency', 'conspicuity', 'scanpath', 'panel', 'json'] as const;
type Output = (typeof OUTPUTS)[number];

function parseOutputs(list: string): Set<Output> {
  const chosen = list.split(',').map((s) => s.trim());
  const unknown = chosen.filter((s) => !(OUTPUTS as readonly string[]).includes(s));
  if (unknown.length > 0 || chosen.length === 0) {
    throw new Error(`saliency: --outputs ${list} is invalid; choose from ${OUTPUTS.join(',')}`);
  }
  return new Set(chosen as Output[]);
}

/** The chosen output files of one scene, encoded (the JSON summary is always computed). */
async function renderScene(scene: Scene, o: SaliencyCliOptions, outputs: Set<Output>, maxSize?: number) {
  const fixationCount = integer('--fixations', o.fixations, 0);
  const r = ittiSaliency(scene.image, {
    normalization: o.normalization as Normalization,
    range: o.range as 'channel' | 'map',
    polarity: o.polarity as 'separate' | 'absolute',
    bias: o.bias,
  });
  const radius = defaultIorRadius(r.width, r.height);
  const fixations = scanpath(r, { fixations: fixationCount, iorRadius: radius });
  const files: [string, Uint8Array][] = [];
  if (outputs.has('saliency'))
    files.push(['saliency.png', await png(overlay(scene.image, r, r.saliency), maxSize)]);
  if (outputs.has('conspicuity')) {
    // One common scale, so that the brightness of each map shows how much its channel contributes.
    let common = 0;
    for (const c of CHANNELS) for (const v of r.conspicuity[c].data) common = Math.max(common, v);
    for (const c of CHANNELS) {
      files.push([`conspicuity_${c}.png`, await png(heatmap(r, r.conspicuity[c], { max: common }), maxSize)]);
    }
  }
  if (outputs.has('scanpath')) {
    files.push(['scanpath.png', await png(await renderScanpath(scene.image, fixations, radius), maxSize)]);
    if (scene.targets) files.push(['stimulus.png', await png(toRgbBytes(scene.image), maxSize)]);
  }
  if (outputs.has('panel')) {
    const tileHeight = Math.min(256, maxSize ?? 256, r.height);
    files.push(['panel.png', await png(await renderPanel(scene.image, r, fixations, radius, tileHeight))]);
  }
  const json = summary(scene, r, fixations, radius);
  if (outputs.has('json'))
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
  const choices: [string, string, string[]][] = [
    ['--normalization', o.normalization, ['maxnorm', 'iterative']],
    ['--range', o.range, ['channel', 'map']],
    ['--polarity', o.polarity, ['separate', 'absolute']],
  ];
  for (const [flag, value, allowed] of choices) {
    if (!allowed.includes(value))
      throw new Error(`saliency: ${flag} ${value} is not one of ${allowed.join(', ')}`);
  }
  resolveBias(o.bias);
  integer('--fixations', o.fixations, 0);
  const maxSize = o.maxSize === undefined ? undefined : integer('--max-size', o.maxSize, 16);
  const outputs = parseOutputs(o.outputs);
  const scenes = await loadScenes(images, o);
  const rendered = [];
  for (const scene of scenes) rendered.push({ scene, ...(await renderScene(scene, o, outputs, maxSize)) });
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
      'Itti-Koch-Niebur saliency: writes saliency.png, conspicuity_{intensity,color,orientation}.png, scanpath.png (+ stimulus.png for --search-array), panel.png and scanpath.json (one folder per image when several are given)',
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
    .option(
      '--range <r>',
      "N(.)'s range for feature maps: channel (shared by a channel's maps) or map (each its own, the paper's letter)",
      'channel',
    )
    .option(
      '--polarity <p>',
      "intensity and color differences: separate (ON and OFF normalized apart) or absolute (|c - s|, the paper's letter)",
      'separate',
    )
    .option(
      '--max-size <px>',
      'shrink the written pictures to fit this many pixels on their longer side (panel: tile height)',
    )
    .option('--outputs <list>', `which files to write, from ${OUTPUTS.join(',')}`, OUTPUTS.join(','))
    .option('--json', 'print the scanpath JSON to stdout')
    .option('--search-array <kind>', `run on a generated 512x512 search array: ${SEARCH_KINDS.join(', ')}`)
    .option('--seed <n>', 'seed of --search-array', '1')
    .action((images: string[], o: SaliencyCliOptions) => runSaliency(images, o));
}
