/**
 * Behaviour, as in the paper: on search arrays a feature singleton (odd color, orientation or
 * intensity) draws the first fixation; a conjunction target (odd only in its combination of color
 * and orientation) does not. And top-down gains move the first fixation to the item asked for.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Bias, ittiSaliency, scanpath } from '../../src/saliency/index.js';
import {
  type ItemLook,
  nearestItem,
  type SearchArray,
  type SearchKind,
  searchArray,
} from '../../src/saliency/search_arrays.js';

const ARRAYS = 50;

/** Index into array.targets of the target the first fixation landed on (within a bar length), or -1. */
function firstFixatedTarget(array: SearchArray, bias?: Bias): number {
  const [first] = scanpath(ittiSaliency(array.image, { bias }), { fixations: 1 });
  const { index, distance } = nearestItem(array, first.x, first.y);
  return distance <= array.itemSize ? array.targets.indexOf(index) : -1;
}

function popOutRate(kind: SearchKind): number {
  let hits = 0;
  for (let seed = 1; seed <= ARRAYS; seed++) {
    if (firstFixatedTarget(searchArray({ kind, seed, size: 256 })) === 0) hits++;
  }
  return hits / ARRAYS;
}

describe('pop-out on 256x256 search arrays of 20-60 items', () => {
  for (const kind of ['color', 'orientation', 'intensity'] as const) {
    test(`the ${kind} singleton draws the first fixation in >= 95% of ${ARRAYS} arrays`, (t) => {
      const rate = popOutRate(kind);
      t.diagnostic(
        `${kind} singleton: first fixation on the target in ${(100 * rate).toFixed(0)}% of ${ARRAYS} arrays`,
      );
      assert.ok(rate >= 0.95, `${kind}: ${rate}`);
    });
  }

  test('a color x orientation conjunction target does not pop out', (t) => {
    const rate = popOutRate('conjunction');
    t.diagnostic(
      `conjunction target: first fixation on the target in ${(100 * rate).toFixed(0)}% of ${ARRAYS} arrays`,
    );
    // Chance is one item in 20-60; serial search, not pop-out.
    assert.ok(rate < 0.25, `conjunction: ${rate}`);
  });
});

describe('top-down gains', () => {
  const RED = [1, 0, 0] as const;
  const GREEN = [0, 1, 0] as const;
  const BLUE = [0, 0, 1] as const;
  const seeds = Array.from({ length: 10 }, (_, k) => k + 1);
  const arrays = (distractors: ItemLook[], targets: ItemLook[]) =>
    seeds.map((seed) => searchArray({ size: 256, seed, distractors, targets }));

  test('"red things" and "green things": one red and one green bar among blue ones', () => {
    const scenes = arrays(
      [{ color: BLUE, orientation: 45 }],
      [
        { color: RED, orientation: 45 },
        { color: GREEN, orientation: 45 },
      ],
    );
    for (const array of scenes) {
      assert.equal(firstFixatedTarget(array, { 'color.red': 3 }), 0, 'color.red=3 looks at the red bar');
      assert.equal(
        firstFixatedTarget(array, { 'color.green': 3 }),
        1,
        'color.green=3 looks at the green bar',
      );
    }
  });

  test('a color singleton wins bottom-up; an orientation gain moves the first fixation to the orientation singleton', (t) => {
    const scenes = arrays(
      [{ color: GREEN, orientation: 0 }],
      [
        { color: RED, orientation: 0 },
        { color: GREEN, orientation: 90 },
      ],
    );
    const bottomUp = scenes.map((a) => firstFixatedTarget(a));
    const biased = scenes.map((a) => firstFixatedTarget(a, { orientation: 5 }));
    t.diagnostic(
      `bottom-up: ${bottomUp.join(' ')}; orientation=5: ${biased.join(' ')} (0 color, 1 orientation)`,
    );
    assert.ok(bottomUp.every((k) => k === 0));
    assert.ok(biased.filter((k) => k === 1).length >= 9);
  });
});
