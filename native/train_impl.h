// The kernels of train_kernels.h over simd.h's vector layer, compiled once per instruction set
// (train_avx512.cc, train_avx2.cc, train_scalar.cc define GLIMPSE_ISA and include this file).
// Semantics: src/backend/js/batch_norm.ts and the depthwise case of src/backend/js/conv.ts.
#pragma once

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "simd.h"
#include "train_kernels.h"

namespace glimpse {
namespace GLIMPSE_ISA {
namespace {

inline int64_t tmin(int64_t a, int64_t b) { return a < b ? a : b; }

// f(begin, end) over [0, n) in contiguous chunks, one per thread, each of at least `grain` items.
template <class F>
void splitFor(int threads, int64_t n, int64_t grain, F&& f) {
  const int64_t t = tmin(threads, grain > 0 ? n / grain : n);
  if (t <= 1) {
    if (n > 0) f(static_cast<int64_t>(0), n);
    return;
  }
  struct Ctx {
    F* f;
    int64_t n, t;
  } ctx{&f, n, t};
  parallelChunks(
      static_cast<int>(t), t,
      [](void* c, int64_t chunk, int) {
        Ctx* x = static_cast<Ctx*>(c);
        const int64_t b = x->n * chunk / x->t, e = x->n * (chunk + 1) / x->t;
        if (e > b) (*x->f)(b, e);
      },
      &ctx);
}

// A vector of w <= VW lanes at p + j (masked when w < VW).
inline vf ldW(const float* p, int64_t j, int w) { return w == VW ? vld(p + j) : vldN(p + j, w); }
inline void stW(float* p, int64_t j, vf v, int w) {
  if (w == VW) {
    vst(p + j, v);
  } else {
    vstN(p + j, v, w);
  }
}

// Elements per thread below which splitting costs more than it saves.
constexpr int64_t kGrain = 1 << 15;

// Per-thread scratch, 64-byte aligned, grown on demand.
struct TrainScratch {
  float* ptr = nullptr;
  size_t cap = 0;
  ~TrainScratch() { std::free(ptr); }
};
thread_local TrainScratch tlsTrainScratch[2];

float* trainScratch(int slot, int64_t floats) {
  TrainScratch& s = tlsTrainScratch[slot];
  const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) & ~static_cast<size_t>(63);
  if (bytes > s.cap) {
    std::free(s.ptr);
    s.ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
    s.cap = s.ptr ? bytes : 0;
    if (!s.ptr) std::abort();
  }
  return s.ptr;
}

// Sums of a run of floats, flushed to double every few thousand elements so long planes keep
// float64-like accuracy (the js kernel sums in float64).
constexpr int64_t kFlush = 2048;

double runSum(const float* x, int64_t n) {
  double total = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kFlush) {
    const int64_t e = tmin(n, j0 + kFlush);
    vf acc = vzero();
    int64_t j = j0;
    for (; j + VW <= e; j += VW) acc = vadd(acc, vld(x + j));
    float tail = 0;
    for (; j < e; j++) tail += x[j];
    total += static_cast<double>(vhsum(acc)) + tail;
  }
  return total;
}

// sum (x - mu)^2 and, with g, sum g * (x - mu).
double runSqDev(const float* x, int64_t n, float mu) {
  double total = 0;
  const vf m = vset(mu);
  for (int64_t j0 = 0; j0 < n; j0 += kFlush) {
    const int64_t e = tmin(n, j0 + kFlush);
    vf acc = vzero();
    int64_t j = j0;
    for (; j + VW <= e; j += VW) {
      const vf d = vsub(vld(x + j), m);
      acc = vfma(d, d, acc);
    }
    float tail = 0;
    for (; j < e; j++) tail += (x[j] - mu) * (x[j] - mu);
    total += static_cast<double>(vhsum(acc)) + tail;
  }
  return total;
}

void runGradSums(const float* x, const float* g, int64_t n, float mu, double* sumG, double* sumGD) {
  const vf m = vset(mu);
  for (int64_t j0 = 0; j0 < n; j0 += kFlush) {
    const int64_t e = tmin(n, j0 + kFlush);
    vf ag = vzero(), agd = vzero();
    int64_t j = j0;
    for (; j + VW <= e; j += VW) {
      const vf gv = vld(g + j);
      ag = vadd(ag, gv);
      agd = vfma(gv, vsub(vld(x + j), m), agd);
    }
    float tg = 0, tgd = 0;
    for (; j < e; j++) {
      tg += g[j];
      tgd += g[j] * (x[j] - mu);
    }
    *sumG += static_cast<double>(vhsum(ag)) + tg;
    *sumGD += static_cast<double>(vhsum(agd)) + tgd;
  }
}

void batchNormStats(const float* x, int64_t n, int64_t channels, int64_t spatial, double* mean, double* variance,
                    int threads) {
  const double count = static_cast<double>(n * spatial);
  splitFor(threads, channels, kGrain / (n * spatial > 0 ? n * spatial : 1) + 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      double s = 0;
      for (int64_t b = 0; b < n; b++) s += runSum(x + (b * channels + c) * spatial, spatial);
      const double mu = s / count;
      double v = 0;
      for (int64_t b = 0; b < n; b++) v += runSqDev(x + (b * channels + c) * spatial, spatial, static_cast<float>(mu));
      mean[c] = mu;
      variance[c] = v / count;
    }
  });
}

void batchNormForward(const float* x, int64_t n, int64_t channels, int64_t spatial, const double* scale,
                      const double* shift, float* out, int threads) {
  const int64_t planes = n * channels;
  splitFor(threads, planes, kGrain / (spatial > 0 ? spatial : 1) + 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t c = p % channels;
      const float k = static_cast<float>(scale[c]), t = static_cast<float>(shift[c]);
      const vf kv = vset(k), tv = vset(t);
      const float* xp = x + p * spatial;
      float* op = out + p * spatial;
      int64_t j = 0;
      for (; j + VW <= spatial; j += VW) vst(op + j, vfma(vld(xp + j), kv, tv));
      for (; j < spatial; j++) op[j] = xp[j] * k + t;
    }
  });
}

