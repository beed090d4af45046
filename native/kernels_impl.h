// The kernels, written once over the vector layer of simd.h and compiled once per instruction set
// (isa_avx512.cc, isa_avx2.cc, isa_scalar.cc define GLIMPSE_ISA and include this file). Semantics
// are those of the js kernels in src/backend/js/*.ts, which are normative.
#pragma once

#include <cstdlib>

#include "kernels.h"
#include "simd.h"

namespace glimpse {
namespace GLIMPSE_ISA {
namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers (no std:: templates here; see kernels.h).

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t roundUp(int64_t a, int64_t b) { return ceilDiv(a, b) * b; }

// Per-thread scratch buffers, 64-byte aligned, grown on demand and kept for the thread's life.
// kPackB: B of a single-threaded GEMM; kSharedB: B of a GEMM split across threads (packed by the
// caller's team, owned by the calling thread); kPartial: per-thread partial sums.
enum ScratchSlot { kPackA, kPackB, kSharedB, kAttnK, kAttnS, kAttnO, kAttnRow, kPartial, kSlotCount };

struct Scratch {
  float* ptr[kSlotCount] = {};
  size_t cap[kSlotCount] = {};
  ~Scratch() {
    for (int i = 0; i < kSlotCount; i++) std::free(ptr[i]);
  }
};
thread_local Scratch tlsScratch;

// Aborts when memory runs out: kernels have no error path, and no buffer is larger than an operand
// the caller already holds.
float* scratch(int slot, int64_t floats) {
  Scratch& s = tlsScratch;
  const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) & ~static_cast<size_t>(63);
  if (bytes > s.cap[slot]) {
    std::free(s.ptr[slot]);
    s.ptr[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    s.cap[slot] = s.ptr[slot] ? bytes : 0;
    if (!s.ptr[slot]) std::abort();
  }
  return s.ptr[slot];
}

// Runs f(begin, end, tid) over [0, n) cut into contiguous chunks of at least `grain` items, which
// up to `threads` threads claim as they come free (see parallelChunks). tid < threads names the
// thread running the chunk, for per-thread buffers.
template <class F>
void parallelForTid(int threads, int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int64_t chunks = imax(1, imin(grain > 0 ? n / grain : n, static_cast<int64_t>(threads) * 8));
  if (threads <= 1 || chunks == 1) {
    f(static_cast<int64_t>(0), n, 0);
    return;
  }
  struct Ctx {
    F* f;
    int64_t n, chunks;
  } ctx{&f, n, chunks};
  parallelChunks(
      static_cast<int>(imin(threads, chunks)), chunks,
      [](void* c, int64_t chunk, int tid) {
        Ctx* x = static_cast<Ctx*>(c);
        (*x->f)(x->n * chunk / x->chunks, x->n * (chunk + 1) / x->chunks, tid);
      },
      &ctx);
}

template <class F>
void parallelFor(int threads, int64_t n, int64_t grain, F&& f) {
  parallelForTid(threads, n, grain, [&](int64_t b, int64_t e, int) { f(b, e); });
}

// A vector of w <= VW lanes at p + j (masked when w < VW).
inline vf loadW(const float* p, int64_t j, int w) { return w == VW ? vld(p + j) : vldN(p + j, w); }
inline void storeW(float* p, int64_t j, vf v, int w) {
  if (w == VW) {
    vst(p + j, v);
  } else {
    vstN(p + j, v, w);
  }
}

inline vf applyAct(vf x, int act) {
  if (act == kActRelu) return vrelu(x);
  if (act == kActGelu) return vgelu(x);
  return x;
}

// ---------------------------------------------------------------------------------------------
// GEMM: the BLIS loop nest around a register-blocked micro-kernel.
//
// Packed A slivers are [kc][MR] (MR rows interleaved along k), packed B panels [kc][NR]. The
// micro-kernel keeps an MR x NR block of C in registers: MR broadcasts of A and NR / VW loads of B
// feed MR * NR / VW fused multiply-adds per step of k.

// KC: the most rows of B in a block of k. A packed B panel (KC x NR) is reused by every A sliver
// (MR x KC) of a tile, which streams from L2; every block of k is one more pass over C. MC: the most
// rows of A a tile packs at once (MC x KC, in L2).
#if defined(__AVX512F__)
constexpr int MR = 14, NV = 2;  // 28 of the 32 zmm registers accumulate
// The B panel (up to 48 KB) outgrows a 48 KB L1 and is partly fed from L2: on Sapphire Rapids 384
// still beat 256 (which keeps it in L1) by 1-3% on the ViT shapes, with a third fewer passes over C.
constexpr int64_t KC = 384, MC = 14 * 36;
#elif defined(__AVX2__)
constexpr int MR = 6, NV = 2;  // 12 of the 16 ymm registers accumulate
constexpr int64_t KC = 256, MC = 6 * 24;
#else
constexpr int MR = 4, NV = 8;
constexpr int64_t KC = 256, MC = 4 * 32;
#endif
constexpr int NR = NV * VW;

// What happens to a finished block: C = act(alpha * acc + beta * C + bias).
struct Epilogue {
  float alpha;
  float beta;         // 0: C is not read
  const float* bias;  // at the block's first column, or null
  int act;
};

// acc (row-major, `ldacc` apart) -> C for an m x n block, any size. Kept out of line: the
// micro-kernel calls it only for the rarer epilogues and must stay small.
__attribute__((noinline)) void epilogueBlock(const float* acc, int64_t ldacc, float* c, int64_t ldc, int64_t m, int64_t n,
                   const Epilogue& e) {
  const vf alpha = vset(e.alpha), beta = vset(e.beta);
  for (int64_t i = 0; i < m; i++) {
    const float* a = acc ? acc + i * ldacc : nullptr;
    float* cr = c + i * ldc;
    for (int64_t j = 0; j < n; j += VW) {
      const int w = static_cast<int>(imin(VW, n - j));
      vf x = a ? vmul(alpha, w == VW ? vld(a + j) : vldN(a + j, w)) : vzero();
      if (e.beta != 0.0f) x = vfma(beta, w == VW ? vld(cr + j) : vldN(cr + j, w), x);
      if (e.bias) x = vadd(x, w == VW ? vld(e.bias + j) : vldN(e.bias + j, w));
      x = applyAct(x, e.act);
      if (w == VW) {
        vst(cr + j, x);
      } else {
        vstN(cr + j, x, w);
      }
    }
  }
}

// Requests the MR x NR block of C at c (the first and last element of each row) into L1.
inline void prefetchBlock(const float* c, int64_t ldc) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }
}

// The micro-kernel on a full MR x NR block of C. A holds MR values per step of k, `aStride` apart
// (MR for a packed sliver; attention passes its score buffer directly).
//
// A caller working through many blocks names what it needs next, so that it arrives while this
// block computes: `nextB`, the next kc / 2 cache lines of packed B (one line into L2 every second
// step of k), and `nextC`, the C block of its next call (one line every few steps). Without
// `nextC`, this block's own C is requested up front.
void microKernel(int64_t kc, const float* __restrict A, int64_t aStride, const float* __restrict B,
                 float* __restrict C, int64_t ldc, const Epilogue& e, const float* nextB = nullptr,
                 const float* nextC = nullptr) {
  if (!nextC) prefetchBlock(C, ldc);
  vf acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[i][v] = vzero();
  }
  auto step = [&]() {
    vf b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) b[v] = vld(B + v * VW);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const vf a = vset(A[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[i][v] = vfma(a, b[v], acc[i][v]);
    }
    A += aStride;
    B += NR;
  };
  int64_t p = 0;
  if (nextB || nextC) {
    // C lines (two per row: its first and last element) go one every `every` pairs of steps.
    const int64_t every = imax(1, kc / (4 * MR));
    int64_t countdown = 0, line = nextC ? 0 : 2 * MR;
    for (; p + 2 <= kc; p += 2) {
      if (nextB) {
        __builtin_prefetch(nextB, 0, 2);
        nextB += 64 / sizeof(float);
      }
      if (line < 2 * MR && --countdown <= 0) {
        __builtin_prefetch(nextC + (line >> 1) * ldc + (line & 1) * (NR - 1), 1, 3);
        line++;
        countdown = every;
      }
      step();
      step();
    }
    for (; line < 2 * MR; line++) __builtin_prefetch(nextC + (line >> 1) * ldc + (line & 1) * (NR - 1), 1, 3);
  }
#pragma GCC unroll 4
  for (; p < kc; p++) step();
  // The common epilogues (a plain product, or a partial sum over k added in, either scaled) stay in
  // registers; the others go through a tile and the general epilogue.
  const bool plain = e.bias == nullptr && e.act == kActNone && (e.beta == 0.0f || e.beta == 1.0f);
  if (!plain) {
    alignas(64) float tile[MR * NR];
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) vst(tile + i * NR + v * VW, acc[i][v]);
    }
    epilogueBlock(tile, NR, C, ldc, MR, NR, e);
    return;
  }
  if (e.alpha != 1.0f) {
    const vf alpha = vset(e.alpha);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[i][v] = vmul(alpha, acc[i][v]);
    }
  }
  if (e.beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) vst(C + i * ldc + v * VW, acc[i][v]);
    }
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) vst(C + i * ldc + v * VW, vadd(vld(C + i * ldc + v * VW), acc[i][v]));
    }
  }
}

