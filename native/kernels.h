// The interface between the N-API glue (addon.cc, built for the baseline ISA) and the kernels, which
// are compiled once per instruction set (isa_*.cc). Everything here is plain data and C function
// pointers: the per-ISA translation units must not share inline or template code with the rest of
// the addon, or the linker could pick an AVX-512 copy of it for a machine without AVX-512.
#pragma once
#include <cstdint>

namespace glimpse {

enum Act : int { kActNone = 0, kActRelu = 1, kActGelu = 2 };

// Unary op codes, in the order of src/backend/native.ts's UNARY_OPS.
enum UnaryOp : int {
  kNeg, kExp, kLog, kSqrt, kRsqrt, kAbs, kSign, kTanh, kErf, kRelu, kGelu, kGeluTanh, kSilu,
  kSigmoid, kSin, kCos, kFloor, kCeil, kRound, kReciprocal, kSquare, kLog1p, kExpm1, kSoftplus,
  kUnaryCount
};

// Binary op codes (float outputs only), in the order of native.ts's BINARY_OPS.
enum BinaryOp : int { kAdd, kSub, kMul, kDiv, kPow, kMaximum, kMinimum, kAtan2, kMod, kBinaryCount };

enum ReduceOp : int { kSum, kMax, kMin, kArgmax, kArgmin, kProd, kReduceCount };

// C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] + bias, then act; op(A) (m, k), op(B) (k, n).
struct GemmParams {
  const float* a;
  const float* b;
  float* c;
  const float* bias;  // (n,) or null
  int64_t batch, m, n, k;
  bool transA, transB;
  int64_t strideA, strideB, strideC;  // batch strides; 0 broadcasts
  float alpha, beta;
  int act;
  // B already packed by KernelTable::packB for this ISA (then `b` is not read), or null.
  const float* packedB;
};

// One (b, h) slice of scaled dot-product attention at a time; see src/backend/js/attention.ts.
struct AttentionParams {
  const float* q;  // (B, H, Nq, D)
  const float* k;  // (B, H, Nk, D)
  const float* v;  // (B, H, Nk, Dv)
  float* out;      // (B, H, Nq, Dv)
  int64_t batch, heads, nq, nk, d, dv;
  float scale;
  const float* mask;  // additive, (b, h, i, j) at b*s0 + h*s1 + i*s2 + j, or null
  int64_t maskStride[3];
  bool causal;
  float* probs;  // (B, H, Nq, Nk) or null
  // Backward only (null in the forward).
  const float* gradOut;
  float* gq;
  float* gk;
  float* gv;
};

// A sliding window over (D, H, W), as src/backend/js/conv.ts's Window.
struct Window {
  int64_t inSize[3], outSize[3], kernel[3], stride[3], padding[3], dilation[3];
};

struct KernelTable {
  const char* name;
  void (*gemm)(const GemmParams& p, int threads);
  // B (k, n) (stored (n, k) when transB) in the layout the GEMM packs it into, for reuse across
  // calls (inference weights); packedBSize(k, n) floats.
  int64_t (*packedBSize)(int64_t k, int64_t n);
  void (*packB)(const float* b, int64_t k, int64_t n, bool transB, float* dst, int threads);
  void (*unary)(int op, const float* x, float* y, int64_t n, int threads);
  void (*unaryGrad)(int op, const float* x, const float* y, const float* dy, float* out, int64_t n,
                    int threads);
  // out (contiguous over shape) = a op b with element strides (0 on broadcast dims).
  void (*binary)(int op, const float* a, const int64_t* aStrides, const float* b, const int64_t* bStrides,
                 float* out, const int64_t* shape, int ndim, int threads);
  void (*softmax)(const float* x, int64_t rows, int64_t cols, float* out, bool log, int threads);
  void (*layerNorm)(const float* x, int64_t rows, int64_t cols, const float* weight, const float* bias,
                    float eps, float* out, float* mean, float* rstd, int threads);
  void (*layerNormBackward)(const float* x, const float* gy, int64_t rows, int64_t cols, const float* weight,
                            const float* mean, const float* rstd, float* gx, float* gw, float* gb,
                            int threads);
  void (*reduce)(int op, const float* x, int64_t outer, int64_t n, int64_t inner, float* out, int threads);
  void (*copyStrided)(const float* src, const int64_t* srcStrides, const int64_t* shape, int ndim, float* dst,
                      const int64_t* dstStrides, bool accumulate, int threads);
  void (*attention)(const AttentionParams& p, int threads);
  void (*attentionBackward)(const AttentionParams& p, int threads);
  void (*im2col)(const float* x, int64_t channels, const Window& w, float* cols, int threads);
  void (*col2im)(const float* cols, int64_t channels, const Window& w, float* x, int threads);
  void (*depthwiseConv)(const float* x, const float* weight, const float* bias, int64_t batch, int64_t channels,
                        int64_t multiplier, const Window& w, float* out, int threads);
  // The machine's peak: `iterations` steps of 12 independent FMA chains on each of `threads`
  // threads; returns the floating-point operations done (the caller times it).
  double (*fmaPeak)(int64_t iterations, int threads);
  void (*depthwiseConvBackward)(const float* x, const float* weight, const float* gy, int64_t batch,
                                int64_t channels, int64_t multiplier, const Window& w, float* gx, float* gw,
                                int threads);
};

// The thread pool (thread_pool.cc): body(ctx, chunk, tid) runs for every chunk in [0, chunks),
// claimed in increasing order by up to `threads` threads (the caller is one of them); tid in
// [0, threads) names the thread, for per-thread buffers. Returns when every chunk is done. Inside a
// body, a nested call runs its chunks serially on the calling thread.
using ChunkBody = void (*)(void* ctx, int64_t chunk, int tid);
void parallelChunks(int threads, int64_t chunks, ChunkBody body, void* ctx);

// Each ISA build (isa_*.cc) defines its fillTable in its own namespace.
namespace scalar {
void fillTable(KernelTable* t);
}
#if defined(GLIMPSE_X86)
namespace avx2 {
void fillTable(KernelTable* t);
}
namespace avx512 {
void fillTable(KernelTable* t);
}
#endif

}  // namespace glimpse
