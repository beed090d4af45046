// Kernels that training leans on beyond kernels.h's table: batch norm (statistics, folded forward,
// backward), the depthwise convolution of ConvMixer-style blocks (2-D, stride 1, dilation 1, one
// output per input channel), im2col/col2im over a whole batch for the one-GEMM convolution, max
// pooling, multi-head self-attention on a fused qkv projection and the optimizer's arithmetic, each compiled per instruction set like the main table (train_*.cc
// include train_impl.h) and exposed through train_addon.cc. Semantics are those of the js kernels in
// src/backend/js/batch_norm.ts and conv.ts. Plain data and function pointers only (see kernels.h).
#pragma once
#include <cstdint>

#include "kernels.h"

namespace glimpse {

struct AdamScalars {
  float beta1, beta2, eps, l2, decay, stepSize, bias2Sqrt;
  bool maximize;
};

struct TrainKernelTable {
  const char* name;
  // Per-channel mean and biased variance of x (n, channels, spatial), float64 out.
  void (*batchNormStats)(const float* x, int64_t n, int64_t channels, int64_t spatial, double* mean,
                         double* variance, int threads);
  // out = x * scale[c] + shift[c].
  void (*batchNormForward)(const float* x, int64_t n, int64_t channels, int64_t spatial, const double* scale,
                           const double* shift, float* out, int threads);
  // gx always, gw/gb (channels,) when not null; weight null means 1.
  void (*batchNormBackward)(const float* x, const float* gy, int64_t n, int64_t channels, int64_t spatial,
                            const double* mean, const double* invstd, const float* weight, bool training, float* gx,
                            float* gw, float* gb, int threads);
  // Depthwise 2-D convolution with stride 1, dilation 1 and one output channel per input channel: the
  // window's depth dims are 1. out (batch, channels, OH, OW).
  void (*depthwiseConv2d)(const float* x, const float* weight, const float* bias, int64_t batch, int64_t channels,
                          const Window& w, float* out, int threads);
  // Its gradients: gx (overwritten) and gw (accumulated, as the js kernel) when not null.
  void (*depthwiseConv2dBackward)(const float* x, const float* weight, const float* gy, int64_t batch,
                                  int64_t channels, const Window& w, float* gx, float* gw, int threads);
  // im2col of a batch with the images side by side: cols (channels * taps, batch * L).
  void (*im2colBatch)(const float* x, int64_t batch, int64_t channels, const Window& w, float* cols, int threads);
  // Its adjoint, accumulated into x (batch, channels, D, H, W).
  void (*col2imBatch)(const float* cols, int64_t batch, int64_t channels, const Window& w, float* x, int threads);
  // Max pooling over `planes` (D, H, W) planes with torch's semantics (src/backend/js/pool.ts maxPool).
  void (*maxPool)(const float* x, int64_t planes, const Window& w, float* out, int32_t* indices, int threads);
  // Self-attention straight from a fused projection (src/backend/js/qkv_attention.ts): qkv (B, N, 3, H,
  // D) -> out (B, N, H, D), probs (B, H, N, N) when not null.
  void (*qkvAttention)(const float* qkv, int64_t batch, int64_t seq, int64_t heads, int64_t headDim, float scale,
                       float* out, float* probs, int threads);
  // Its backward from the saved probabilities: gqkv (B, N, 3, H, D), overwritten.
  void (*qkvAttentionBackward)(const float* qkv, const float* probs, const float* gradOut, int64_t batch,
                               int64_t seq, int64_t heads, int64_t headDim, float scale, float* gqkv, int threads);
  // One Adam/AdamW step of one parameter tensor (src/backend/js/optim.ts adamUpdate); maxExpAvgSq null
  // without AMSGrad.
  void (*adamUpdate)(float* param, const float* grad, float* expAvg, float* expAvgSq, float* maxExpAvgSq,
                     int64_t n, const AdamScalars& s, int threads);
  // The sum of x[i]^2 (float64).
  double (*sumOfSquares)(const float* x, int64_t n, int threads);
};

namespace scalar {
void fillTrainTable(TrainKernelTable* t);
}
#if defined(GLIMPSE_X86)
namespace avx2 {
void fillTrainTable(TrainKernelTable* t);
}
namespace avx512 {
void fillTrainTable(TrainKernelTable* t);
}
#endif

}  // namespace glimpse