// Any block up to MR x NR: the full micro-kernel into a scratch tile, then the epilogue.
void edgeKernel(int64_t kc, const float* A, int64_t aStride, const float* B, float* C, int64_t ldc, int64_t mr,
                int64_t nr, const Epilogue& e) {
  alignas(64) float tile[MR * NR];
  const Epilogue raw{1.0f, 0.0f, nullptr, kActNone};
  microKernel(kc, A, aStride, B, tile, NR, raw);
  epilogueBlock(tile, NR, C, ldc, mr, nr, e);
}

// Packs rows [0, mc) x cols [0, kc) of A (element (i, p) at a[i*rs + p*cs]) into MR-row slivers.
void packA(const float* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mr = static_cast<int>(imin(MR, mc - ir));
    const float* src = a + ir * rs;
    if (rs == 1) {
      // A^T is stored: each step of k is MR contiguous values.
      for (int64_t p = 0; p < kc; p++) {
        const float* sp = src + p * cs;
        float* d = dst + p * MR;
        for (int i = 0; i < MR; i += VW) storeW(d, i, mr > i ? loadW(sp, i, static_cast<int>(imin(VW, mr - i))) : vzero(), static_cast<int>(imin(VW, MR - i)));
      }
    } else if (cs == 1 && MR <= VW) {
      // Rows are contiguous along k: load VW x VW blocks, transpose them in registers.
      for (int64_t p0 = 0; p0 < kc; p0 += VW) {
        const int w = static_cast<int>(imin(VW, kc - p0));
        vf r[VW];
        for (int i = 0; i < VW; i++) r[i] = i < mr ? loadW(src + i * rs, p0, w) : vzero();
        vtranspose(r);
        for (int j = 0; j < w; j++) vstN(dst + (p0 + j) * MR, r[j], MR);
      }
    } else {
      for (int i = 0; i < mr; i++) {
        const float* s = src + i * rs;
        for (int64_t p = 0; p < kc; p++) dst[p * MR + i] = s[p * cs];
      }
      for (int i = mr; i < MR; i++) {
        for (int64_t p = 0; p < kc; p++) dst[p * MR + i] = 0.0f;
      }
    }
    dst += MR * kc;
  }
}

// Packs rows [0, kc) x cols [0, nr) of B (element (p, j) at b[p*rs + j*cs]) into one NR-column panel.
void packBPanel(const float* b, int64_t rs, int64_t cs, int64_t kc, int64_t nr, float* dst) {
  if (cs == 1) {
    for (int64_t p = 0; p < kc; p++) {
      const float* s = b + p * rs;
      float* d = dst + p * NR;
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) {
        const int64_t j = v * VW;
        vst(d + j, nr >= j + VW ? vld(s + j) : nr > j ? vldN(s + j, static_cast<int>(nr - j)) : vzero());
      }
    }
  } else if (rs == 1 && VW > 1) {
    // B^T is stored (a linear layer's weight): transpose VW x VW blocks in registers.
    for (int64_t j0 = 0; j0 < NR; j0 += VW) {
      for (int64_t p0 = 0; p0 < kc; p0 += VW) {
        const int w = static_cast<int>(imin(VW, kc - p0));
        vf r[VW];
        for (int j = 0; j < VW; j++) r[j] = j0 + j < nr ? loadW(b + (j0 + j) * cs, p0, w) : vzero();
        vtranspose(r);
        for (int p = 0; p < w; p++) vst(dst + (p0 + p) * NR + j0, r[p]);
      }
    }
  } else {
    for (int64_t j = 0; j < nr; j++) {
      const float* s = b + j * cs;
      for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = s[p * rs];
    }
    for (int64_t j = nr; j < NR; j++) {
      for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
    }
  }
}

// One GEMM: C (m, n, row stride ldc) = act(alpha * A B + beta * C + bias).
struct GemmJob {
  const float* a;
  int64_t rsA, csA;
  const float* b;
  int64_t rsB, csB;
  float* c;
  int64_t ldc;
  int64_t m, n, k;
  float alpha, beta;
  const float* bias;
  int act;
  const float* packedB;  // or null: packed by the run
};

// Rows [0, kc) of B (row-major, `rs` apart) into the panels [qa, qb) of one block (panel q at
// dst + q * kc * NR): row by row across the panels, so that B is read in long contiguous runs.
void packBRows(const float* b, int64_t rs, int64_t n, int64_t kc, int64_t qa, int64_t qb, float* dst) {
  for (int64_t p = 0; p < kc; p++) {
    const float* s = b + p * rs;
    for (int64_t q = qa; q < qb; q++) {
      const int64_t j = q * NR, nr = imin(NR, n - j);
      float* d = dst + q * kc * NR + p * NR;
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) {
        const int64_t jv = j + v * VW;
        vst(d + v * VW, nr >= (v + 1) * VW ? vld(s + jv) : nr > v * VW ? vldN(s + jv, static_cast<int>(nr - v * VW)) : vzero());
      }
    }
  }
}

// Rows of B per block of k for a depth of k: at most KC, the blocks of equal size (to a multiple of
// 8), so that no block is a short remainder. packB and gemmTile agree on it through k alone.
inline int64_t kcFor(int64_t k) { return k > 0 ? imin(KC, roundUp(ceilDiv(k, ceilDiv(k, KC)), 8)) : KC; }

// The whole of B packed: for each block of kcFor(k) rows (pc), its NR-column panels, each [kc][NR].
// Packed by chunks of panels in parallel.
void packB(const GemmJob& g, float* dst, int threads) {
  const int64_t panels = ceilDiv(g.n, NR);
  const int64_t kb = kcFor(g.k);
  const int64_t blocks = ceilDiv(g.k, kb);
  parallelFor(threads, blocks * panels, 8, [&](int64_t t0, int64_t t1) {
    if (g.csB == 1) {
      // The chunk's panels of each block it touches, row by row.
      for (int64_t t = t0; t < t1;) {
        const int64_t pc = (t / panels) * kb, qa = t % panels, qb = imin(panels, qa + t1 - t);
        packBRows(g.b + pc * g.rsB, g.rsB, g.n, imin(kb, g.k - pc), qa, qb, dst + pc * panels * NR);
        t += qb - qa;
      }
      return;
    }
    for (int64_t t = t0; t < t1; t++) {
      const int64_t pc = (t / panels) * kb, q = t % panels;
      const int64_t kc = imin(kb, g.k - pc);
      packBPanel(g.b + pc * g.rsB + q * NR * g.csB, g.rsB, g.csB, kc, imin(NR, g.n - q * NR),
                 dst + pc * panels * NR + q * kc * NR);
    }
  });
}

// The C tiles that threads claim: rows cut into `rowTiles` runs of whole MR slivers, columns into
// `colTiles` runs of whole NR panels.
struct Tiling {
  int64_t rowTiles, colTiles, slivers, panels;
};

// Below this many flops per thread, waking another thread costs more than it saves.
constexpr double kFlopsPerThread = 2e6;
// Slivers of A per tile, at least, where there are rows enough: each B panel brought into L1 then
// serves several slivers.
constexpr int64_t kTileSlivers = 4;

Tiling tilingFor(const GemmJob& g, int threads) {
  Tiling t;
  t.slivers = ceilDiv(g.m, MR);
  t.panels = ceilDiv(g.n, NR);
  // Enough tiles for the threads to balance (a tile is claimed whole, and on a loaded machine one
  // thread may get much less time than another). Rows are cut first: B is packed once for all tiles,
  // while every tile packs its own rows of A (once per block of k), so a cut across the columns
  // packs the same rows twice. Columns are cut only when the rows alone give too few tiles.
  const int64_t wanted = threads > 1 ? 4 * threads : 1;
  t.rowTiles = imin(t.slivers, imax(ceilDiv(g.m, MC), imin(wanted, t.slivers / kTileSlivers)));
  t.colTiles = imin(t.panels, ceilDiv(wanted, t.rowTiles));
  return t;
}

