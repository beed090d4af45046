/**
 * timm's eval transform (transforms_imagenet_eval, crop_mode 'center'): resize the shorter side to
 * floor(size / crop_pct) with the model's interpolation, center-crop to size, scale to [0, 1] and
 * normalize by mean/std. The resize is torch's antialiased interpolation, the filter PIL uses, and the
 * result is rounded to 8 bits as PIL's resize does before ToTensor.
 */
import { readImage } from '../io/image.js';
import { clamp, div, round, sub, mul } from '../ops/elementwise.js';
import { interpolate } from '../ops/resample.js';
import { slice, stack, reshape } from '../ops/shape.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import type { PretrainedConfig } from './classifier.js';

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop offsets use it). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Size after torchvision's Resize(int): the shorter side becomes `short`, the other keeps the ratio (floored). */
export function resizeShorterSide(h: number, w: number, short: number): [number, number] {
  if (h <= w) return [short, Math.floor((short * w) / h)];
  return [Math.floor((short * h) / w), short];
}

/** The (3, H, W) normalized tensor timm's eval transform makes of a (3, h, w) image in [0, 1]. */
export function evalTransform(image: Tensor, cfg: PretrainedConfig): Tensor {
  if (image.ndim !== 3 || image.shape[0] !== 3) {
    throw new Error(`evalTransform: expected a (3, H, W) image in [0, 1], got ${fmt(image.shape)}`);
  }
  const [, th, tw] = cfg.inputSize;
  const scale = th === tw ? Math.floor(th / cfg.cropPct) : null;
  const [, h, w] = image.shape;
  // Square targets resize the shorter side (torchvision Resize(int)); others fit both dims (timm ResizeKeepRatio).
  let [rh, rw] = scale !== null ? resizeShorterSide(h, w, scale) : [0, 0];
  if (scale === null) {
    const ratio = Math.min(h / Math.floor(th / cfg.cropPct), w / Math.floor(tw / cfg.cropPct));
    [rh, rw] = [roundHalfEven(h / ratio), roundHalfEven(w / ratio)];
  }
  return noGrad(() => {
    let x = reshape(image, [1, 3, h, w]);
    if (rh !== h || rw !== w) {
      const mode = cfg.interpolation;
      x = interpolate(x, {
        size: [rh, rw],
        mode,
        ...(mode === 'nearest' ? {} : { alignCorners: false, antialias: true }),
      });
      // PIL resizes 8-bit images: the result is clipped and rounded to 8 bits.
      x = div(round(clamp(mul(x, 255), 0, 255)), 255);
    }
    if (rh < th || rw < tw) {
      throw new Error(
        `evalTransform: resized image ${rh}x${rw} is smaller than the ${th}x${tw} crop; check crop_pct (${cfg.cropPct})`,
      );
    }
    const top = roundHalfEven((rh - th) / 2);
    const left = roundHalfEven((rw - tw) / 2);
    x = slice(slice(x, 2, top, top + th), 3, left, left + tw);
    const mean = new Tensor(Float32Array.from(cfg.mean), [1, 3, 1, 1]);
    const std = new Tensor(Float32Array.from(cfg.std), [1, 3, 1, 1]);
    return reshape(div(sub(x, mean), std), [3, th, tw]);
  });
}

/** Decodes (JPEG/PNG/WebP/... via sharp) and transforms one image for `cfg`: (3, H, W). */
export async function preprocessImage(input: string | Uint8Array, cfg: PretrainedConfig): Promise<Tensor> {
  return evalTransform(await readImage(input), cfg);
}

/** Several images as one (B, 3, H, W) batch. */
export async function preprocessImages(
  inputs: ReadonlyArray<string | Uint8Array>,
  cfg: PretrainedConfig,
): Promise<Tensor> {
  const images: Tensor[] = [];
  for (const input of inputs) images.push(await preprocessImage(input, cfg));
  return noGrad(() => stack(images, 0));
}