void batchNormBackward(const float* x, const float* gy, int64_t n, int64_t channels, int64_t spatial,
                       const double* mean, const double* invstd, const float* weight, bool training, float* gx,
                       float* gw, float* gb, int threads) {
  const double count = static_cast<double>(n * spatial);
  splitFor(threads, channels, kGrain / (n * spatial > 0 ? n * spatial : 1) + 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const float mu = static_cast<float>(mean[c]);
      const double rs = invstd[c];
      double sumG = 0, sumGD = 0;
      for (int64_t b = 0; b < n; b++) {
        const int64_t o = (b * channels + c) * spatial;
        runGradSums(x + o, gy + o, spatial, mu, &sumG, &sumGD);
      }
      const double sumGX = sumGD * rs;  // sum g * xhat
      if (gw) gw[c] = static_cast<float>(sumGX);
      if (gb) gb[c] = static_cast<float>(sumG);
      const double k = (weight ? weight[c] : 1.0) * rs;
      // gx = k * (g - mg - xhat * mgx) = k * g - k * mg - (x - mu) * k * rs * mgx
      const double mg = training ? sumG / count : 0.0, mgx = training ? sumGX / count : 0.0;
      const float a = static_cast<float>(k), bconst = static_cast<float>(-k * mg),
                  cx = static_cast<float>(-k * rs * mgx);
      const vf av = vset(a), bv = vset(bconst), cv = vset(cx), mv = vset(mu);
      for (int64_t b = 0; b < n; b++) {
        const int64_t o = (b * channels + c) * spatial;
        const float* xp = x + o;
        const float* gp = gy + o;
        float* op = gx + o;
        int64_t j = 0;
        for (; j + VW <= spatial; j += VW) {
          const vf v = vfma(av, vld(gp + j), bv);
          vst(op + j, vfma(cv, vsub(vld(xp + j), mv), v));
        }
        for (; j < spatial; j++) op[j] = a * gp[j] + bconst + cx * (xp[j] - mu);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Depthwise 2-D convolution, stride 1, dilation 1: each plane is copied into a zero-padded buffer,
// after which every output row is KH * KW vector FMAs of shifted rows, with no bounds tests. Rows
// are covered in vectors of VW outputs (the last one masked), so 14-wide ConvMixer planes are one
// vector per row.

// Copies src (h, w) into dst (rows, cols) at (top, left), clipped to dst. Only those cells are
// written: the caller zeroes dst once, and since every plane of a call has the same geometry, the
// zero border stays valid from plane to plane.
void placePlane(const float* src, int64_t h, int64_t w, int64_t top, int64_t left, float* dst, int64_t rows,
                int64_t cols) {
  const int64_t c0 = left > 0 ? left : 0, c1 = tmin(cols, left + w);
  const int64_t r0 = top > 0 ? top : 0, r1 = tmin(rows, top + h);
  const int64_t n = c1 - c0;
  if (n <= 0) return;
  for (int64_t r = r0; r < r1; r++) {
    const float* s = src + (r - top) * w + (c0 - left);
    float* d = dst + r * cols + c0;
    for (int64_t j = 0; j < n; j += VW) {
      const int wn = static_cast<int>(tmin(VW, n - j));
      vstN(d + j, vldN(s + j, wn), wn);
    }
  }
}

// Rows of output computed together: independent FMA chains hide the FMA latency.
constexpr int kRows = 4;

// out (oh, ow) = init + sum_{a, b} wt[a * kw + b] * pad[(i + a) * cols + j + b], pad (oh + kh - 1, cols).
// With accumulate, init is out itself; otherwise it is `bias`. KW > 0 fixes the kernel width at
// compile time (the common 3, 5, 7, 9), 0 reads it from kwRuntime.
template <int KW>
void correlatePlane(const float* pad, int64_t cols, const float* wt, int64_t kh, int64_t kwRuntime, float bias,
                    bool accumulate, float* out, int64_t oh, int64_t ow) {
  const int64_t kw = KW > 0 ? KW : kwRuntime;
  for (int64_t i0 = 0; i0 < oh; i0 += kRows) {
    const int rows = static_cast<int>(tmin(kRows, oh - i0));
    for (int64_t j = 0; j < ow; j += VW) {
      const int wn = static_cast<int>(tmin(VW, ow - j));
      vf acc[kRows];
      for (int r = 0; r < kRows; r++) {
        acc[r] = r < rows ? (accumulate ? vldN(out + (i0 + r) * ow + j, wn) : vset(bias)) : vzero();
      }
      for (int64_t a = 0; a < kh; a++) {
        const float* wrow = wt + a * kw;
        const float* prow = pad + (i0 + a) * cols + j;
        for (int64_t b = 0; b < kw; b++) {
          const vf wv = vset(wrow[b]);
          if (rows == kRows) {
            for (int r = 0; r < kRows; r++) acc[r] = vfma(wv, vldN(prow + r * cols + b, wn), acc[r]);
          } else {
            for (int r = 0; r < rows; r++) acc[r] = vfma(wv, vldN(prow + r * cols + b, wn), acc[r]);
          }
        }
      }
      for (int r = 0; r < rows; r++) vstN(out + (i0 + r) * ow + j, acc[r], wn);
    }
  }
}

using CorrelateFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float, bool, float*, int64_t,
                             int64_t);

CorrelateFn correlateFor(int64_t kw) {
  switch (kw) {
    case 3: return correlatePlane<3>;
    case 5: return correlatePlane<5>;
    case 7: return correlatePlane<7>;
    case 9: return correlatePlane<9>;
    default: return correlatePlane<0>;
  }
}

// gw[a * kw + b] += sum_{i, j} g[i][j] * pad[i + a][j + b] for one plane: for each kernel row a, the
// kw tap sums stay in registers over the whole plane.
template <int KW>
void tapSumsPlane(const float* g, const float* pad, int64_t cols, int64_t kh, int64_t kwRuntime, int64_t oh,
                  int64_t ow, float* acc) {
  constexpr int kMax = KW > 0 ? KW : 1;
  const int64_t kw = KW > 0 ? KW : kwRuntime;
  for (int64_t a = 0; a < kh; a++) {
    if (KW > 0) {
      vf s[kMax];
      for (int b = 0; b < kMax; b++) s[b] = vld(acc + (a * kw + b) * VW);
      for (int64_t i = 0; i < oh; i++) {
        const float* grow = g + i * ow;
        const float* prow = pad + (i + a) * cols;
        for (int64_t j = 0; j < ow; j += VW) {
          const int wn = static_cast<int>(tmin(VW, ow - j));
          const vf gv = vldN(grow + j, wn);
          for (int b = 0; b < kMax; b++) s[b] = vfma(gv, vldN(prow + j + b, wn), s[b]);
        }
      }
      for (int b = 0; b < kMax; b++) vst(acc + (a * kw + b) * VW, s[b]);
    } else {
      for (int64_t b = 0; b < kw; b++) {
        vf s = vld(acc + (a * kw + b) * VW);
        for (int64_t i = 0; i < oh; i++) {
          const float* grow = g + i * ow;
          const float* prow = pad + (i + a) * cols + b;
          for (int64_t j = 0; j < ow; j += VW) {
            const int wn = static_cast<int>(tmin(VW, ow - j));
            s = vfma(vldN(grow + j, wn), vldN(prow + j, wn), s);
          }
        }
        vst(acc + (a * kw + b) * VW, s);
      }
    }
  }
}

using TapSumsFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);

TapSumsFn tapSumsFor(int64_t kw) {
  switch (kw) {
    case 3: return tapSumsPlane<3>;
    case 5: return tapSumsPlane<5>;
    case 7: return tapSumsPlane<7>;
    case 9: return tapSumsPlane<9>;
    default: return tapSumsPlane<0>;
  }
}

void depthwiseConv2d(const float* x, const float* weight, const float* bias, int64_t batch, int64_t channels,
                     const Window& w, float* out, int threads) {
  const int64_t H = w.inSize[1], W = w.inSize[2], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KH = w.kernel[1], KW = w.kernel[2];
  const int64_t rows = OH + KH - 1, cols = OW + KW - 1;
  const int64_t work = OH * OW * KH * KW;
  splitFor(threads, batch * channels, kGrain / (work > 0 ? work : 1) + 1, [&](int64_t p0, int64_t p1) {
    float* pad = trainScratch(0, rows * cols + VW);
    std::memset(pad, 0, static_cast<size_t>(rows * cols) * sizeof(float));
    const CorrelateFn correlate = correlateFor(KW);
    for (int64_t p = p0; p < p1; p++) {
      const int64_t c = p % channels;
      placePlane(x + p * H * W, H, W, w.padding[1], w.padding[2], pad, rows, cols);
      correlate(pad, cols, weight + c * KH * KW, KH, KW, bias ? bias[c] : 0.0f, false, out + p * OH * OW, OH, OW);
    }
  });
}

void depthwiseConv2dBackward(const float* x, const float* weight, const float* gy, int64_t batch, int64_t channels,
                             const Window& w, float* gx, float* gw, int threads) {
  const int64_t H = w.inSize[1], W = w.inSize[2], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KH = w.kernel[1], KW = w.kernel[2], taps = KH * KW;
  const int64_t ph = w.padding[1], pw = w.padding[2];
  // gx = gy padded by (KH - 1 - ph, KW - 1 - pw) correlated with the flipped kernel; x padded as in
  // the forward gives gw[a][b] = sum gy[i][j] * xpad[i + a][j + b].
  const int64_t gRows = H + KH - 1, gCols = W + KW - 1;
  const int64_t xRows = OH + KH - 1, xCols = OW + KW - 1;
  const int64_t work = batch * OH * OW * taps;
  splitFor(threads, channels, kGrain / (work > 0 ? work : 1) + 1, [&](int64_t c0, int64_t c1) {
    // One zero-bordered buffer for gy planes, one for x planes.
    float* gPad = trainScratch(0, gRows * gCols + xRows * xCols + 2 * VW);
    float* xPad = gPad + gRows * gCols + VW;
    std::memset(gPad, 0, static_cast<size_t>(gRows * gCols + xRows * xCols + 2 * VW) * sizeof(float));
    float* acc = trainScratch(1, taps * VW + taps);
    float* flipped = acc + taps * VW;
    const CorrelateFn correlate = correlateFor(KW);
    const TapSumsFn tapSums = tapSumsFor(KW);
    for (int64_t c = c0; c < c1; c++) {
      const float* wc = weight + c * taps;
      for (int64_t t = 0; t < taps; t++) flipped[t] = wc[taps - 1 - t];
      if (gw) {
        for (int64_t t = 0; t < taps; t++) vst(acc + t * VW, vzero());
      }
      for (int64_t b = 0; b < batch; b++) {
        const int64_t p = b * channels + c;
        const float* g = gy + p * OH * OW;
        if (gx) {
          placePlane(g, OH, OW, KH - 1 - ph, KW - 1 - pw, gPad, gRows, gCols);
          correlate(gPad, gCols, flipped, KH, KW, 0.0f, true, gx + p * H * W, H, W);
        }
        if (gw) {
          placePlane(x + p * H * W, H, W, ph, pw, xPad, xRows, xCols);
          tapSums(g, xPad, xCols, KH, KW, OH, OW, acc);
        }
      }
      if (gw) {
        for (int64_t t = 0; t < taps; t++) gw[c * taps + t] += vhsum(vld(acc + t * VW));
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// im2col / col2im over a batch, images side by side (src/backend/js/conv.ts im2colBatch): row r =
// (c, kd, kh, kw) of the columns holds image n's L window positions at [r * batch * L + n * L, +L).

// The outputs o in [lo, hi) whose input position o * stride + offset lies in [0, size).
inline void validSpan(int64_t offset, int64_t stride, int64_t size, int64_t outLen, int64_t* lo, int64_t* hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = size - 1 - offset;
  int64_t h = last < 0 ? 0 : tmin(outLen, last / stride + 1);
  l = tmin(l, outLen);
  *lo = l;
  *hi = h > l ? h : l;
}

// The common 2-D case with unit stride and dilation along the width: each (image, channel) plane is
// placed once into a zero-bordered buffer, after which every output row of every tap is one
// contiguous, bounds-free run (a single masked vector copy for rows up to VW wide).
bool plainRows2d(const Window& w) {
  return w.inSize[0] == 1 && w.kernel[0] == 1 && w.outSize[0] == 1 && w.stride[2] == 1 && w.dilation[2] == 1;
}

inline void copyRun(const float* src, float* dst, int64_t n) {
  for (int64_t j = 0; j < n; j += VW) {
    const int wn = static_cast<int>(tmin(VW, n - j));
    stW(dst, j, ldW(src, j, wn), wn);
  }
}

inline void addRun(const float* src, float* dst, int64_t n) {
  for (int64_t j = 0; j < n; j += VW) {
    const int wn = static_cast<int>(tmin(VW, n - j));
    stW(dst, j, vadd(ldW(dst, j, wn), ldW(src, j, wn)), wn);
  }
}

// A plane with its padding made explicit: input (i, j) sits at (top + i, left + j); output row oh of
// tap (kh, kw) reads row oh * sh + kh * dh from column kw on.
struct PaddedGeometry {
  int64_t rows, cols, top, left;
};

PaddedGeometry paddedGeometry(const Window& w) {
  PaddedGeometry g;
  g.top = w.padding[1];
  g.left = w.padding[2];
  // The last row any window reads, and the last column (unit stride and dilation along the width).
  g.rows = (w.outSize[1] - 1) * w.stride[1] + (w.kernel[1] - 1) * w.dilation[1] + 1;
  g.cols = w.outSize[2] + w.kernel[2] - 1;
  return g;
}

void im2colBatchRows(const float* x, int64_t batch, int64_t channels, const Window& w, float* cols, int threads) {
  const int64_t H = w.inSize[1], W = w.inSize[2], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KH = w.kernel[1], KW = w.kernel[2], taps = KH * KW, L = OH * OW;
  const PaddedGeometry g = paddedGeometry(w);
  // Tasks are (channel, image) planes, so a one-channel input (a stem) still splits over threads.
  splitFor(threads, channels * batch, kGrain / (taps * L > 0 ? taps * L : 1) + 1, [&](int64_t p0, int64_t p1) {
    float* pad = trainScratch(0, g.rows * g.cols + VW);
    std::memset(pad, 0, static_cast<size_t>(g.rows * g.cols + VW) * sizeof(float));
    for (int64_t p = p0; p < p1; p++) {
      const int64_t c = p / batch, n = p % batch;
      placePlane(x + (n * channels + c) * H * W, H, W, g.top, g.left, pad, g.rows, g.cols);
      for (int64_t t = 0; t < taps; t++) {
        const int64_t kh = t / KW, kw = t % KW;
        float* dst = cols + ((c * taps + t) * batch + n) * L;
        for (int64_t oh = 0; oh < OH; oh++) {
          copyRun(pad + (oh * w.stride[1] + kh * w.dilation[1]) * g.cols + kw, dst + oh * OW, OW);
        }
      }
    }
  });
}

void col2imBatchRows(const float* cols, int64_t batch, int64_t channels, const Window& w, float* x, int threads) {
  const int64_t H = w.inSize[1], W = w.inSize[2], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KH = w.kernel[1], KW = w.kernel[2], taps = KH * KW, L = OH * OW;
  const PaddedGeometry g = paddedGeometry(w);
  splitFor(threads, channels * batch, kGrain / (taps * L > 0 ? taps * L : 1) + 1, [&](int64_t p0, int64_t p1) {
    float* pad = trainScratch(0, g.rows * g.cols + VW);
    for (int64_t p = p0; p < p1; p++) {
      const int64_t c = p / batch, n = p % batch;
      std::memset(pad, 0, static_cast<size_t>(g.rows * g.cols) * sizeof(float));
      for (int64_t t = 0; t < taps; t++) {
        const int64_t kh = t / KW, kw = t % KW;
        const float* src = cols + ((c * taps + t) * batch + n) * L;
        for (int64_t oh = 0; oh < OH; oh++) {
          addRun(src + oh * OW, pad + (oh * w.stride[1] + kh * w.dilation[1]) * g.cols + kw, OW);
        }
      }
      // The interior goes back into x; what fell on the padding is dropped.
      float* xp = x + (n * channels + c) * H * W;
      const int64_t r0 = g.top, r1 = tmin(g.rows, g.top + H);
      const int64_t cl0 = g.left, cl1 = tmin(g.cols, g.left + W);
      for (int64_t r = r0; r < r1; r++) addRun(pad + r * g.cols + cl0, xp + (r - g.top) * W, cl1 - cl0);
    }
  });
}

void im2colBatch(const float* x, int64_t batch, int64_t channels, const Window& w, float* cols, int threads) {
  if (plainRows2d(w)) {
    im2colBatchRows(x, batch, channels, w, cols, threads);
    return;
  }
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t L = OD * OH * OW, taps = KD * KH * KW, plane = D * H * W;
  const int64_t rows = channels * taps, sw = w.stride[2];
  splitFor(threads, rows, kGrain / (batch * L > 0 ? batch * L : 1) + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t c = r / taps, t = r % taps;
      const int64_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
      const int64_t offW = kw * w.dilation[2] - w.padding[2];
      int64_t lo, hi;
      validSpan(offW, sw, W, OW, &lo, &hi);
      for (int64_t n = 0; n < batch; n++) {
        const float* xc = x + (n * channels + c) * plane;
        float* dst = cols + (r * batch + n) * L;
        for (int64_t od = 0; od < OD; od++) {
          const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
          for (int64_t oh = 0; oh < OH; oh++, dst += OW) {
            const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
            if (id < 0 || id >= D || ih < 0 || ih >= H) {
              for (int64_t ow = 0; ow < OW; ow++) dst[ow] = 0.0f;
              continue;
            }
            const float* src = xc + (id * H + ih) * W + offW;
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
            if (sw == 1) {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw];
            }
            for (int64_t ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
          }
        }
      }
    }
  });
}

void col2imBatch(const float* cols, int64_t batch, int64_t channels, const Window& w, float* x, int threads) {
  if (plainRows2d(w)) {
    col2imBatchRows(cols, batch, channels, w, x, threads);
    return;
  }
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t L = OD * OH * OW, taps = KD * KH * KW, plane = D * H * W, sw = w.stride[2];
  // One (image, channel) plane per task: its taps all land in that plane, so no two threads share one.
  splitFor(threads, batch * channels, kGrain / (taps * L > 0 ? taps * L : 1) + 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t n = p / channels, c = p % channels;
      float* xc = x + p * plane;
      for (int64_t t = 0; t < taps; t++) {
        const int64_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
        const int64_t offW = kw * w.dilation[2] - w.padding[2];
        int64_t lo, hi;
        validSpan(offW, sw, W, OW, &lo, &hi);
        const float* src = cols + ((c * taps + t) * batch + n) * L;
        for (int64_t od = 0; od < OD; od++) {
          const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
          for (int64_t oh = 0; oh < OH; oh++, src += OW) {
            const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
            if (id < 0 || id >= D || ih < 0 || ih >= H) continue;
            float* dst = xc + (id * H + ih) * W + offW;
            if (sw == 1) {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw] += src[ow];
            }
          }
        }
      }
    }
  });
}

// 2-D max pooling with unit dilation (a ResNet stem's 3x3 / stride 2): the window bounds of every
// output row and column are computed once per plane, and the inner search is branch-free (a select
// for the value and one for the index, strict > so the first maximum wins, as in the general loop).
// A window that holds a NaN is searched again by the general rule, so NaN semantics stay torch's.
void maxPool2d(const float* x, int64_t planes, const Window& w, float* out, int32_t* indices, int threads) {
  const int64_t H = w.inSize[1], W = w.inSize[2], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t L = OH * OW, taps = w.kernel[1] * w.kernel[2];
  std::vector<int64_t> h0(OH), h1(OH), w0(OW), w1(OW);
  for (int64_t oh = 0; oh < OH; oh++) {
    const int64_t s = oh * w.stride[1] - w.padding[1];
    h0[oh] = s < 0 ? 0 : s;
    h1[oh] = tmin(s + w.kernel[1], H);
  }
  for (int64_t ow = 0; ow < OW; ow++) {
    const int64_t s = ow * w.stride[2] - w.padding[2];
    w0[ow] = s < 0 ? 0 : s;
    w1[ow] = tmin(s + w.kernel[2], W);
  }
  splitFor(threads, planes, kGrain / (L * taps > 0 ? L * taps : 1) + 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* xp = x + p * H * W;
      float* op = out + p * L;
      int32_t* ip = indices + p * L;
      for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
          float best = -INFINITY;
          int32_t bestIdx = static_cast<int32_t>(h0[oh] * W + w0[ow]);
          bool nan = false;
          for (int64_t h = h0[oh]; h < h1[oh]; h++) {
            const float* row = xp + h * W;
            for (int64_t c = w0[ow]; c < w1[ow]; c++) {
              const float v = row[c];
              const bool gt = v > best;
              best = gt ? v : best;
              bestIdx = gt ? static_cast<int32_t>(h * W + c) : bestIdx;
              nan |= v != v;
            }
          }
          if (nan) {
            // The first NaN in scan order wins.
            for (int64_t h = h0[oh]; h < h1[oh] && !(best != best); h++) {
              for (int64_t c = w0[ow]; c < w1[ow]; c++) {
                if (xp[h * W + c] != xp[h * W + c]) {
                  best = xp[h * W + c];
                  bestIdx = static_cast<int32_t>(h * W + c);
                  break;
                }
              }
            }
          }
          op[oh * OW + ow] = best;
          ip[oh * OW + ow] = bestIdx;
        }
      }
    }
  });
}

