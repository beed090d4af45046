// A thin vector layer for the kernels, one definition per instruction set, chosen by the compiler
// flags of the translation unit that includes it (isa_avx512.cc, isa_avx2.cc, isa_scalar.cc).
// Everything lives in the namespace GLIMPSE_ISA and has internal linkage (see kernels.h for why).
//
// NaN handling follows the js kernels: min/max-style helpers are written so that a NaN in the data
// operand survives (x86 min/max return their second operand when either is NaN).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef GLIMPSE_ISA
#error "define GLIMPSE_ISA (the namespace of this instruction set) before including simd.h"
#endif

namespace glimpse {
namespace GLIMPSE_ISA {
namespace {

#if defined(__AVX512F__)

constexpr int VW = 16;
using vf = __m512;
using vm = __mmask16;

inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset(float v) { return _mm512_set1_ps(v); }
inline vf vld(const float* p) { return _mm512_loadu_ps(p); }
inline void vst(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vm tailMask(int n) { return static_cast<vm>((1u << n) - 1u); }
inline vf vldN(const float* p, int n) { return _mm512_maskz_loadu_ps(tailMask(n), p); }
inline void vstN(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, tailMask(n), v); }
inline vf vkeepN(vf v, int n) { return _mm512_maskz_mov_ps(tailMask(n), v); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vfnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
// max/min that return x when x is NaN (the constant or running value goes first).
inline vf vmaxKeepNan(vf c, vf x) { return _mm512_max_ps(c, x); }
inline vf vminKeepNan(vf c, vf x) { return _mm512_min_ps(c, x); }
inline vf vsqrt(vf a) { return _mm512_sqrt_ps(a); }
inline vf vabs(vf a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
inline vf vneg(vf a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
// The sign bit of s applied to |a|.
inline vf vcopysign(vf a, vf s) {
  const __m512i m = _mm512_set1_epi32(INT32_MIN);
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(a)),
                                             _mm512_and_si512(m, _mm512_castps_si512(s))));
}
inline vf vroundNearest(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vm vlt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline vm vgt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline vm visnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
inline vf vsel(vm m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
// a * 2^n for integer-valued n, correct into the subnormal range and to overflow.
inline vf vldexp(vf a, vf n) { return _mm512_scalef_ps(a, n); }
inline float vhsum(vf a) { return _mm512_reduce_add_ps(a); }
inline float vhmax(vf a) { return _mm512_reduce_max_ps(a); }

// Transposes the 16 x 16 block held in r[0..15] (row i in r[i]) in place.
inline void vtranspose(vf* r) {
  vf t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + j], 128-bit lane L: column 4L + j of rows 4g..4g+3.
  for (int g = 0; g < 4; g++) {
    r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; j++) {
    const vf y0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), y1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    const vf y2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88), y3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    t[j] = _mm512_shuffle_f32x4(y0, y2, 0x88);
    t[j + 8] = _mm512_shuffle_f32x4(y0, y2, 0xdd);
    t[j + 4] = _mm512_shuffle_f32x4(y1, y3, 0x88);
    t[j + 12] = _mm512_shuffle_f32x4(y1, y3, 0xdd);
  }
  for (int i = 0; i < 16; i++) r[i] = t[i];
}

#elif defined(__AVX2__)

constexpr int VW = 8;
using vf = __m256;
using vm = __m256;

inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset(float v) { return _mm256_set1_ps(v); }
inline vf vld(const float* p) { return _mm256_loadu_ps(p); }
inline void vst(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline __m256i tailMask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vf vldN(const float* p, int n) { return _mm256_maskload_ps(p, tailMask(n)); }
inline void vstN(float* p, vf v, int n) { _mm256_maskstore_ps(p, tailMask(n), v); }
inline vf vkeepN(vf v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(tailMask(n))); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vfnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline vf vmaxKeepNan(vf c, vf x) { return _mm256_max_ps(c, x); }
inline vf vminKeepNan(vf c, vf x) { return _mm256_min_ps(c, x); }
inline vf vsqrt(vf a) { return _mm256_sqrt_ps(a); }
inline vf vabs(vf a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
inline vf vneg(vf a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN))); }
inline vf vcopysign(vf a, vf s) {
  const vf m = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  return _mm256_or_ps(_mm256_andnot_ps(m, a), _mm256_and_ps(m, s));
}
inline vf vroundNearest(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vm vlt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline vm vgt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline vm visnan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
inline vf vsel(vm m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
// 2^n for integer-valued n in [-126, 127].
inline vf vpow2i(vf n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
// a * 2^n for integer-valued n in [-252, 254], in two steps so each power stays a normal float.
inline vf vldexp(vf a, vf n) {
  const vf half = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
  return _mm256_mul_ps(_mm256_mul_ps(a, vpow2i(half)), vpow2i(_mm256_sub_ps(n, half)));
}
inline float vhsum(vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float vhmax(vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Transposes the 8 x 8 block held in r[0..7] (row i in r[i]) in place.
inline void vtranspose(vf* r) {
  vf t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; g++) {
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; j++) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

#else  // portable: one lane, plain C++ (compiles anywhere; the compiler may still vectorise loops)

constexpr int VW = 1;
using vf = float;
using vm = bool;

inline vf vzero() { return 0.0f; }
inline vf vset(float v) { return v; }
inline vf vld(const float* p) { return *p; }
inline void vst(float* p, vf v) { *p = v; }
inline vf vldN(const float* p, int n) { return n > 0 ? *p : 0.0f; }
inline void vstN(float* p, vf v, int n) {
  if (n > 0) *p = v;
}
inline vf vkeepN(vf v, int n) { return n > 0 ? v : 0.0f; }
inline vf vadd(vf a, vf b) { return a + b; }
inline vf vsub(vf a, vf b) { return a - b; }
inline vf vmul(vf a, vf b) { return a * b; }
inline vf vdiv(vf a, vf b) { return a / b; }
inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
inline vf vfnma(vf a, vf b, vf c) { return c - a * b; }
inline vf vmaxKeepNan(vf c, vf x) { return x != x ? x : (c > x ? c : x); }
inline vf vminKeepNan(vf c, vf x) { return x != x ? x : (c < x ? c : x); }
inline vf vsqrt(vf a) { return std::sqrt(a); }
inline vf vabs(vf a) { return std::fabs(a); }
inline vf vneg(vf a) { return -a; }
inline vf vcopysign(vf a, vf s) { return std::copysign(a, s); }
inline vf vroundNearest(vf a) { return std::nearbyint(a); }
inline vm vlt(vf a, vf b) { return a < b; }
inline vm vgt(vf a, vf b) { return a > b; }
inline vm visnan(vf a) { return a != a; }
inline vf vsel(vm m, vf t, vf f) { return m ? t : f; }
inline vf vldexp(vf a, vf n) { return n != n ? n : std::ldexp(a, static_cast<int>(n)); }
inline float vhsum(vf a) { return a; }
inline float vhmax(vf a) { return a; }
inline void vtranspose(vf*) {}

#endif

// ---- Elementary functions on vectors, float32 accuracy (a few ulp). ----

// exp: range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf), then scale
// by 2^n. Subnormal results are kept, as the js kernels (double exp rounded to float) produce them.
inline vf vexp(vf x) {
  const vf hi = vset(88.72283935546875f);
  const vf lo = vset(-103.972084045410f);
  const vf xc = vmaxKeepNan(lo, vminKeepNan(hi, x));
  const vf n = vroundNearest(vmul(xc, vset(1.44269504088896341f)));
  vf r = vfnma(n, vset(0.693359375f), xc);
  r = vfnma(n, vset(-2.12194440e-4f), r);
  vf p = vset(1.9875691500e-4f);
  p = vfma(p, r, vset(1.3981999507e-3f));
  p = vfma(p, r, vset(8.3334519073e-3f));
  p = vfma(p, r, vset(4.1665795894e-2f));
  p = vfma(p, r, vset(1.6666665459e-1f));
  p = vfma(p, r, vset(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset(1.0f)));
  vf y = vldexp(p, n);
  y = vsel(vgt(x, hi), vset(INFINITY), y);
  y = vsel(vlt(x, lo), vzero(), y);
  return y;
}

inline vf vsigmoid(vf x) { return vdiv(vset(1.0f), vadd(vset(1.0f), vexp(vneg(x)))); }

// tanh: odd polynomial near 0 (Cephes tanhf), 1 - 2 / (e^{2|x|} + 1) elsewhere.
inline vf vtanh(vf x) {
  const vf ax = vabs(x);
  const vf z = vmul(x, x);
  vf p = vset(-5.70498872745e-3f);
  p = vfma(p, z, vset(2.06390887954e-2f));
  p = vfma(p, z, vset(-5.37397155531e-2f));
  p = vfma(p, z, vset(1.33314422036e-1f));
  p = vfma(p, z, vset(-3.33332819422e-1f));
  const vf small = vfma(vmul(p, z), x, x);
  // Beyond |x| = 10, tanh rounds to +-1 in float; clamping keeps e finite.
  const vf e = vexp(vmul(vset(2.0f), vminKeepNan(vset(10.0f), ax)));
  const vf big = vcopysign(vsub(vset(1.0f), vdiv(vset(2.0f), vadd(e, vset(1.0f)))), x);
  return vsel(vlt(ax, vset(0.625f)), small, big);
}

// erf and erfc from one evaluation, Cephes erff/erfcf (public domain): erf = x T(x^2) for |x| < 1, and
// above erfc(|x|) = exp(-x^2) / |x| P(1/x^2) (P on [1, 2), R beyond), which does not cancel 1 - erf.
// The rounding error of x^2 (up to 1e-5 relative in exp(-x^2) near |x| = 10) is carried into the
// exponential by hand: exp(-(z + lo)) = exp(-z) (1 - lo) with lo = x^2 - z from an FMA.
struct ErfPair {
  vf small;  // erf(x) where |x| < 1
  vf tail;   // erfc(|x|) where |x| >= 1
  vm isSmall;
};

inline ErfPair verfParts(vf x) {
  const vf z = vmul(x, x);
  vf s = vset(7.853861353153693e-5f);
  s = vfma(s, z, vset(-8.010193625184903e-4f));
  s = vfma(s, z, vset(5.188327685732524e-3f));
  s = vfma(s, z, vset(-2.685381193529856e-2f));
  s = vfma(s, z, vset(1.128358514861418e-1f));
  s = vfma(s, z, vset(-3.761262582423300e-1f));
  s = vfma(s, z, vset(1.128379165726710f));
  // Past 10.5, erfc underflows to 0 in float; the clamp keeps lo finite for infinite x.
  const vf ax = vabs(x);
  const vf xc = vminKeepNan(vset(10.5f), ax);
  const vf q = vdiv(vset(1.0f), xc);
  const vf y = vmul(q, q);
  vf p = vset(2.326819970068386e-2f);
  p = vfma(p, y, vset(-1.387039388740657e-1f));
  p = vfma(p, y, vset(3.687424674597105e-1f));
  p = vfma(p, y, vset(-5.824733027278666e-1f));
  p = vfma(p, y, vset(6.210004621745983e-1f));
  p = vfma(p, y, vset(-4.944515323274145e-1f));
  p = vfma(p, y, vset(3.404879937665872e-1f));
  p = vfma(p, y, vset(-2.741127028184656e-1f));
  p = vfma(p, y, vset(5.638259427386472e-1f));
  vf r = vset(-1.047766399936249e+1f);
  r = vfma(r, y, vset(1.297719955372516e+1f));
  r = vfma(r, y, vset(-7.495518717768503f));
  r = vfma(r, y, vset(2.921019019210786f));
  r = vfma(r, y, vset(-1.015265279202700f));
  r = vfma(r, y, vset(4.218463358204948e-1f));
  r = vfma(r, y, vset(-2.820767439740514e-1f));
  r = vfma(r, y, vset(5.641895067754075e-1f));
  const vf zc = vmul(xc, xc);
  const vf lo = vfma(xc, xc, vneg(zc));
  vf e = vexp(vneg(zc));
  e = vfnma(e, lo, e);
  const vf poly = vsel(vlt(xc, vset(2.0f)), p, r);
  return {vmul(s, x), vmul(vmul(e, q), poly), vlt(ax, vset(1.0f))};
}

inline vf verf(vf x) {
  const ErfPair e = verfParts(x);
  return vsel(e.isSmall, e.small, vcopysign(vsub(vset(1.0f), e.tail), x));
}

// 1 + erf(x), exact in relative terms for negative x too (where 1 + erf would cancel).
inline vf vonePlusErf(vf x) {
  const ErfPair e = verfParts(x);
  const vf big = vsel(vlt(x, vzero()), e.tail, vsub(vset(2.0f), e.tail));
  return vsel(e.isSmall, vadd(vset(1.0f), e.small), big);
}

inline vf vgelu(vf x) {
  return vmul(vmul(vset(0.5f), x), vonePlusErf(vmul(x, vset(0.70710678118654752f))));
}

// 0.5 x (1 + tanh(u)) = x sigmoid(2u), which does not cancel for negative x.
inline vf vgeluTanh(vf x) {
  const vf u = vmul(vset(0.79788456080286536f), vfma(vmul(vset(0.044715f), vmul(x, x)), x, x));
  return vdiv(x, vadd(vset(1.0f), vexp(vmul(vset(-2.0f), u))));
}

inline vf vrelu(vf x) { return vmaxKeepNan(vzero(), x); }

}  // namespace
}  // namespace GLIMPSE_ISA
}  // namespace glimpse
