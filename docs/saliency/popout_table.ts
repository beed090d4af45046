/**
 * The pop-out table of docs/saliency/README.md: for each model variant and each kind of search
 * array, the share of 50 seeded 256x256 arrays whose first fixation lands on the odd item; then
 * top-down guidance on the conjunction arrays. Run: node --import tsx docs/saliency/popout_table.ts
 */
import { type Bias, type IttiOptions, ittiSaliency, scanpath } from '../../src/saliency/index.js';
import {
  nearestItem,
  SEARCH_KINDS,
  type SearchArray,
  searchArray,
} from '../../src/saliency/search_arrays.js';

const ARRAYS = 50;

/** For each fixation of the first `count`, whether it landed on the target (within a bar length). */
function onTarget(array: SearchArray, options: IttiOptions, count: number): boolean[] {
  return scanpath(ittiSaliency(array.image, options), { fixations: count }).map((f) => {
    const { index, distance } = nearestItem(array, f.x, f.y);
    return array.items[index].target && distance <= array.itemSize;
  });
}

const percent = (hits: number) => `${Math.round((100 * hits) / ARRAYS)}%`;

const variants: [string, IttiOptions][] = [
  ['glimpse default (maxnorm, channel range, separate polarities)', {}],
  [
    "the paper's letter (maxnorm, range per map, \\|center - surround\\|)",
    { range: 'map', polarity: 'absolute' },
  ],
  ['default but \\|center - surround\\|', { polarity: 'absolute' }],
  ['default but range per map', { range: 'map' }],
  ['iterative DoG N(.) (3 iterations), otherwise default', { normalization: 'iterative' }],
];

console.log(`| variant | ${SEARCH_KINDS.join(' | ')} |`);
console.log(`| --- | ${SEARCH_KINDS.map(() => '---').join(' | ')} |`);
for (const [name, options] of variants) {
  const cells = SEARCH_KINDS.map((kind) => {
    let hits = 0;
    for (let seed = 1; seed <= ARRAYS; seed++)
      if (onTarget(searchArray({ kind, seed }), options, 1)[0]) hits++;
    return percent(hits);
  });
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}

console.log(
  '\n| conjunction, top-down gain on the target color and orientation | first fixation | within 5 |',
);
console.log('| --- | --- | --- |');
for (const gain of [1, 3, 10]) {
  let first = 0;
  let withinFive = 0;
  for (let seed = 1; seed <= ARRAYS; seed++) {
    const array = searchArray({ kind: 'conjunction', seed });
    const target = array.items[array.targets[0]];
    const bias: Bias = { [target.color[0] === 1 ? 'color.red' : 'color.green']: gain };
    bias[`orientation.${target.orientation}` as keyof Bias] = gain;
    const hits = onTarget(array, { bias }, 5);
    if (hits[0]) first++;
    if (hits.some(Boolean)) withinFive++;
  }
  console.log(`| ${gain === 1 ? '1 (bottom-up)' : gain} | ${percent(first)} | ${percent(withinFive)} |`);
}
