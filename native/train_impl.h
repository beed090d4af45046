// The kernels of train_kernels.h over simd.h's vector layer, compiled once per instruction set
// (train_avx512.cc, train_avx2.cc, train_scalar.cc define GLIMPSE_ISA and include this file).
// Semantics: src/backend/js/batch_norm.ts and the depthwise case of src/backend/js/conv.ts.
#pragma once

#include <cstdlib>
#include <cstring>

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
}

}  // namespace GLIMPSE_ISA
}  // namespace glimpse