// C tile `tile` of one GEMM, with B already packed by packB (as a whole it lives in L3 or memory).
// For each block of k, the tile's rows of A are packed (they stay in L2), then each B panel
// (kc x NR) meets every sliver of A in turn, while the micro-kernel pulls in the next panel and the
// next block of C.
void gemmTile(const GemmJob& g, const float* packedB, const Tiling& t, int64_t tile) {
  const int64_t ti = tile % t.rowTiles, tj = tile / t.rowTiles;
  const int64_t row0 = imin(g.m, (t.slivers * ti / t.rowTiles) * MR);
  const int64_t row1 = imin(g.m, (t.slivers * (ti + 1) / t.rowTiles) * MR);
  const int64_t q0 = t.panels * tj / t.colTiles, q1 = t.panels * (tj + 1) / t.colTiles;
  const int64_t mc = row1 - row0;
  if (mc <= 0 || q1 <= q0) return;
  const int64_t kb = kcFor(g.k);
  float* packedA = scratch(kPackA, roundUp(mc, MR) * imin(kb, g.k));
  for (int64_t pc = 0; pc < g.k; pc += kb) {
    const int64_t kc = imin(kb, g.k - pc);
    const bool last = pc + kc >= g.k;
    Epilogue e{g.alpha, pc == 0 ? g.beta : 1.0f, nullptr, last ? g.act : kActNone};
    packA(g.a + row0 * g.rsA + pc * g.csA, g.rsA, g.csA, mc, kc, packedA);
    const float* block = packedB + pc * t.panels * NR;  // this block's panels, kc x NR each
    // What follows the tile's last panel: the first panel of the next block (kcNext x NR).
    const int64_t kcNext = last ? 0 : imin(kb, g.k - pc - kc);
    const float* nextBlock = last ? nullptr : packedB + (pc + kc) * t.panels * NR + q0 * kcNext * NR;
    const int64_t perCall = (kc / 2) * (64 / sizeof(float));  // floats of B one call prefetches
    for (int64_t q = q0; q < q1; q++) {
      const int64_t j0 = q * NR;
      const int64_t nr = imin(NR, g.n - j0);
      e.bias = last && g.bias ? g.bias + j0 : nullptr;
      const float* bp = block + q * kc * NR;
      const float* next = q + 1 < q1 ? bp + kc * NR : nextBlock;
      const int64_t nextSize = q + 1 < q1 ? kc * NR : kcNext * NR;
      for (int64_t ir = 0, s = 0; ir < mc; ir += MR, s++) {
        const int64_t mr = imin(MR, mc - ir);
        float* cp = g.c + (row0 + ir) * g.ldc + j0;
        if (mr == MR && nr == NR) {
          // The slivers share the prefetching of the next panel, a kc / 2 lines each.
          const float* nb = next && s * perCall < nextSize ? next + s * perCall : nullptr;
          // The next call's C: the next sliver down, or the top of the next panel.
          const float* nc = ir + MR < mc ? cp + MR * g.ldc : q + 1 < q1 ? g.c + row0 * g.ldc + j0 + NR : nullptr;
          if (ir == 0 && q == q0) prefetchBlock(cp, g.ldc);
          microKernel(kc, packedA + ir * kc, MR, bp, cp, g.ldc, e, nb, nc);
        } else {
          edgeKernel(kc, packedA + ir * kc, MR, bp, cp, g.ldc, mr, nr, e);
        }
      }
    }
  }
}

// One GEMM on up to `threads` threads: pack B, then claim tiles of C.
void gemmRun(const GemmJob& g, int threads, int slot) {
  if (g.k == 0) {
    const Epilogue e{g.alpha, g.beta, g.bias, g.act};
    parallelFor(threads, g.m, imax(1, 4096 / imax(g.n, 1)), [&](int64_t r0, int64_t r1) {
      epilogueBlock(nullptr, 0, g.c + r0 * g.ldc, g.ldc, r1 - r0, g.n, e);
    });
    return;
  }
  const Tiling t = tilingFor(g, threads);
  const float* packedB = g.packedB;
  if (!packedB) {
    float* buffer = scratch(slot, g.k * t.panels * NR);
    packB(g, buffer, threads);
    packedB = buffer;
  }
  parallelFor(threads, t.rowTiles * t.colTiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t tile = t0; tile < t1; tile++) gemmTile(g, packedB, t, tile);
  });
}

void gemmSingle(const GemmJob& g) { gemmRun(g, 1, kPackB); }

GemmJob jobFor(const GemmParams& p, int64_t bi) {
  GemmJob g;
  g.a = p.a + bi * p.strideA;
  g.rsA = p.transA ? 1 : p.k;
  g.csA = p.transA ? p.m : 1;
  g.b = p.b + bi * p.strideB;
  g.rsB = p.transB ? 1 : p.n;
  g.csB = p.transB ? p.k : 1;
  g.c = p.c + bi * p.strideC;
  g.ldc = p.n;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.alpha = p.alpha;
  g.beta = p.beta;
  g.bias = p.bias;
  g.act = p.act;
  g.packedB = p.packedB;
  return g;
}

int64_t packedBSize(int64_t k, int64_t n) { return k * ceilDiv(n, NR) * NR; }

void packWholeB(const float* b, int64_t k, int64_t n, bool transB, float* dst, int threads) {
  GemmJob g{};
  g.b = b;
  g.rsB = transB ? 1 : n;
  g.csB = transB ? k : 1;
  g.n = n;
  g.k = k;
  packB(g, dst, threads);
}

void gemm(const GemmParams& p, int threads) {
  if (p.batch <= 0 || p.m <= 0 || p.n <= 0) return;
  const double flops = 2.0 * p.m * p.n * (p.k > 0 ? p.k : 1);
  const int useful = static_cast<int>(imax(1, imin(threads, static_cast<int64_t>(flops * p.batch / kFlopsPerThread))));
  // Many small GEMMs (attention's per-head products): whole GEMMs per thread.
  if (p.batch >= 4 * useful || (p.batch >= useful && flops < kFlopsPerThread * useful)) {
    parallelFor(useful, p.batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; bi++) gemmSingle(jobFor(p, bi));
    });
    return;
  }
  const int team = static_cast<int>(imax(1, imin(threads, static_cast<int64_t>(flops / kFlopsPerThread))));
  for (int64_t bi = 0; bi < p.batch; bi++) gemmRun(jobFor(p, bi), team, kSharedB);
}

// ---------------------------------------------------------------------------------------------
// Elementwise maps.

constexpr int64_t kElementGrain = 1 << 15;  // elements per thread before splitting pays

// y[i] = f(x[i]) with f on vectors.
template <class F>
void mapV(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + VW <= n; i += VW) vst(y + i, f(vld(x + i)));
  if (i < n) vstN(y + i, f(vldN(x + i, static_cast<int>(n - i))), static_cast<int>(n - i));
}

// y[i] = f(x[i]) with f on scalars (the transcendental functions of <cmath> not worth vectorising).
template <class F>
void mapS(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
}

void unaryRange(int op, const float* x, float* y, int64_t n) {
  switch (op) {
    case kNeg: return mapV(x, y, n, [](vf v) { return vneg(v); });
    case kExp: return mapV(x, y, n, [](vf v) { return vexp(v); });
    case kLog: return mapS(x, y, n, [](float v) { return std::log(v); });
    case kSqrt: return mapV(x, y, n, [](vf v) { return vsqrt(v); });
    case kRsqrt: return mapV(x, y, n, [](vf v) { return vdiv(vset(1.0f), vsqrt(v)); });
    case kAbs: return mapV(x, y, n, [](vf v) { return vabs(v); });
    case kSign: return mapS(x, y, n, [](float v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : v; });
    case kTanh: return mapV(x, y, n, [](vf v) { return vtanh(v); });
    case kErf: return mapV(x, y, n, [](vf v) { return verf(v); });
    case kRelu: return mapV(x, y, n, [](vf v) { return vrelu(v); });
    case kGelu: return mapV(x, y, n, [](vf v) { return vgelu(v); });
    case kGeluTanh: return mapV(x, y, n, [](vf v) { return vgeluTanh(v); });
    case kSilu: return mapV(x, y, n, [](vf v) { return vmul(v, vsigmoid(v)); });
    case kSigmoid: return mapV(x, y, n, [](vf v) { return vsigmoid(v); });
    case kSin: return mapS(x, y, n, [](float v) { return std::sin(v); });
    case kCos: return mapS(x, y, n, [](float v) { return std::cos(v); });
    case kFloor: return mapS(x, y, n, [](float v) { return std::floor(v); });
    case kCeil: return mapS(x, y, n, [](float v) { return std::ceil(v); });
    // Half to even, as torch.
    case kRound: return mapS(x, y, n, [](float v) { return std::nearbyint(v); });
    case kReciprocal: return mapV(x, y, n, [](vf v) { return vdiv(vset(1.0f), v); });
    case kSquare: return mapV(x, y, n, [](vf v) { return vmul(v, v); });
    case kLog1p: return mapS(x, y, n, [](float v) { return std::log1p(v); });
    case kExpm1: return mapS(x, y, n, [](float v) { return std::expm1(v); });
    // torch's softplus (beta 1, threshold 20).
    case kSoftplus: return mapS(x, y, n, [](float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); });
  }
}

void unary(int op, const float* x, float* y, int64_t n, int threads) {
  parallelFor(threads, n, kElementGrain, [&](int64_t b, int64_t e) { unaryRange(op, x + b, y + b, e - b); });
}

// out[i] = f(x[i], y[i], dy[i]) on vectors.
template <class F>
void mapGrad(const float* x, const float* y, const float* dy, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + VW <= n; i += VW) vst(out + i, f(vld(x + i), vld(y + i), vld(dy + i)));
  if (i < n) {
    const int w = static_cast<int>(n - i);
    vstN(out + i, f(vldN(x + i, w), vldN(y + i, w), vldN(dy + i, w)), w);
  }
}

