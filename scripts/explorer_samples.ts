/**
 * The explorer's bundled sample images (web/public/samples): the team's public-domain / CC0
 * photographs re-encoded as JPEG no larger than 640 px, and the first image of each class in the
 * Fashion-MNIST test split of the committed slice as 28 x 28 PNG; writes samples.json beside them.
 *
 *   node --import tsx scripts/explorer_samples.ts [--photos DIR] [--fashion DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FASHION_MNIST_CLASSES, readFashionMnistDir } from '../src/data/fashion_mnist.js';
import type { Sample } from '../src/server/protocol.js';

const { values } = parseArgs({
  options: {
    photos: { type: 'string', default: '/work/shared/images' },
    fashion: { type: 'string', default: 'test/fixtures/fashion_mnist_slice' },
    out: { type: 'string', default: 'web/public/samples' },
  },
});
const out = values.out as string;

const PHOTOS = [
  { id: 'chelsea', file: 'chelsea.png', title: 'Chelsea the cat', credit: 'CC0, Stefan van der Walt' },
  {
    id: 'astronaut',
    file: 'astronaut.png',
    title: 'Astronaut Eileen Collins',
    credit: 'NASA, public domain',
  },
  { id: 'coffee', file: 'coffee.png', title: 'A cup of coffee', credit: 'CC0, Rachel Michetti' },
  { id: 'rocket', file: 'rocket.jpg', title: 'DSCOVR launch on Falcon 9', credit: 'SpaceX, public domain' },
  {
    id: 'hubble',
    file: 'hubble_deep_field.jpg',
    title: 'Hubble eXtreme Deep Field',
    credit: 'NASA, public domain',
  },
  { id: 'retina', file: 'retina.jpg', title: 'Fundus photograph of a left eye', credit: 'CC0 1.0' },
];

const entries: Sample[] = [];

mkdirSync(join(out, 'photos'), { recursive: true });
for (const p of PHOTOS) {
  const file = `photos/${p.id}.jpg`;
  await sharp(join(values.photos as string, p.file))
    .resize(640, 640, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 88, mozjpeg: true })
    .toFile(join(out, file));
  entries.push({ id: p.id, file, title: p.title, kind: 'photo', credit: p.credit });
}

mkdirSync(join(out, 'fashion'), { recursive: true });
const test = readFashionMnistDir(values.fashion as string, 'test');
for (let c = 0; c < FASHION_MNIST_CLASSES.length; c++) {
  let index = -1;
  for (let i = 0; i < test.length && index < 0; i++) if (test.label(i) === c) index = i;
  if (index < 0) throw new Error(`explorer_samples: the test slice has no ${FASHION_MNIST_CLASSES[c]}`);
  const pixels = test.images.subarray(index * 784, (index + 1) * 784);
  const file = `fashion/${c}.png`;
  await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(join(out, file));
  entries.push({
    id: `fashion-${c}`,
    file,
    title: `${FASHION_MNIST_CLASSES[c]} (test #${index})`,
    kind: 'fashion',
    credit: 'Fashion-MNIST, Zalando Research, MIT license',
    label: c,
  });
}
writeFileSync(join(out, 'samples.json'), `${JSON.stringify(entries, null, 2)}\n`);
console.log(`${entries.length} samples in ${out}`);
