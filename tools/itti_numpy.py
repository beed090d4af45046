#!/usr/bin/env python3
"""The Itti-Koch-Niebur saliency pipeline of src/saliency/itti.ts, written the straightforward
NumPy/SciPy way (scipy.ndimage filters, map_coordinates, maximum_filter): the peer that
bench/saliency.ts times in the same run, and a check that both compute the same maps.

Usage: itti_numpy.py IMAGE.f32 HEIGHT WIDTH [--repeat N] [--out SALIENCY.f32]
IMAGE.f32 is a (3, H, W) float32 image in [0, 1], raw little-endian. Prints JSON with the timings
(ms of each run) and writes the saliency map as raw float32 when --out is given.

Defaults of the TypeScript model: maxnorm N(.), one range per channel, ON/OFF polarities
normalized separately, no bias.
"""
import argparse
import json
import time

import numpy as np
from scipy import ndimage

CENTERS = (2, 3, 4)
DELTAS = (3, 4)
MAP_LEVEL = 4
ORIENTATIONS = (0, 45, 90, 135)
BINOMIAL5 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16
BINOMIAL9 = np.array([1, 8, 28, 56, 70, 56, 28, 8, 1], dtype=np.float32) / 256
GABOR_K = np.pi / 2


def reduce(img):
    """5-tap binomial, edges replicated, keep the even samples."""
    blurred = ndimage.convolve1d(img, BINOMIAL5, axis=1, mode="nearest")
    blurred = ndimage.convolve1d(blurred, BINOMIAL5, axis=0, mode="nearest")
    return blurred[::2, ::2]


def pyramid(img, top):
    levels = [img]
    for _ in range(top):
        levels.append(reduce(levels[-1]))
    return levels


def sample(src, h, w, step):
    """Bilinear at (i * step, j * step) of src, clamped to its edges."""
    ys = np.minimum(np.arange(h) * step, src.shape[0] - 1)
    xs = np.minimum(np.arange(w) * step, src.shape[1] - 1)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return ndimage.map_coordinates(src, [yy, xx], order=1, mode="nearest").astype(np.float32)


def laplacian(levels, k):
    fine = levels[k]
    return fine - sample(levels[k + 1], *fine.shape, 0.5)


def gabor_energy(lap, theta):
    rad = np.deg2rad(theta)
    h, w = lap.shape
    phase = GABOR_K * np.sin(rad) * np.arange(w)[None, :] + GABOR_K * np.cos(rad) * np.arange(h)[:, None]
    def lowpass(x):
        x = ndimage.convolve1d(x, BINOMIAL9, axis=1, mode="constant")
        return ndimage.convolve1d(x, BINOMIAL9, axis=0, mode="constant")
    re = lowpass((lap * np.cos(phase)).astype(np.float32))
    im = lowpass((lap * np.sin(phase)).astype(np.float32))
    return np.sqrt(re * re + im * im)


def color_channels(rgb):
    r, g, b = rgb
    intensity = (r + g + b) / 3
    lit = intensity > intensity.max() / 10
    safe = np.where(lit, intensity, 1)
    rn, gn, bn = r / safe, g / safe, b / safe
    R = np.maximum(0, rn - (gn + bn) / 2)
    G = np.maximum(0, gn - (rn + bn) / 2)
    B = np.maximum(0, bn - (rn + gn) / 2)
    Y = np.maximum(0, (rn + gn) / 2 - np.abs(rn - gn) / 2 - bn)
    return intensity, np.where(lit, R - G, 0).astype(np.float32), np.where(lit, B - Y, 0).astype(np.float32)


def center_surround(levels):
    maps = []
    for c in CENTERS:
        for d in DELTAS:
            center = levels[c]
            maps.append((c, center - sample(levels[c + d], *center.shape, 2.0 ** -d)))
    return maps


def max_normalize(m, lo, hi):
    span = hi - lo
    if not span > 1e-12 * max(1, abs(hi)):
        return np.zeros_like(m)
    out = np.maximum(0, (m - lo) / span)
    peak = out.max()
    if peak == 0:
        return out
    is_max = (out >= 0.1 * peak) & (out >= ndimage.maximum_filter(out, size=3, mode="constant", cval=-np.inf))
    values = out[is_max]
    others = len(values) - 1
    mean_others = (values.sum() - peak) / others / peak if others > 0 else 0
    return out * (1 - mean_others) ** 2


def normalize_channel(maps):
    lo = min(m.min() for m in maps)
    hi = max(m.max() for m in maps)
    return [max_normalize(m, lo, hi) for m in maps]


def normalize_own(m):
    return max_normalize(m, m.min(), m.max())


def across_scale_sum(maps):
    total = None
    for level in range(min(c for c, _ in maps), MAP_LEVEL + 1):
        parts = [m for c, m in maps if c == level]
        if total is not None:
            parts.append(reduce(total))
        total = sum(parts)
    return total


def normalize_signed(groups):
    """ON and OFF halves normalized on one shared range, then added back map by map."""
    n = len(groups)
    halves = [[np.maximum(sign * m, 0) for _, m in g] for sign in (1, -1) for g in groups]
    flat = iter(normalize_channel([m for half in halves for m in half]))
    normalized = [[next(flat) for _ in half] for half in halves]
    return [[(c, normalized[k][i] + normalized[n + k][i]) for i, (c, _) in enumerate(g)] for k, g in enumerate(groups)]


def itti_saliency(rgb):
    intensity, rg, by = color_channels(rgb)
    top = max(CENTERS) + max(DELTAS)
    ipyr = pyramid(intensity.astype(np.float32), top + 1)
    rgpyr = pyramid(rg, top)
    bypyr = pyramid(by, top)

    (imaps,) = normalize_signed([center_surround(ipyr)])
    ibar = across_scale_sum(imaps)
    rgmaps, bymaps = normalize_signed([center_surround(rgpyr), center_surround(bypyr)])
    cbar = across_scale_sum(rgmaps) + across_scale_sum(bymaps)

    laps = {k: laplacian(ipyr, k) for k in range(min(CENTERS), top + 1)}
    per_theta = []
    for theta in ORIENTATIONS:
        gpyr = {k: gabor_energy(laps[k], theta) for k in laps}
        per_theta.append([(c, np.abs(gpyr[c] - sample(gpyr[c + d], *gpyr[c].shape, 2.0 ** -d))) for c in CENTERS for d in DELTAS])
    flat = iter(normalize_channel([m for g in per_theta for _, m in g]))
    sums = [across_scale_sum([(c, next(flat)) for c, _ in g]) for g in per_theta]
    obar = sum(normalize_channel(sums))

    return (normalize_own(ibar) + normalize_own(cbar) + normalize_own(obar)) / 3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("height", type=int)
    p.add_argument("width", type=int)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--out")
    a = p.parse_args()
    rgb = np.fromfile(a.image, dtype="<f4").reshape(3, a.height, a.width)
    saliency = itti_saliency(rgb)  # warm-up
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        saliency = itti_saliency(rgb)
        times.append((time.perf_counter() - t0) * 1000)
    if a.out:
        saliency.astype("<f4").tofile(a.out)
    print(json.dumps({
        "times_ms": times,
        "median_ms": sorted(times)[len(times) // 2],
        "repeat": a.repeat,
        "shape": list(saliency.shape),
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
    }))


if __name__ == "__main__":
    main()