// Max pooling: padding never wins, NaN propagates (the first NaN's index), indices are flat positions
// in the input plane; the search starts at the first in-bounds tap, as torch's.
void maxPool(const float* x, int64_t planes, const Window& w, float* out, int32_t* indices, int threads) {
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t L = OD * OH * OW, inPlane = D * H * W;
  const int64_t taps = w.kernel[0] * w.kernel[1] * w.kernel[2];
  // First in-bounds tap position of output o along one dim.
  auto first = [](int64_t o, int64_t stride, int64_t pad, int64_t dil) {
    int64_t p0 = o * stride - pad;
    if (p0 < 0) p0 += ((-p0 + dil - 1) / dil) * dil;
    return p0;
  };
  if (D == 1 && w.kernel[0] == 1 && w.dilation[1] == 1 && w.dilation[2] == 1) {
    maxPool2d(x, planes, w, out, indices, threads);
    return;
  }
  splitFor(threads, planes, kGrain / (L * taps > 0 ? L * taps : 1) + 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* xp = x + p * inPlane;
      float* op = out + p * L;
      int32_t* ip = indices + p * L;
      int64_t o = 0;
      for (int64_t od = 0; od < OD; od++) {
        const int64_t d0 = first(od, w.stride[0], w.padding[0], w.dilation[0]);
        const int64_t dEnd = tmin(od * w.stride[0] - w.padding[0] + (w.kernel[0] - 1) * w.dilation[0] + 1, D);
        for (int64_t oh = 0; oh < OH; oh++) {
          const int64_t h0 = first(oh, w.stride[1], w.padding[1], w.dilation[1]);
          const int64_t hEnd = tmin(oh * w.stride[1] - w.padding[1] + (w.kernel[1] - 1) * w.dilation[1] + 1, H);
          for (int64_t ow = 0; ow < OW; ow++, o++) {
            const int64_t w0 = first(ow, w.stride[2], w.padding[2], w.dilation[2]);
            const int64_t wEnd = tmin(ow * w.stride[2] - w.padding[2] + (w.kernel[2] - 1) * w.dilation[2] + 1, W);
            float best = -INFINITY;
            int64_t bestIdx = (d0 * H + h0) * W + w0;
            bool nan = false;
            for (int64_t d = d0; d < dEnd && !nan; d += w.dilation[0]) {
              for (int64_t h = h0; h < hEnd && !nan; h += w.dilation[1]) {
                const int64_t row = (d * H + h) * W;
                for (int64_t c = w0; c < wEnd; c += w.dilation[2]) {
                  const float v = xp[row + c];
                  if (v > best || v != v) {
                    best = v;
                    bestIdx = row + c;
                    if (v != v) {
                      nan = true;
                      break;
                    }
                  }
                }
              }
            }
            op[o] = best;
            ip[o] = static_cast<int32_t>(bestIdx);
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Self-attention on a fused qkv projection. One task per (batch, head): its q, k and v rows are
// gathered from qkv (row stride 3C) into contiguous scratch, keys and values also transposed
// (d-major, padded to whole vectors) so that a score row is D broadcast-FMAs over vectors of keys;
// the output and the gradients are written straight into their (B, N, H, D) / (B, N, 3, H, D) places.

// Vectors of accumulators kept in registers by the blocked loops below.
constexpr int kBlock = 4;

// row[0, n) = scale * sum_d a[d] * bt[d * ld + 0..n): one row of a product with a transposed operand.
void rowTimesTransposed(const float* a, const float* bt, int64_t ld, int64_t depth, int64_t n, float scale,
                        float* row) {
  for (int64_t j0 = 0; j0 < n; j0 += kBlock * VW) {
    vf acc[kBlock];
    for (int v = 0; v < kBlock; v++) acc[v] = vzero();
    for (int64_t d = 0; d < depth; d++) {
      const vf av = vset(a[d]);
      const float* b = bt + d * ld + j0;
      for (int v = 0; v < kBlock; v++) acc[v] = vfma(av, vld(b + v * VW), acc[v]);
    }
    for (int v = 0; v < kBlock; v++) {
      const int64_t j = j0 + v * VW;
      if (j >= n) break;
      stW(row, j, vmul(acc[v], vset(scale)), static_cast<int>(tmin(VW, n - j)));
    }
  }
}

// out[0, D) = scale * sum_j coef[j * stride] * m[j * D + 0..D): a combination of rows.
void combineRows(const float* coef, int64_t stride, const float* m, int64_t rows, int64_t D, float scale,
                 float* out) {
  for (int64_t d0 = 0; d0 < D; d0 += kBlock * VW) {
    vf acc[kBlock];
    for (int v = 0; v < kBlock; v++) acc[v] = vzero();
    const int64_t width = tmin(kBlock * VW, D - d0);
    for (int64_t j = 0; j < rows; j++) {
      const vf c = vset(coef[j * stride]);
      const float* mr = m + j * D + d0;
      for (int v = 0; v < kBlock; v++) {
        const int64_t off = v * VW;
        if (off >= width) break;
        acc[v] = vfma(c, ldW(mr, off, static_cast<int>(tmin(VW, width - off))), acc[v]);
      }
    }
    for (int v = 0; v < kBlock; v++) {
      const int64_t off = v * VW;
      if (off >= width) break;
      stW(out + d0, off, vmul(acc[v], vset(scale)), static_cast<int>(tmin(VW, width - off)));
    }
  }
}

// The forward's register tiles: kTileRows query rows at once, each loaded key or value vector shared by
// all of them, up to kTileVecs vectors of keys (scores) or of head dims (output) per row, so a tile
// keeps kTileRows * kTileVecs accumulators in registers (24 of AVX-512's 32, 12 of AVX2's 16).
constexpr int kTileRows = VW == 16 ? 6 : 4;
constexpr int kTileVecs = VW == 16 ? 4 : 3;

// s[r * ld + j0 + 0..NV*VW) = scale * q_r . k_j for the kTileRows rows of q (stride D), kt (D, ld).
template <int NV>
void scoreTile(const float* q, int64_t D, const float* kt, int64_t ld, int64_t j0, float scale, float* s) {
  vf acc[kTileRows][NV];
  for (int r = 0; r < kTileRows; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = vzero();
  for (int64_t d = 0; d < D; d++) {
    const float* kr = kt + d * ld + j0;
    vf kv[NV];
    for (int v = 0; v < NV; v++) kv[v] = vld(kr + v * VW);
    for (int r = 0; r < kTileRows; r++) {
      const vf qa = vset(q[r * D + d]);
      for (int v = 0; v < NV; v++) acc[r][v] = vfma(qa, kv[v], acc[r][v]);
    }
  }
  const vf sc = vset(scale);
  for (int r = 0; r < kTileRows; r++)
    for (int v = 0; v < NV; v++) vst(s + r * ld + j0 + v * VW, vmul(acc[r][v], sc));
}

// out[r * os + d0 + 0..width) = inv[r] * sum_j p[r * ld + j] * vals[j * ldv + d0 + ...] for r < rows.
template <int NV>
void valueTile(const float* p, int64_t ld, const float* vals, int64_t ldv, int64_t n, int64_t d0, const float* inv,
               int rows, int64_t width, float* out, int64_t os) {
  vf acc[kTileRows][NV];
  for (int r = 0; r < kTileRows; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = vzero();
  for (int64_t j = 0; j < n; j++) {
    const float* vr = vals + j * ldv + d0;
    vf vv[NV];
    for (int v = 0; v < NV; v++) vv[v] = vld(vr + v * VW);
    for (int r = 0; r < kTileRows; r++) {
      const vf pb = vset(p[r * ld + j]);
      for (int v = 0; v < NV; v++) acc[r][v] = vfma(pb, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < rows; r++) {
    const vf iv = vset(inv[r]);
    for (int v = 0; v < NV; v++) {
      const int64_t off = v * VW;
      if (off >= width) break;
      stW(out + r * os + d0, off, vmul(acc[r][v], iv), static_cast<int>(tmin(VW, width - off)));
    }
  }
}

// row[0, n) = exp(row - max) in place; returns 1 / the sum (0 for a row of -inf, whose exps are zeroed, as
// the attention kernel gives zeros there).
float expRow(float* row, int64_t n) {
  const int64_t full = n / VW * VW;
  vf mv = vset(-INFINITY);
  for (int64_t j = 0; j < full; j += VW) mv = vmaxKeepNan(mv, vld(row + j));
  float mx = vhmax(mv);
  for (int64_t j = full; j < n; j++) mx = row[j] > mx || row[j] != row[j] ? row[j] : mx;
  if (mx == -INFINITY) {
    for (int64_t j = 0; j < n; j++) row[j] = 0.0f;
    return 0.0f;
  }
  const vf m = vset(mx);
  vf sum = vzero();
  for (int64_t j = 0; j < n; j += VW) {
    const int w = static_cast<int>(tmin(VW, n - j));
    const vf e = vexp(vsub(ldW(row, j, w), m));
    sum = vadd(sum, vkeepN(e, w));
    stW(row, j, e, w);
  }
  return 1.0f / vhsum(sum);
}

inline int64_t padTo(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Gathers rows [which * C + h * D, +D) of the N tokens of image b into dst (N, D), and when `t` is given
// also transposed into t (D, ld) with zero padding past N.
void gatherHead(const float* qkv, int64_t b, int64_t h, int which, int64_t N, int64_t C, int64_t D, float* dst,
                float* t, int64_t ld) {
  for (int64_t i = 0; i < N; i++) {
    const float* src = qkv + ((b * N + i) * 3 + which) * C + h * D;
    for (int64_t d = 0; d < D; d++) dst[i * D + d] = src[d];
  }
  if (!t) return;
  for (int64_t d = 0; d < D; d++) {
    float* tr = t + d * ld;
    for (int64_t i = 0; i < N; i++) tr[i] = dst[i * D + d];
    for (int64_t i = N; i < ld; i++) tr[i] = 0.0f;
  }
}

// Forward, one task per (batch, head): q gathered into (Np, D) with Np = N rounded up to whole tiles of
// rows (zero rows past N), k transposed into (D, ld) and v into (N, ldv), both zero-padded to whole
// vectors. Per tile of query rows: the scores (kTileRows, ld), their exps, then the output with the
// softmax's 1 / sum applied on the way out (the probabilities are normalized only when they are kept).
void qkvAttention(const float* qkv, int64_t B, int64_t N, int64_t H, int64_t D, float scale, float* out,
                  float* probs, int threads) {
  const int64_t C = H * D, ld = padTo(N, VW), ldv = padTo(D, VW), Np = padTo(N, kTileRows);
  splitFor(threads, B * H, 1, [&](int64_t t0, int64_t t1) {
    float* q = trainScratch(0, Np * D + D * ld + N * ldv + kTileRows * ld + kTileRows);
    float* kt = q + Np * D;
    float* vals = kt + D * ld;
    float* s = vals + N * ldv;
    float* inv = s + kTileRows * ld;
    for (int64_t i = N * D; i < Np * D; i++) q[i] = 0.0f;
    for (int64_t task = t0; task < t1; task++) {
      const int64_t b = task / H, h = task % H;
      gatherHead(qkv, b, h, 0, N, C, D, q, nullptr, 0);
      gatherHead(qkv, b, h, 1, N, C, D, vals, kt, ld);  // k: only its transpose is kept
      for (int64_t i = 0; i < N; i++) {
        const float* src = qkv + ((b * N + i) * 3 + 2) * C + h * D;
        float* dst = vals + i * ldv;
        for (int64_t d = 0; d < D; d++) dst[d] = src[d];
        for (int64_t d = D; d < ldv; d++) dst[d] = 0.0f;
      }
      for (int64_t i0 = 0; i0 < N; i0 += kTileRows) {
        const int rows = static_cast<int>(tmin(kTileRows, N - i0));
        const float* qt = q + i0 * D;
        for (int64_t j0 = 0; j0 < ld; j0 += kTileVecs * VW) {
          switch (tmin(kTileVecs, (ld - j0) / VW)) {
            case 1: scoreTile<1>(qt, D, kt, ld, j0, scale, s); break;
            case 2: scoreTile<2>(qt, D, kt, ld, j0, scale, s); break;
            case 3: scoreTile<3>(qt, D, kt, ld, j0, scale, s); break;
            default: scoreTile<kTileVecs>(qt, D, kt, ld, j0, scale, s); break;
          }
        }
        for (int r = 0; r < rows; r++) {
          inv[r] = expRow(s + r * ld, N);
          if (!probs) continue;
          float* pr = probs + (task * N + i0 + r) * N;
          const vf iv = vset(inv[r]);
          for (int64_t j = 0; j < N; j += VW) {
            const int w = static_cast<int>(tmin(VW, N - j));
            stW(pr, j, vmul(ldW(s + r * ld, j, w), iv), w);
          }
        }
        float* o = out + (b * N + i0) * C + h * D;
        for (int64_t d0 = 0; d0 < ldv; d0 += kTileVecs * VW) {
          const int64_t width = tmin(kTileVecs * VW, D - d0);
          switch (tmin(kTileVecs, (ldv - d0) / VW)) {
            case 1: valueTile<1>(s, ld, vals, ldv, N, d0, inv, rows, width, o, C); break;
            case 2: valueTile<2>(s, ld, vals, ldv, N, d0, inv, rows, width, o, C); break;
            case 3: valueTile<3>(s, ld, vals, ldv, N, d0, inv, rows, width, o, C); break;
            default: valueTile<kTileVecs>(s, ld, vals, ldv, N, d0, inv, rows, width, o, C); break;
          }
        }
      }
    }
  });
}

void qkvAttentionBackward(const float* qkv, const float* probs, const float* gradOut, int64_t B, int64_t N,
                          int64_t H, int64_t D, float scale, float* gqkv, int threads) {
  const int64_t C = H * D, ld = padTo(N, kBlock * VW);
  splitFor(threads, B * H, 1, [&](int64_t t0, int64_t t1) {
    float* q = trainScratch(0, 4 * N * D + D * ld + N * ld);
    float* k = q + N * D;
    float* v = k + N * D;
    float* g = v + N * D;
    float* vt = g + N * D;
    float* ds = vt + D * ld;  // (N, ld): dS = P o (dP - rowsum(P o dP))
    for (int64_t task = t0; task < t1; task++) {
      const int64_t b = task / H, h = task % H;
      const float* P = probs + task * N * N;
      gatherHead(qkv, b, h, 0, N, C, D, q, nullptr, 0);
      gatherHead(qkv, b, h, 1, N, C, D, k, nullptr, 0);
      gatherHead(qkv, b, h, 2, N, C, D, v, vt, ld);
      for (int64_t i = 0; i < N; i++) {
        const float* src = gradOut + (b * N + i) * C + h * D;
        for (int64_t d = 0; d < D; d++) g[i * D + d] = src[d];
      }
      for (int64_t i = 0; i < N; i++) {
        float* r = ds + i * ld;
        rowTimesTransposed(g + i * D, vt, ld, D, N, 1.0f, r);  // dP_i = gO_i V^T
        const float* pr = P + i * N;
        float dot = 0.0f;
        for (int64_t j = 0; j < N; j++) dot += pr[j] * r[j];
        for (int64_t j = 0; j < N; j++) r[j] = pr[j] * (r[j] - dot);
      }
      for (int64_t i = 0; i < N; i++) {
        float* base = gqkv + (b * N + i) * 3 * C + h * D;
        combineRows(ds + i * ld, 1, k, N, D, scale, base);       // dQ_i = scale * dS_i K
        combineRows(ds + i, ld, q, N, D, scale, base + C);       // dK_i = scale * dS^T_i Q
        combineRows(P + i, N, g, N, D, 1.0f, base + 2 * C);      // dV_i = P^T_i gO
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Optimizer arithmetic: one fused pass per parameter tensor instead of a scalar JS loop.

void adamUpdate(float* param, const float* grad, float* m, float* v, float* vmax, int64_t n, const AdamScalars& s,
                int threads) {
  splitFor(threads, n, kGrain, [&](int64_t i0, int64_t i1) {
    const vf b1 = vset(s.beta1), c1 = vset(1.0f - s.beta1), b2 = vset(s.beta2), c2 = vset(1.0f - s.beta2);
    const vf eps = vset(s.eps), l2 = vset(s.l2), decay = vset(s.decay), step = vset(s.stepSize);
    const vf invBias2 = vset(1.0f / s.bias2Sqrt);
    for (int64_t i = i0; i < i1; i += VW) {
      const int w = static_cast<int>(tmin(VW, i1 - i));
      vf g = ldW(grad, i, w);
      if (s.maximize) g = vneg(g);
      const vf p0 = ldW(param, i, w);
      if (s.l2 != 0.0f) g = vfma(l2, p0, g);
      const vf mi = vfma(b1, ldW(m, i, w), vmul(c1, g));
      const vf vi = vfma(b2, ldW(v, i, w), vmul(c2, vmul(g, g)));
      stW(m, i, mi, w);
      stW(v, i, vi, w);
      vf vv = vi;
      if (vmax) {
        vv = vmaxKeepNan(ldW(vmax, i, w), vi);
        stW(vmax, i, vv, w);
      }
      const vf denom = vfma(vsqrt(vv), invBias2, eps);
      stW(param, i, vfnma(step, vdiv(mi, denom), vmul(p0, decay)), w);
    }
  });
}

double sumOfSquares(const float* x, int64_t n, int threads) {
  // One partial per chunk, summed in chunk order: the same total for any thread count.
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double partial[256];
  double total = 0;
  for (int64_t c0 = 0; c0 < chunks; c0 += 256) {
    const int64_t c1 = tmin(chunks, c0 + 256);
    splitFor(threads, c1 - c0, 1, [&](int64_t a, int64_t b) {
      for (int64_t c = a; c < b; c++) {
        const int64_t i0 = (c0 + c) * kChunk;
        partial[c] = runSqDev(x + i0, tmin(n, i0 + kChunk) - i0, 0.0f);
      }
    });
    for (int64_t c = 0; c < c1 - c0; c++) total += partial[c];
  }
  return total;
}

}  // namespace

#define GLIMPSE_TRAIN_STR2(x) #x
#define GLIMPSE_TRAIN_STR(x) GLIMPSE_TRAIN_STR2(x)

void fillTrainTable(TrainKernelTable* t) {
  t->name = GLIMPSE_TRAIN_STR(GLIMPSE_ISA);
  t->batchNormStats = batchNormStats;
  t->batchNormForward = batchNormForward;
  t->batchNormBackward = batchNormBackward;
  t->depthwiseConv2d = depthwiseConv2d;
  t->depthwiseConv2dBackward = depthwiseConv2dBackward;
  t->im2colBatch = im2colBatch;
  t->col2imBatch = col2imBatch;
  t->maxPool = maxPool;
  t->qkvAttention = qkvAttention;
  t->qkvAttentionBackward = qkvAttentionBackward;
  t->adamUpdate = adamUpdate;
  t->sumOfSquares = sumOfSquares;
}

}  // namespace GLIMPSE_ISA
}  // namespace glimpse