void unaryGradRange(int op, const float* x, const float* y, const float* dy, float* out, int64_t n) {
  const vf one = vset(1.0f), half = vset(0.5f);
  switch (op) {
    case kTanh:
      return mapGrad(x, y, dy, out, n, [&](vf, vf yv, vf g) { return vmul(g, vfnma(yv, yv, one)); });
    case kSigmoid:
      return mapGrad(x, y, dy, out, n, [&](vf, vf yv, vf g) { return vmul(vmul(g, yv), vsub(one, yv)); });
    case kRelu:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) { return vsel(vgt(xv, vzero()), g, vzero()); });
    case kErf:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) {
        return vmul(g, vmul(vset(1.12837916709551257f), vexp(vneg(vmul(xv, xv)))));
      });
    case kSoftplus:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) {
        return vsel(vgt(xv, vset(20.0f)), g, vdiv(g, vadd(one, vexp(vneg(xv)))));
      });
    case kSilu:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) {
        const vf s = vsigmoid(xv);
        return vmul(vmul(g, s), vfma(xv, vsub(one, s), one));
      });
    case kGelu:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) {
        const vf cdf = vmul(half, vonePlusErf(vmul(xv, vset(0.70710678118654752f))));
        const vf pdf = vmul(vset(0.39894228040143268f), vexp(vmul(vset(-0.5f), vmul(xv, xv))));
        return vmul(g, vfma(xv, pdf, cdf));
      });
    case kGeluTanh:
      return mapGrad(x, y, dy, out, n, [&](vf xv, vf, vf g) {
        const vf c = vset(0.79788456080286536f);
        const vf x2 = vmul(xv, xv);
        const vf t = vtanh(vmul(c, vfma(vmul(vset(0.044715f), x2), xv, xv)));
        const vf dInner = vmul(c, vfma(vset(3.0f * 0.044715f), x2, one));
        const vf a = vmul(half, vadd(one, t));
        const vf b = vmul(vmul(vmul(half, xv), vfnma(t, t, one)), dInner);
        return vmul(g, vadd(a, b));
      });
  }
}

void unaryGrad(int op, const float* x, const float* y, const float* dy, float* out, int64_t n, int threads) {
  parallelFor(threads, n, kElementGrain,
              [&](int64_t b, int64_t e) { unaryGradRange(op, x + b, y + b, dy + b, out + b, e - b); });
}

// ---------------------------------------------------------------------------------------------
// Binary ops with broadcast strides.

template <int OP>
constexpr bool kVectorBinary = OP == kAdd || OP == kSub || OP == kMul || OP == kDiv || OP == kMaximum || OP == kMinimum;

// maximum/minimum return NaN when either side is NaN (vmaxKeepNan already keeps a NaN b).
template <int OP>
inline vf binaryV(vf a, vf b) {
  if constexpr (OP == kAdd) return vadd(a, b);
  if constexpr (OP == kSub) return vsub(a, b);
  if constexpr (OP == kMul) return vmul(a, b);
  if constexpr (OP == kDiv) return vdiv(a, b);
  if constexpr (OP == kMaximum) return vsel(visnan(a), a, vmaxKeepNan(a, b));
  if constexpr (OP == kMinimum) return vsel(visnan(a), a, vminKeepNan(a, b));
  return a;
}

// The others in double, as the js kernel computes them (float `mod` would round a / b first).
template <int OP>
inline float binaryS(float a, float b) {
  if constexpr (OP == kAdd) {
    return a + b;
  } else if constexpr (OP == kSub) {
    return a - b;
  } else if constexpr (OP == kMul) {
    return a * b;
  } else if constexpr (OP == kDiv) {
    return a / b;
  } else if constexpr (OP == kMaximum) {
    return a != a || b != b ? NAN : (a > b ? a : b);
  } else if constexpr (OP == kMinimum) {
    return a != a || b != b ? NAN : (a < b ? a : b);
  } else if constexpr (OP == kPow) {
    return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  } else if constexpr (OP == kAtan2) {
    return static_cast<float>(std::atan2(static_cast<double>(a), static_cast<double>(b)));
  } else {
    const double da = a, db = b;
    return static_cast<float>(da - std::floor(da / db) * db);
  }
}

// out[j] = a[j * sa] op b[j * sb] for j < n.
template <int OP>
void binaryRow(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if constexpr (kVectorBinary<OP>) {
    if ((sa == 1 || sa == 0) && (sb == 1 || sb == 0)) {
      const vf as = vset(*a), bs = vset(*b);
      int64_t j = 0;
      for (; j + VW <= n; j += VW) {
        vst(out + j, binaryV<OP>(sa ? vld(a + j) : as, sb ? vld(b + j) : bs));
      }
      if (j < n) {
        const int w = static_cast<int>(n - j);
        vstN(out + j, binaryV<OP>(sa ? vldN(a + j, w) : as, sb ? vldN(b + j, w) : bs), w);
      }
      return;
    }
  }
  for (int64_t j = 0; j < n; j++) out[j] = binaryS<OP>(a[j * sa], b[j * sb]);
}

// Merges adjacent dims that are contiguous for every operand and drops size-1 dims; returns the new
// rank. `strides` holds `count` stride arrays.
int coalesce(int64_t* shape, int64_t** strides, int count, int ndim) {
  int out = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    bool merge = out > 0;
    for (int s = 0; s < count && merge; s++) merge = strides[s][out - 1] == strides[s][d] * shape[d];
    if (merge) {
      shape[out - 1] *= shape[d];
      for (int s = 0; s < count; s++) strides[s][out - 1] = strides[s][d];
    } else {
      shape[out] = shape[d];
      for (int s = 0; s < count; s++) strides[s][out] = strides[s][d];
      out++;
    }
  }
  return out;
}

constexpr int kMaxDims = 16;

// Visits rows [r0, r1) of an (outer..., inner) iteration space, calling f(offsets, row) with the
// offsets of COUNT strided operands kept by an odometer over all dims but the last.
template <int COUNT, class F>
void forRows(const int64_t* shape, int64_t* const* strides, int ndim, int64_t r0, int64_t r1, F f) {
  int64_t idx[kMaxDims] = {};
  int64_t off[COUNT] = {};
  int64_t rem = r0;
  for (int d = ndim - 2; d >= 0; d--) {
    idx[d] = rem % shape[d];
    rem /= shape[d];
    for (int s = 0; s < COUNT; s++) off[s] += idx[d] * strides[s][d];
  }
  for (int64_t r = r0; r < r1; r++) {
    f(off, r);
    for (int d = ndim - 2; d >= 0; d--) {
      for (int s = 0; s < COUNT; s++) off[s] += strides[s][d];
      if (++idx[d] < shape[d]) break;
      for (int s = 0; s < COUNT; s++) off[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
}

template <int OP>
void binaryRun(const float* a, const int64_t* aStrides, const float* b, const int64_t* bStrides, float* out,
               const int64_t* shapeIn, int ndim, int threads) {
  int64_t shape[kMaxDims], sa[kMaxDims], sb[kMaxDims], so[kMaxDims];
  int64_t total = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    shape[d] = shapeIn[d];
    sa[d] = aStrides[d];
    sb[d] = bStrides[d];
    so[d] = total;
    total *= shape[d];
  }
  if (total == 0) return;
  int64_t* strides[3] = {sa, sb, so};
  const int nd = coalesce(shape, strides, 3, ndim);
  if (nd == 0) {
    out[0] = binaryS<OP>(a[0], b[0]);
    return;
  }
  const int64_t inner = shape[nd - 1];
  parallelFor(threads, total / inner, imax(1, kElementGrain / inner), [&](int64_t r0, int64_t r1) {
    forRows<2>(shape, strides, nd, r0, r1, [&](const int64_t* off, int64_t r) {
      binaryRow<OP>(a + off[0], sa[nd - 1], b + off[1], sb[nd - 1], out + r * inner, inner);
    });
  });
}

void binary(int op, const float* a, const int64_t* aStrides, const float* b, const int64_t* bStrides, float* out,
            const int64_t* shape, int ndim, int threads) {
  switch (op) {
    case kAdd: return binaryRun<kAdd>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kSub: return binaryRun<kSub>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kMul: return binaryRun<kMul>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kDiv: return binaryRun<kDiv>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kPow: return binaryRun<kPow>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kMaximum: return binaryRun<kMaximum>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kMinimum: return binaryRun<kMinimum>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kAtan2: return binaryRun<kAtan2>(a, aStrides, b, bStrides, out, shape, ndim, threads);
    case kMod: return binaryRun<kMod>(a, aStrides, b, bStrides, out, shape, ndim, threads);
  }
}

// ---------------------------------------------------------------------------------------------
// Strided copies (permute, slice, expand, concat, pad) and their accumulating adjoints.

void copyStrided(const float* src, const int64_t* srcStrides, const int64_t* shapeIn, int ndim, float* dst,
                 const int64_t* dstStrides, bool accumulate, int threads) {
  int64_t shape[kMaxDims], ss[kMaxDims], ds[kMaxDims];
  int64_t total = 1;
  bool dstRepeats = false;
  for (int d = 0; d < ndim; d++) {
    shape[d] = shapeIn[d];
    ss[d] = srcStrides[d];
    ds[d] = dstStrides[d];
    total *= shape[d];
    if (ds[d] == 0 && shape[d] > 1) dstRepeats = true;
  }
  if (total == 0) return;
  int64_t* strides[2] = {ss, ds};
  const int nd = coalesce(shape, strides, 2, ndim);
  if (nd == 0) {
    dst[0] = accumulate ? dst[0] + src[0] : src[0];
    return;
  }
  const int64_t inner = shape[nd - 1];
  const int64_t s = ss[nd - 1], t = ds[nd - 1];
  // Repeated destinations (the adjoint of a broadcast) are summed by one thread, in order.
  const int useThreads = dstRepeats ? 1 : threads;
  parallelFor(useThreads, total / inner, imax(1, kElementGrain / inner), [&](int64_t r0, int64_t r1) {
    forRows<2>(shape, strides, nd, r0, r1, [&](const int64_t* off, int64_t) {
      const float* sp = src + off[0];
      float* dp = dst + off[1];
      if (accumulate) {
        if (s == 1 && t == 1) {
          binaryRow<kAdd>(dp, 1, sp, 1, dp, inner);
        } else {
          for (int64_t j = 0; j < inner; j++) dp[j * t] += sp[j * s];
        }
      } else if (s == 1 && t == 1) {
        std::memcpy(dp, sp, static_cast<size_t>(inner) * sizeof(float));
      } else {
        for (int64_t j = 0; j < inner; j++) dp[j * t] = sp[j * s];
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Row-wise softmax and layer norm.

constexpr int64_t kRowGrain = 1 << 14;  // elements per thread


float rowMax(const float* x, int64_t n) {
  vf m = vset(-INFINITY);
  int64_t j = 0;
  for (; j + VW <= n; j += VW) m = vmaxKeepNan(m, vld(x + j));
  float r = vhmax(m);
  for (; j < n; j++) r = x[j] > r ? x[j] : r;
  return r;
}

void softmaxRow(const float* xr, int64_t cols, float* yr, bool log) {
  float max = rowMax(xr, cols);
  // A fully masked row: exp(-inf - 0) = 0, then 0/0 = NaN as torch.
  if (max == -INFINITY) max = 0.0f;
  const vf mv = vset(max);
  vf sum = vzero();
  for (int64_t j = 0; j < cols; j += VW) {
    const int w = static_cast<int>(imin(VW, cols - j));
    const vf e = vexp(vsub(loadW(xr, j, w), mv));
    sum = vadd(sum, vkeepN(e, w));
    if (!log) storeW(yr, j, e, w);
  }
  const float s = vhsum(sum);
  if (log) {
    const vf lse = vset(max + std::log(s));
    mapV(xr, yr, cols, [&](vf v) { return vsub(v, lse); });
  } else {
    const vf inv = vset(1.0f / s);
    mapV(yr, yr, cols, [&](vf v) { return vmul(v, inv); });
  }
}

void softmax(const float* x, int64_t rows, int64_t cols, float* out, bool log, int threads) {
  parallelFor(threads, rows, imax(1, kRowGrain / imax(cols, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) softmaxRow(x + r * cols, cols, out + r * cols, log);
  });
}

void layerNorm(const float* x, int64_t rows, int64_t cols, const float* weight, const float* bias, float eps,
               float* out, float* mean, float* rstd, int threads) {
  parallelFor(threads, rows, imax(1, kRowGrain / imax(cols, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      vf acc = vzero();
      for (int64_t j = 0; j < cols; j += VW) acc = vadd(acc, loadW(xr, j, static_cast<int>(imin(VW, cols - j))));
      const float mu = vhsum(acc) / static_cast<float>(cols);
      const vf muv = vset(mu);
      acc = vzero();
      for (int64_t j = 0; j < cols; j += VW) {
        const int w = static_cast<int>(imin(VW, cols - j));
        const vf d = vkeepN(vsub(loadW(xr, j, w), muv), w);
        acc = vfma(d, d, acc);
      }
      const float rs = 1.0f / std::sqrt(vhsum(acc) / static_cast<float>(cols) + eps);
      mean[r] = mu;
      rstd[r] = rs;
      const vf rsv = vset(rs);
      for (int64_t j = 0; j < cols; j += VW) {
        const int w = static_cast<int>(imin(VW, cols - j));
        vf y = vmul(vsub(loadW(xr, j, w), muv), rsv);
        if (weight) y = vmul(y, loadW(weight, j, w));
        if (bias) y = vadd(y, loadW(bias, j, w));
        storeW(yr, j, y, w);
      }
    }
  });
}

// Rows [r0, r1) of the layer-norm backward; gw/gb (when given) accumulate this range's sums.
void layerNormBackwardRows(const float* x, const float* gy, int64_t r0, int64_t r1, int64_t cols,
                           const float* weight, const float* mean, const float* rstd, float* gx, float* gw,
                           float* gb) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    const float* gr = gy + r * cols;
    const vf mu = vset(mean[r]), rs = vset(rstd[r]);
    vf sumG = vzero(), sumGX = vzero();
    for (int64_t j = 0; j < cols; j += VW) {
      const int w = static_cast<int>(imin(VW, cols - j));
      const vf xhat = vkeepN(vmul(vsub(loadW(xr, j, w), mu), rs), w);
      const vf gyv = loadW(gr, j, w);
      const vf g = weight ? vmul(gyv, loadW(weight, j, w)) : gyv;
      sumG = vadd(sumG, g);
      sumGX = vfma(g, xhat, sumGX);
      if (gw) storeW(gw, j, vfma(gyv, xhat, loadW(gw, j, w)), w);
      if (gb) storeW(gb, j, vadd(gyv, loadW(gb, j, w)), w);
    }
    const vf mG = vset(vhsum(sumG) / static_cast<float>(cols));
    const vf mGX = vset(vhsum(sumGX) / static_cast<float>(cols));
    float* gxr = gx + r * cols;
    for (int64_t j = 0; j < cols; j += VW) {
      const int w = static_cast<int>(imin(VW, cols - j));
      const vf xhat = vmul(vsub(loadW(xr, j, w), mu), rs);
      const vf g = weight ? vmul(loadW(gr, j, w), loadW(weight, j, w)) : loadW(gr, j, w);
      storeW(gxr, j, vmul(rs, vfnma(xhat, mGX, vsub(g, mG))), w);
    }
  }
}

void layerNormBackward(const float* x, const float* gy, int64_t rows, int64_t cols, const float* weight,
                       const float* mean, const float* rstd, float* gx, float* gw, float* gb, int threads) {
  const int64_t t = imax(1, imin(threads, rows * cols / kRowGrain));
  if (t <= 1) {
    layerNormBackwardRows(x, gy, 0, rows, cols, weight, mean, rstd, gx, gw, gb);
    return;
  }
  // Each thread sums its rows' weight and bias gradients privately; they are added in thread order.
  float* partial = scratch(kPartial, 2 * t * cols);
  std::memset(partial, 0, static_cast<size_t>(2 * t * cols) * sizeof(float));
  parallelForTid(static_cast<int>(t), rows, imax(1, kRowGrain / imax(cols, 1)), [&](int64_t r0, int64_t r1, int tid) {
    layerNormBackwardRows(x, gy, r0, r1, cols, weight, mean, rstd, gx, gw ? partial + 2 * tid * cols : nullptr,
                          gb ? partial + (2 * tid + 1) * cols : nullptr);
  });
  for (int64_t i = 0; i < t; i++) {
    if (gw) binaryRow<kAdd>(gw, 1, partial + 2 * i * cols, 1, gw, cols);
    if (gb) binaryRow<kAdd>(gb, 1, partial + (2 * i + 1) * cols, 1, gb, cols);
  }
}

// ---------------------------------------------------------------------------------------------
// Reductions over the middle axis of (outer, n, inner). Sums and products accumulate in double, as
// the js kernel does; max/min are NaN when the slice holds a NaN.

constexpr int64_t kInnerChunk = 256;

void reduceChunk(int op, const float* x, int64_t n, int64_t inner, int64_t i0, int64_t i1, float* out) {
  const int64_t w = i1 - i0;
  if (op == kSum || op == kProd) {
    double acc[kInnerChunk];
    if (inner == 1 && op == kSum) {
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t k = 0;
      for (; k + 4 <= n; k += 4) {
        a0 += x[k];
        a1 += x[k + 1];
        a2 += x[k + 2];
        a3 += x[k + 3];
      }
      for (; k < n; k++) a0 += x[k];
      out[0] = static_cast<float>((a0 + a1) + (a2 + a3));
      return;
    }
    for (int64_t i = 0; i < w; i++) acc[i] = op == kSum ? 0.0 : 1.0;
    for (int64_t k = 0; k < n; k++) {
      const float* row = x + k * inner + i0;
      if (op == kSum) {
        for (int64_t i = 0; i < w; i++) acc[i] += row[i];
      } else {
        for (int64_t i = 0; i < w; i++) acc[i] *= row[i];
      }
    }
    for (int64_t i = 0; i < w; i++) out[i0 + i] = static_cast<float>(acc[i]);
    return;
  }
  const bool isMax = op == kMax;
  float best[kInnerChunk];
  bool nan[kInnerChunk];
  for (int64_t i = 0; i < w; i++) {
    best[i] = isMax ? -INFINITY : INFINITY;
    nan[i] = false;
  }
  for (int64_t k = 0; k < n; k++) {
    const float* row = x + k * inner + i0;
    for (int64_t i = 0; i < w; i++) {
      const float v = row[i];
      best[i] = (isMax ? v > best[i] : v < best[i]) ? v : best[i];
      nan[i] = nan[i] || v != v;
    }
  }
  for (int64_t i = 0; i < w; i++) out[i0 + i] = nan[i] ? NAN : best[i];
}

void reduce(int op, const float* x, int64_t outer, int64_t n, int64_t inner, float* out, int threads) {
  const int64_t chunks = ceilDiv(inner, kInnerChunk);
  const int64_t perTask = n * imin(inner, kInnerChunk);
  parallelFor(threads, outer * chunks, imax(1, kElementGrain / imax(perTask, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / chunks, c = t % chunks;
      const int64_t i0 = c * kInnerChunk, i1 = imin(inner, i0 + kInnerChunk);
      reduceChunk(op, x + o * n * inner, n, inner, i0, i1, out + o * inner);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Fused scaled-dot-product attention: tiled online softmax.
//
// A task is one block of kAttnBq queries of one (batch, head). The thread packs that head's K as
// micro-kernel A slivers and V as B panels once (they stay packed while it works through the head's
// query blocks), then for each block of kAttnBk keys computes the transposed scores S^T = K Q^T
// (keys x queries), so that the softmax statistics of every query are vector lanes and P^T can feed
// the P V product directly as the micro-kernel's A operand. The running max m and sum l per query
// rescale the partial output when a later block raises the max. Memory is O(N) per thread.

constexpr int64_t kAttnBq = 2 * NR;
constexpr int64_t kAttnBk = MR * (256 / MR);


struct AttnScratch {
  float* kp;      // K of the current head as A slivers: roundUp(nk, MR) x d
  float* vp;      // V of the current head as B panels: roundUp(dv, NR) / NR panels of nk x NR
  float* st;      // S^T then P^T of one key block: kAttnBk x ldS
  float* o;       // partial output: roundUp(bq, MR) x roundUp(dv, NR)
  float* qp;      // Q^T of the query block as B panels: roundUp(bq, NR) / NR panels of d x NR
  float* stats;   // m, l, factor (ldS each), then block maxima when probabilities are written
  int64_t ldS, ldO;
};

void packHead(const AttentionParams& p, int64_t bh, const AttnScratch& w) {
  packA(p.k + bh * p.nk * p.d, p.d, 1, p.nk, p.d, w.kp);
  const float* v = p.v + bh * p.nk * p.dv;
  for (int64_t q = 0; q < ceilDiv(p.dv, NR); q++) {
    packBPanel(v + q * NR, p.dv, 1, p.nk, imin(NR, p.dv - q * NR), w.vp + q * p.nk * NR);
  }
}

void attentionBlock(const AttentionParams& p, int64_t bh, int64_t i0, const AttnScratch& w) {
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int64_t bq = imin(kAttnBq, p.nq - i0);
  const int64_t ldS = w.ldS, ldO = w.ldO;
  const int64_t qPanels = ceilDiv(bq, NR), qSlivers = ceilDiv(bq, MR), vPanels = ceilDiv(p.dv, NR);
  const float* q = p.q + (bh * p.nq + i0) * p.d;
  for (int64_t j = 0; j < qPanels; j++) {
    packBPanel(q + j * NR * p.d, 1, p.d, p.d, imin(NR, bq - j * NR), w.qp + j * p.d * NR);
  }
  float* m = w.stats;
  float* l = m + ldS;
  float* factor = l + ldS;
  float* blockMax = factor + ldS;
  for (int64_t i = 0; i < ldS; i++) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  // Causal: keys beyond the block's last query are masked for all of its queries.
  const int64_t nkLive = p.causal ? imin(p.nk, i0 + bq) : p.nk;
  const float* mask = p.mask ? p.mask + b * p.maskStride[0] + h * p.maskStride[1] + i0 * p.maskStride[2] : nullptr;
  const Epilogue scoreEpi{p.scale, 0.0f, nullptr, kActNone};
  float* probs = p.probs ? p.probs + (bh * p.nq + i0) * p.nk : nullptr;
  int64_t blocks = 0;
  for (int64_t kb0 = 0; kb0 < nkLive; kb0 += kAttnBk, blocks++) {
    const int64_t bk = imin(kAttnBk, nkLive - kb0);
    // S^T (bk x bq) = scale * K_block Q^T
    for (int64_t s = 0; s < ceilDiv(bk, MR); s++) {
      for (int64_t j = 0; j < qPanels; j++) {
        microKernel(p.d, w.kp + (kb0 + s * MR) * p.d, MR, w.qp + j * p.d * NR, w.st + s * MR * ldS + j * NR, ldS,
                    scoreEpi);
      }
    }
    if (mask) {
      for (int64_t r = 0; r < bk; r++) {
        float* row = w.st + r * ldS;
        if (p.maskStride[2] == 0) {
          binaryRow<kAdd>(row, 1, mask + kb0 + r, 0, row, bq);
        } else {
          for (int64_t i = 0; i < bq; i++) row[i] += mask[i * p.maskStride[2] + kb0 + r];
        }
      }
    }
    if (p.causal) {
      for (int64_t r = 0; r < bk; r++) {
        float* row = w.st + r * ldS;
        for (int64_t i = 0; i < imin(bq, kb0 + r - i0); i++) row[i] = -INFINITY;
      }
    }
    // Online softmax over this block, VW queries at a time.
    bool rescale = false;
    for (int64_t i = 0; i < bq; i += VW) {
      vf bmax = vset(-INFINITY);
      for (int64_t r = 0; r < bk; r++) bmax = vmaxKeepNan(bmax, vld(w.st + r * ldS + i));
      const vf mOld = vld(m + i);
      const vf mNew = vmaxKeepNan(mOld, bmax);
      // All keys masked so far: subtract 0 instead of -inf so that exp gives 0, not NaN.
      const vf mSafe = vsel(vgt(mNew, vset(-INFINITY)), mNew, vzero());
      const vf f = vexp(vsub(mOld, mSafe));
      vf sum = vzero();
      for (int64_t r = 0; r < bk; r++) {
        float* sp = w.st + r * ldS + i;
        const vf e = vexp(vsub(vld(sp), mSafe));
        vst(sp, e);
        sum = vadd(sum, e);
      }
      vst(l + i, vfma(vld(l + i), f, sum));
      vst(m + i, mNew);
      vst(factor + i, f);
      if (probs) vst(blockMax + blocks * ldS + i, mSafe);
      if (kb0 > 0) rescale = true;
    }
    if (rescale) {
      for (int64_t i = 0; i < bq; i++) {
        if (factor[i] != 1.0f) binaryRow<kMul>(w.o + i * ldO, 1, factor + i, 0, w.o + i * ldO, p.dv);
      }
    }
    if (probs) {
      for (int64_t r = 0; r < bk; r++) {
        for (int64_t i = 0; i < bq; i++) probs[i * p.nk + kb0 + r] = w.st[r * ldS + i];
      }
    }
    // O (+)= P V_block
    const Epilogue pvEpi{1.0f, kb0 == 0 ? 0.0f : 1.0f, nullptr, kActNone};
    for (int64_t s = 0; s < qSlivers; s++) {
      for (int64_t j = 0; j < vPanels; j++) {
        microKernel(bk, w.st + s * MR, ldS, w.vp + j * p.nk * NR + kb0 * NR, w.o + s * MR * ldO + j * NR, ldO, pvEpi);
      }
    }
  }
  float* out = p.out + (bh * p.nq + i0) * p.dv;
  for (int64_t i = 0; i < bq; i++) {
    // A query that sees no key (every score -inf) gets 0, as torch's SDPA.
    const float inv = l[i] > 0.0f || l[i] != l[i] ? 1.0f / l[i] : 0.0f;
    if (nkLive == 0) {
      for (int64_t c = 0; c < p.dv; c++) out[i * p.dv + c] = 0.0f;
    } else {
      binaryRow<kMul>(w.o + i * ldO, 1, &inv, 0, out + i * p.dv, p.dv);
    }
  }
  if (probs) {
    for (int64_t i = 0; i < bq; i++) {
      float* row = probs + i * p.nk;
      const float mFinal = m[i] > -INFINITY ? m[i] : 0.0f;
      const float inv = l[i] > 0.0f || l[i] != l[i] ? 1.0f / l[i] : 0.0f;
      for (int64_t kb = 0; kb < blocks; kb++) {
        const int64_t k0 = kb * kAttnBk, k1 = imin(nkLive, k0 + kAttnBk);
        const float scale = inv == 0.0f ? 0.0f : std::exp(blockMax[kb * ldS + i] - mFinal) * inv;
        binaryRow<kMul>(row + k0, 1, &scale, 0, row + k0, k1 - k0);
      }
      for (int64_t j = nkLive; j < p.nk; j++) row[j] = 0.0f;
    }
  }
}

void attention(const AttentionParams& p, int threads) {
  const int64_t bhCount = p.batch * p.heads;
  const int64_t qBlocks = ceilDiv(p.nq, kAttnBq);
  if (bhCount == 0 || qBlocks == 0) return;
  const int64_t ldS = imax(roundUp(kAttnBq, NR), roundUp(kAttnBq, MR));
  const int64_t ldO = roundUp(imax(p.dv, 1), NR);
  const double flops = 4.0 * p.nq * p.nk * (p.d + p.dv) * bhCount;
  const int useful = static_cast<int>(imax(1, imin(threads, static_cast<int64_t>(flops / kFlopsPerThread))));
  parallelFor(useful, bhCount * qBlocks, 1, [&](int64_t t0, int64_t t1) {
    AttnScratch w;
    w.ldS = ldS;
    w.ldO = ldO;
    w.kp = scratch(kAttnK, roundUp(p.nk, MR) * p.d + roundUp(p.dv, NR) * p.nk);
    w.vp = w.kp + roundUp(p.nk, MR) * p.d;
    // Query columns past the block are never cleared: whatever they hold only reaches the rows of
    // the output that are not stored (row i of P V depends on column i of P^T alone).
    w.st = scratch(kAttnS, kAttnBk * ldS);
    w.o = scratch(kAttnO, roundUp(kAttnBq, MR) * ldO + roundUp(kAttnBq, NR) * p.d);
    w.qp = w.o + roundUp(kAttnBq, MR) * ldO;
    w.stats = scratch(kAttnRow, (3 + ceilDiv(p.nk, kAttnBk)) * ldS);
    int64_t packed = -1;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t bh = t / qBlocks;
      if (bh != packed) {
        packHead(p, bh, w);
        packed = bh;
      }
      attentionBlock(p, bh, (t % qBlocks) * kAttnBq, w);
    }
  });
}

// Attention backward, one (batch, head) per task, a block of queries at a time with complete rows:
// P^T (keys x queries) is recomputed (or read from the saved probabilities), then
// dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D) scale with D = column sums of P^T dP^T,
// dQ = dS K, dK += dS^T Q. Memory O(N) per thread.
void attentionBackwardHead(const AttentionParams& p, int64_t bh, float* pt, float* dpt) {
  const int64_t b = bh / p.heads, h = bh % p.heads;
  const int64_t nk = p.nk, d = p.d, dv = p.dv;
  const float* k = p.k + bh * nk * d;
  const float* v = p.v + bh * nk * dv;
  float* gk = p.gk + bh * nk * d;
  float* gv = p.gv + bh * nk * dv;
  std::memset(gk, 0, static_cast<size_t>(nk * d) * sizeof(float));
  std::memset(gv, 0, static_cast<size_t>(nk * dv) * sizeof(float));
  const int64_t ld = kAttnBq;
  for (int64_t i0 = 0; i0 < p.nq; i0 += kAttnBq) {
    const int64_t bq = imin(kAttnBq, p.nq - i0);
    const float* q = p.q + (bh * p.nq + i0) * d;
    const float* go = p.gradOut + (bh * p.nq + i0) * dv;
    float* gq = p.gq + (bh * p.nq + i0) * d;
    if (p.probs) {
      const float* pr = p.probs + (bh * p.nq + i0) * nk;
      for (int64_t r = 0; r < nk; r++) {
        for (int64_t i = 0; i < bq; i++) pt[r * ld + i] = pr[i * nk + r];
      }
    } else {
      // S^T = scale K Q^T, masked, then a softmax down each column.
      gemmSingle(GemmJob{k, d, 1, q, 1, d, pt, ld, nk, bq, d, p.scale, 0.0f, nullptr, kActNone, nullptr});
      const float* mask = p.mask ? p.mask + b * p.maskStride[0] + h * p.maskStride[1] + i0 * p.maskStride[2] : nullptr;
      for (int64_t r = 0; r < nk; r++) {
        float* row = pt + r * ld;
        if (mask) {
          for (int64_t i = 0; i < bq; i++) row[i] += mask[i * p.maskStride[2] + r];
        }
        if (p.causal) {
          for (int64_t i = 0; i < imin(bq, r - i0); i++) row[i] = -INFINITY;
        }
      }
      for (int64_t i = 0; i < bq; i += VW) {
        const int w = static_cast<int>(imin(VW, bq - i));
        vf mx = vset(-INFINITY);
        for (int64_t r = 0; r < nk; r++) mx = vmaxKeepNan(mx, loadW(pt + r * ld, i, w));
        const vm dead = vlt(mx, vset(-3.0e38f));  // every key masked (NaN stays live and propagates)
        const vf mSafe = vsel(dead, vzero(), mx);
        vf sum = vzero();
        for (int64_t r = 0; r < nk; r++) {
          const vf e = vexp(vsub(loadW(pt + r * ld, i, w), mSafe));
          storeW(pt + r * ld, i, e, w);
          sum = vadd(sum, e);
        }
        // Rows with every key masked have probabilities 0.
        const vf inv = vsel(dead, vzero(), vdiv(vset(1.0f), sum));
        for (int64_t r = 0; r < nk; r++) storeW(pt + r * ld, i, vmul(loadW(pt + r * ld, i, w), inv), w);
      }
    }
    // dV += P^T dO
    gemmSingle(GemmJob{pt, ld, 1, go, dv, 1, gv, dv, nk, dv, bq, 1.0f, 1.0f, nullptr, kActNone, nullptr});
    // dP^T = V dO^T
    gemmSingle(GemmJob{v, dv, 1, go, 1, dv, dpt, ld, nk, bq, dv, 1.0f, 0.0f, nullptr, kActNone, nullptr});
    // D = column sums of P^T dP^T; dS^T = P^T (dP^T - D) scale, in place of dP^T.
    for (int64_t i = 0; i < bq; i += VW) {
      const int w = static_cast<int>(imin(VW, bq - i));
      vf dsum = vzero();
      for (int64_t r = 0; r < nk; r++) dsum = vfma(loadW(pt + r * ld, i, w), loadW(dpt + r * ld, i, w), dsum);
      const vf sc = vset(p.scale);
      for (int64_t r = 0; r < nk; r++) {
        const vf pr = loadW(pt + r * ld, i, w);
        storeW(dpt + r * ld, i, vmul(vmul(pr, vsub(loadW(dpt + r * ld, i, w), dsum)), sc), w);
      }
    }
    // dQ = dS K (dS is dP^T transposed), dK += dS^T Q
    gemmSingle(GemmJob{dpt, 1, ld, k, d, 1, gq, d, bq, d, nk, 1.0f, 0.0f, nullptr, kActNone, nullptr});
    gemmSingle(GemmJob{dpt, ld, 1, q, d, 1, gk, d, nk, d, bq, 1.0f, 1.0f, nullptr, kActNone, nullptr});
  }
}

void attentionBackward(const AttentionParams& p, int threads) {
  const int64_t bhCount = p.batch * p.heads;
  if (bhCount == 0) return;
  const double flops = 8.0 * p.nq * p.nk * (p.d + p.dv) * bhCount;
  const int useful = static_cast<int>(imax(1, imin(threads, static_cast<int64_t>(flops / kFlopsPerThread))));
  parallelFor(useful, bhCount, 1, [&](int64_t t0, int64_t t1) {
    float* pt = scratch(kAttnS, 2 * imax(p.nk, 1) * kAttnBq);
    float* dpt = pt + imax(p.nk, 1) * kAttnBq;
    for (int64_t bh = t0; bh < t1; bh++) attentionBackwardHead(p, bh, pt, dpt);
  });
}

// ---------------------------------------------------------------------------------------------
// Convolution: im2col / col2im for the GEMM path and a direct depthwise convolution. Windows run
// over (D, H, W); see src/backend/js/conv.ts.

// The outputs o in [lo, hi) whose input position o * stride + offset lies in [0, size).
void validRange(int64_t offset, int64_t stride, int64_t size, int64_t outLen, int64_t* lo, int64_t* hi) {
  const int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = size - 1 - offset;
  const int64_t h = last < 0 ? 0 : imin(outLen, last / stride + 1);
  *lo = imin(l, outLen);
  *hi = imax(h, *lo);
}

void im2col(const float* x, int64_t channels, const Window& w, float* cols, int threads) {
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t L = OD * OH * OW;
  const int64_t rows = channels * KD * KH * KW;
  parallelFor(threads, rows, imax(1, kElementGrain / imax(L, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
      const int64_t kw = row % KW, kh = row / KW % KH, kd = row / (KW * KH) % KD, c = row / (KW * KH * KD);
      const float* xc = x + c * D * H * W;
      const int64_t offW = kw * w.dilation[2] - w.padding[2];
      int64_t lo, hi;
      validRange(offW, w.stride[2], W, OW, &lo, &hi);
      float* dst = cols + row * L;
      for (int64_t od = 0; od < OD; od++) {
        const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
        for (int64_t oh = 0; oh < OH; oh++, dst += OW) {
          const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
          if (id < 0 || id >= D || ih < 0 || ih >= H) {
            std::memset(dst, 0, static_cast<size_t>(OW) * sizeof(float));
            continue;
          }
          const float* src = xc + (id * H + ih) * W + offW;
          for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
          if (w.stride[2] == 1) {
            std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(float));
          } else {
            for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * w.stride[2]];
          }
          for (int64_t ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
        }
      }
    }
  });
}

void col2im(const float* cols, int64_t channels, const Window& w, float* x, int threads) {
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t L = OD * OH * OW;
  const int64_t taps = KD * KH * KW;
  // The rows of one channel all add into that channel's plane: split over channels.
  parallelFor(threads, channels, imax(1, kElementGrain / imax(L * taps, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      float* xc = x + c * D * H * W;
      for (int64_t t = 0; t < taps; t++) {
        const int64_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
        const int64_t offW = kw * w.dilation[2] - w.padding[2];
        int64_t lo, hi;
        validRange(offW, w.stride[2], W, OW, &lo, &hi);
        const float* src = cols + (c * taps + t) * L;
        for (int64_t od = 0; od < OD; od++) {
          const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
          for (int64_t oh = 0; oh < OH; oh++, src += OW) {
            const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
            if (id < 0 || id >= D || ih < 0 || ih >= H) continue;
            float* dst = xc + (id * H + ih) * W + offW;
            if (w.stride[2] == 1) {
              binaryRow<kAdd>(dst + lo, 1, src + lo, 1, dst + lo, hi - lo);
            } else {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow * w.stride[2]] += src[ow];
            }
          }
        }
      }
    }
  });
}

// dst[j] += wv * src[j * stride] for j in [0, n).
inline void axpyStrided(float* dst, const float* src, int64_t stride, float wv, int64_t n) {
  if (stride == 1) {
    const vf a = vset(wv);
    int64_t j = 0;
    for (; j + VW <= n; j += VW) vst(dst + j, vfma(a, vld(src + j), vld(dst + j)));
    for (; j < n; j++) dst[j] += wv * src[j];
  } else {
    for (int64_t j = 0; j < n; j++) dst[j] += wv * src[j * stride];
  }
}

void depthwiseConv(const float* x, const float* weight, const float* bias, int64_t batch, int64_t channels,
                   int64_t multiplier, const Window& w, float* out, int threads) {
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t inPlane = D * H * W, L = OD * OH * OW, taps = KD * KH * KW;
  const int64_t outChannels = channels * multiplier;
  parallelFor(threads, batch * outChannels, imax(1, kElementGrain / imax(L * taps, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; plane++) {
      const int64_t n = plane / outChannels, oc = plane % outChannels;
      const float* xp = x + (n * channels + oc / multiplier) * inPlane;
      float* op = out + plane * L;
      const float b0 = bias ? bias[oc] : 0.0f;
      for (int64_t i = 0; i < L; i++) op[i] = b0;
      // Tap-outer order: each tap streams over the output plane, which stays in cache.
      for (int64_t t = 0; t < taps; t++) {
        const int64_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
        const float wv = weight[oc * taps + t];
        const int64_t offW = kw * w.dilation[2] - w.padding[2];
        int64_t lo, hi;
        validRange(offW, w.stride[2], W, OW, &lo, &hi);
        if (lo >= hi) continue;
        for (int64_t od = 0; od < OD; od++) {
          const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
          if (id < 0 || id >= D) continue;
          for (int64_t oh = 0; oh < OH; oh++) {
            const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
            if (ih < 0 || ih >= H) continue;
            const float* src = xp + (id * H + ih) * W + offW;
            float* dst = op + (od * OH + oh) * OW;
            axpyStrided(dst + lo, src + lo * w.stride[2], w.stride[2], wv, hi - lo);
          }
        }
      }
    }
  });
}

void depthwiseConvBackward(const float* x, const float* weight, const float* gy, int64_t batch, int64_t channels,
                           int64_t multiplier, const Window& w, float* gx, float* gw, int threads) {
  const int64_t D = w.inSize[0], H = w.inSize[1], W = w.inSize[2];
  const int64_t OD = w.outSize[0], OH = w.outSize[1], OW = w.outSize[2];
  const int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2];
  const int64_t inPlane = D * H * W, L = OD * OH * OW, taps = KD * KH * KW;
  const int64_t outChannels = channels * multiplier;
  const int64_t sw = w.stride[2];
  // An input channel owns its gx planes and its output channels' weight gradients: split over those.
  const int64_t work = batch * multiplier * L * taps;
  parallelFor(threads, channels, imax(1, kElementGrain / imax(work, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      for (int64_t n = 0; n < batch; n++) {
        const float* xp = x + (n * channels + c) * inPlane;
        float* gxp = gx ? gx + (n * channels + c) * inPlane : nullptr;
        for (int64_t m = 0; m < multiplier; m++) {
          const int64_t oc = c * multiplier + m;
          const float* gp = gy + (n * outChannels + oc) * L;
          for (int64_t t = 0; t < taps; t++) {
            const int64_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
            const float wv = weight[oc * taps + t];
            const int64_t offW = kw * w.dilation[2] - w.padding[2];
            int64_t lo, hi;
            validRange(offW, sw, W, OW, &lo, &hi);
            if (lo >= hi) continue;
            vf accV = vzero();
            float acc = 0.0f;
            for (int64_t od = 0; od < OD; od++) {
              const int64_t id = od * w.stride[0] - w.padding[0] + kd * w.dilation[0];
              if (id < 0 || id >= D) continue;
              for (int64_t oh = 0; oh < OH; oh++) {
                const int64_t ih = oh * w.stride[1] - w.padding[1] + kh * w.dilation[1];
                if (ih < 0 || ih >= H) continue;
                const int64_t src = (id * H + ih) * W + offW;
                const float* g = gp + (od * OH + oh) * OW;
                if (gxp) {
                  if (sw == 1) {
                    axpyStrided(gxp + src + lo, g + lo, 1, wv, hi - lo);
                  } else {
                    for (int64_t ow = lo; ow < hi; ow++) gxp[src + ow * sw] += wv * g[ow];
                  }
                }
                if (gw) {
                  if (sw == 1) {
                    int64_t ow = lo;
                    for (; ow + VW <= hi; ow += VW) accV = vfma(vld(g + ow), vld(xp + src + ow), accV);
                    for (; ow < hi; ow++) acc += g[ow] * xp[src + ow];
                  } else {
                    for (int64_t ow = lo; ow < hi; ow++) acc += g[ow] * xp[src + ow * sw];
                  }
                }
              }
            }
            if (gw) gw[oc * taps + t] += acc + vhsum(accV);
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Peak FLOP/s probe for the benchmark: enough independent chains to cover the FMA latency.

double fmaPeak(int64_t iterations, int threads) {
  constexpr int kChains = 12;
  parallelForTid(threads, threads, 1, [&](int64_t, int64_t, int tid) {
    vf acc[kChains];
    for (int c = 0; c < kChains; c++) acc[c] = vset(0.001f * static_cast<float>(c + tid));
    const vf a = vset(0.999999f), b = vset(1e-7f);
    for (int64_t i = 0; i < iterations; i++) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; c++) acc[c] = vfma(acc[c], a, b);
    }
    vf sum = vzero();
    for (int c = 0; c < kChains; c++) sum = vadd(sum, acc[c]);
    // Keep the result observable so the loop cannot be optimised away.
    volatile float sink = vhsum(sum);
    (void)sink;
  });
  return 2.0 * kChains * VW * static_cast<double>(iterations) * threads;
}

}  // namespace

#define GLIMPSE_STR2(x) #x
#define GLIMPSE_STR(x) GLIMPSE_STR2(x)

void fillTable(KernelTable* t) {
  t->name = GLIMPSE_STR(GLIMPSE_ISA);
  t->gemm = gemm;
  t->packedBSize = packedBSize;
  t->packB = packWholeB;
  t->unary = unary;
  t->unaryGrad = unaryGrad;
  t->binary = binary;
  t->softmax = softmax;
  t->layerNorm = layerNorm;
  t->layerNormBackward = layerNormBackward;
  t->reduce = reduce;
  t->copyStrided = copyStrided;
  t->attention = attention;
  t->attentionBackward = attentionBackward;
  t->im2col = im2col;
  t->col2im = col2im;
  t->depthwiseConv = depthwiseConv;
  t->depthwiseConvBackward = depthwiseConvBackward;
  t->fmaPeak = fmaPeak;
}

}  // namespace GLIMPSE_ISA
}  // namespace glimpse
