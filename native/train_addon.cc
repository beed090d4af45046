// N-API entry points of the training kernels (train_kernels.h). Like addon.cc, each call runs one
// whole kernel on the arrays' backing stores after checking that every element the kernel touches
// lies inside its array. The instruction set follows the main table's (setIsa), and so do threads.
#include "train_addon.h"

#include <cmath>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "train_kernels.h"

namespace glimpse {
namespace {

TrainKernelTable trainScalar, trainAvx2, trainAvx512;
const KernelTable* const* mainTable = nullptr;
const int* mainThreads = nullptr;

const TrainKernelTable& table() {
#if defined(GLIMPSE_X86)
  const std::string isa = (*mainTable)->name;
  if (isa == "avx512") return trainAvx512;
  if (isa == "avx2") return trainAvx2;
#endif
  return trainScalar;
}

class Checked {
 public:
  Checked(const Napi::CallbackInfo& info, const char* kernel) : info_(info), kernel_(kernel) {}

  [[noreturn]] void fail(const std::string& what, bool range = true) const {
    const std::string msg = std::string("native ") + kernel_ + ": " + what;
    if (range) throw Napi::RangeError::New(info_.Env(), msg);
    throw Napi::TypeError::New(info_.Env(), msg);
  }

  template <class T, napi_typedarray_type kType>
  T* array(size_t i, const char* name, int64_t need, bool nullable) const {
    const Napi::Value v = info_[i];
    if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType) {
      const char* want = kType == napi_float32_array   ? " must be a Float32Array"
                         : kType == napi_float64_array ? " must be a Float64Array"
                                                       : " must be an Int32Array";
      fail(std::string(name) + want, false);
    }
    auto a = v.As<Napi::TypedArrayOf<T>>();
    if (static_cast<int64_t>(a.ElementLength()) < need) {
      fail(std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, needs " +
           std::to_string(need));
    }
    return a.Data();
  }

  float* f32(size_t i, const char* name, int64_t need, bool nullable = false) const {
    return array<float, napi_float32_array>(i, name, need, nullable);
  }
  double* f64(size_t i, const char* name, int64_t need) const {
    return array<double, napi_float64_array>(i, name, need, false);
  }

  int64_t count(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) fail(std::string(name) + " must be a number", false);
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) {
      fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }

  bool flag(size_t i) const { return info_[i].ToBoolean().Value(); }

  float real(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) fail(std::string(name) + " must be a number", false);
    return static_cast<float>(v.As<Napi::Number>().DoubleValue());
  }

  // A window packed as addon.cc's: inSize, outSize, kernel, stride, padding, dilation (3 each), here
  // restricted to what the depthwise kernels take: 2-D, stride 1, dilation 1, in-range padding.
  Window window2d(size_t i) const {
    const double* m = f64(i, "window", 18);
    Window w;
    int64_t* parts[6] = {w.inSize, w.outSize, w.kernel, w.stride, w.padding, w.dilation};
    for (int p = 0; p < 6; p++) {
      for (int d = 0; d < 3; d++) {
        const double v = m[p * 3 + d];
        if (!(v >= 0 && v < 1e9) || std::floor(v) != v) fail("window entries must be non-negative integers");
        parts[p][d] = static_cast<int64_t>(v);
      }
    }
    for (int d = 0; d < 3; d++) {
      if (w.stride[d] != 1 || w.dilation[d] != 1) fail("takes stride 1 and dilation 1 only");
    }
    if (w.inSize[0] != 1 || w.outSize[0] != 1 || w.kernel[0] != 1) fail("takes 2-D windows only");
    for (int d = 1; d < 3; d++) {
      if (w.kernel[d] < 1 || w.padding[d] >= w.kernel[d] || w.outSize[d] + w.kernel[d] - 1 > w.inSize[d] + 2 * w.padding[d]) {
        fail("window sizes do not fit (kernel >= 1, padding < kernel, output inside the padded input)");
      }
    }
    return w;
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* kernel_;
};

// batchNormStats(x, n, channels, spatial, mean, variance)
Napi::Value BatchNormStats(const Napi::CallbackInfo& info) {
  Checked a(info, "batchNormStats");
  const int64_t n = a.count(1, "n"), c = a.count(2, "channels"), s = a.count(3, "spatial");
  const float* x = a.f32(0, "x", n * c * s);
  double* mean = a.f64(4, "mean", c);
  double* variance = a.f64(5, "variance", c);
  table().batchNormStats(x, n, c, s, mean, variance, *mainThreads);
  return info.Env().Undefined();
}

// batchNormForward(x, n, channels, spatial, scale, shift, out)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  Checked a(info, "batchNormForward");
  const int64_t n = a.count(1, "n"), c = a.count(2, "channels"), s = a.count(3, "spatial");
  const float* x = a.f32(0, "x", n * c * s);
  const double* scale = a.f64(4, "scale", c);
  const double* shift = a.f64(5, "shift", c);
  float* out = a.f32(6, "out", n * c * s);
  table().batchNormForward(x, n, c, s, scale, shift, out, *mainThreads);
  return info.Env().Undefined();
}

// batchNormBackward(x, gy, n, channels, spatial, mean, invstd, weight, training, gx, gw, gb)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Checked a(info, "batchNormBackward");
  const int64_t n = a.count(2, "n"), c = a.count(3, "channels"), s = a.count(4, "spatial");
  const float* x = a.f32(0, "x", n * c * s);
  const float* gy = a.f32(1, "gy", n * c * s);
  const double* mean = a.f64(5, "mean", c);
  const double* invstd = a.f64(6, "invstd", c);
  const float* weight = a.f32(7, "weight", c, true);
  const bool training = a.flag(8);
  float* gx = a.f32(9, "gx", n * c * s);
  float* gw = a.f32(10, "gw", c, true);
  float* gb = a.f32(11, "gb", c, true);
  table().batchNormBackward(x, gy, n, c, s, mean, invstd, weight, training, gx, gw, gb, *mainThreads);
  return info.Env().Undefined();
}

int64_t plane2(const int64_t* s) { return s[1] * s[2]; }

// depthwiseConv2d(x, weight, bias, batch, channels, window, out)
Napi::Value DepthwiseConv2d(const Napi::CallbackInfo& info) {
  Checked a(info, "depthwiseConv2d");
  const int64_t batch = a.count(3, "batch"), channels = a.count(4, "channels");
  const Window w = a.window2d(5);
  const float* x = a.f32(0, "x", batch * channels * plane2(w.inSize));
  const float* weight = a.f32(1, "weight", channels * plane2(w.kernel));
  const float* bias = a.f32(2, "bias", channels, true);
  float* out = a.f32(6, "out", batch * channels * plane2(w.outSize));
  table().depthwiseConv2d(x, weight, bias, batch, channels, w, out, *mainThreads);
  return info.Env().Undefined();
}

// depthwiseConv2dBackward(x, weight, gy, batch, channels, window, gx, gw)
Napi::Value DepthwiseConv2dBackward(const Napi::CallbackInfo& info) {
  Checked a(info, "depthwiseConv2dBackward");
  const int64_t batch = a.count(3, "batch"), channels = a.count(4, "channels");
  const Window w = a.window2d(5);
  const float* x = a.f32(0, "x", batch * channels * plane2(w.inSize));
  const float* weight = a.f32(1, "weight", channels * plane2(w.kernel));
  const float* gy = a.f32(2, "gy", batch * channels * plane2(w.outSize));
  float* gx = a.f32(6, "gx", batch * channels * plane2(w.inSize), true);
  float* gw = a.f32(7, "gw", channels * plane2(w.kernel), true);
  table().depthwiseConv2dBackward(x, weight, gy, batch, channels, w, gx, gw, *mainThreads);
  return info.Env().Undefined();
}

// A window packed as addon.cc's (any rank, stride, dilation); fails on negative or absurd entries.
Window anyWindow(const Checked& a, size_t i) {
  const double* m = a.f64(i, "window", 18);
  Window w;
  int64_t* parts[6] = {w.inSize, w.outSize, w.kernel, w.stride, w.padding, w.dilation};
  for (int p = 0; p < 6; p++) {
    for (int d = 0; d < 3; d++) {
      const double v = m[p * 3 + d];
      if (!(v >= 0 && v < 1e9) || std::floor(v) != v) a.fail("window entries must be non-negative integers");
      parts[p][d] = static_cast<int64_t>(v);
    }
  }
  for (int d = 0; d < 3; d++) {
    if (w.stride[d] < 1 || w.dilation[d] < 1) a.fail("stride and dilation must be positive");
  }
  return w;
}

int64_t plane3(const int64_t* s) { return s[0] * s[1] * s[2]; }

// im2colBatch(x, batch, channels, window, cols)
Napi::Value Im2colBatch(const Napi::CallbackInfo& info) {
  Checked a(info, "im2colBatch");
  const int64_t batch = a.count(1, "batch"), channels = a.count(2, "channels");
  const Window w = anyWindow(a, 3);
  const float* x = a.f32(0, "x", batch * channels * plane3(w.inSize));
  float* cols = a.f32(4, "cols", channels * plane3(w.kernel) * batch * plane3(w.outSize));
  table().im2colBatch(x, batch, channels, w, cols, *mainThreads);
  return info.Env().Undefined();
}

// col2imBatch(cols, batch, channels, window, x)
Napi::Value Col2imBatch(const Napi::CallbackInfo& info) {
  Checked a(info, "col2imBatch");
  const int64_t batch = a.count(1, "batch"), channels = a.count(2, "channels");
  const Window w = anyWindow(a, 3);
  const float* cols = a.f32(0, "cols", channels * plane3(w.kernel) * batch * plane3(w.outSize));
  float* x = a.f32(4, "x", batch * channels * plane3(w.inSize));
  table().col2imBatch(cols, batch, channels, w, x, *mainThreads);
  return info.Env().Undefined();
}

// maxPool(x, planes, window, out, indices)
Napi::Value MaxPool(const Napi::CallbackInfo& info) {
  Checked a(info, "maxPool");
  const int64_t planes = a.count(1, "planes");
  const Window w = anyWindow(a, 2);
  const float* x = a.f32(0, "x", planes * plane3(w.inSize));
  float* out = a.f32(3, "out", planes * plane3(w.outSize));
  int32_t* indices = a.array<int32_t, napi_int32_array>(4, "indices", planes * plane3(w.outSize), false);
  table().maxPool(x, planes, w, out, indices, *mainThreads);
  return info.Env().Undefined();
}

// qkvAttention(qkv, batch, seq, heads, headDim, scale, out, probs)
Napi::Value QkvAttention(const Napi::CallbackInfo& info) {
  Checked a(info, "qkvAttention");
  const int64_t B = a.count(1, "batch"), N = a.count(2, "seq"), H = a.count(3, "heads"), D = a.count(4, "headDim");
  const float scale = a.real(5, "scale");
  const float* qkv = a.f32(0, "qkv", B * N * 3 * H * D);
  float* out = a.f32(6, "out", B * N * H * D);
  float* probs = a.f32(7, "probs", B * H * N * N, true);
  table().qkvAttention(qkv, B, N, H, D, scale, out, probs, *mainThreads);
  return info.Env().Undefined();
}

// qkvAttentionBackward(qkv, probs, gradOut, batch, seq, heads, headDim, scale, gqkv)
Napi::Value QkvAttentionBackward(const Napi::CallbackInfo& info) {
  Checked a(info, "qkvAttentionBackward");
  const int64_t B = a.count(3, "batch"), N = a.count(4, "seq"), H = a.count(5, "heads"), D = a.count(6, "headDim");
  const float scale = a.real(7, "scale");
  const float* qkv = a.f32(0, "qkv", B * N * 3 * H * D);
  const float* probs = a.f32(1, "probs", B * H * N * N);
  const float* gradOut = a.f32(2, "gradOut", B * N * H * D);
  float* gqkv = a.f32(8, "gqkv", B * N * 3 * H * D);
  table().qkvAttentionBackward(qkv, probs, gradOut, B, N, H, D, scale, gqkv, *mainThreads);
  return info.Env().Undefined();
}

// adamUpdate(param, grad, expAvg, expAvgSq, maxExpAvgSq, scalars) with scalars a Float64Array of
// [beta1, beta2, eps, l2, decay, stepSize, bias2Sqrt, maximize]
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  Checked a(info, "adamUpdate");
  float* param = a.f32(0, "param", 0);
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::Float32Array>().ElementLength());
  const float* grad = a.f32(1, "grad", n);
  float* m = a.f32(2, "expAvg", n);
  float* v = a.f32(3, "expAvgSq", n);
  float* vmax = a.f32(4, "maxExpAvgSq", n, true);
  const double* k = a.f64(5, "scalars", 8);
  AdamScalars s;
  s.beta1 = static_cast<float>(k[0]);
  s.beta2 = static_cast<float>(k[1]);
  s.eps = static_cast<float>(k[2]);
  s.l2 = static_cast<float>(k[3]);
  s.decay = static_cast<float>(k[4]);
  s.stepSize = static_cast<float>(k[5]);
  s.bias2Sqrt = static_cast<float>(k[6]);
  s.maximize = k[7] != 0;
  table().adamUpdate(param, grad, m, v, vmax, n, s, *mainThreads);
  return info.Env().Undefined();
}

// sumOfSquares(x) -> number
Napi::Value SumOfSquares(const Napi::CallbackInfo& info) {
  Checked a(info, "sumOfSquares");
  const float* x = a.f32(0, "x", 0);
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::Float32Array>().ElementLength());
  return Napi::Number::New(info.Env(), table().sumOfSquares(x, n, *mainThreads));
}

// tuneAllocator(): tensors of a few MB are allocated and freed many times per training step. glibc
// serves blocks above its mmap threshold (dynamic, from 128 KB) with fresh mappings, so every kernel's
// first write into a new output page-faults, and every free unmaps. Serving blocks up to 32 MB from
// the heap and keeping up to 1 GB of freed memory makes them reuse warm pages instead. Returns whether
// it applied (glibc only).
Napi::Value TuneAllocator(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  const bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

void registerTrainKernels(Napi::Env env, Napi::Object exports, const KernelTable* const* active,
                          const int* threads) {
  mainTable = active;
  mainThreads = threads;
  scalar::fillTrainTable(&trainScalar);
#if defined(GLIMPSE_X86)
  avx2::fillTrainTable(&trainAvx2);
  avx512::fillTrainTable(&trainAvx512);
#endif
  exports.Set("batchNormStats", Napi::Function::New(env, BatchNormStats));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
  exports.Set("depthwiseConv2d", Napi::Function::New(env, DepthwiseConv2d));
  exports.Set("depthwiseConv2dBackward", Napi::Function::New(env, DepthwiseConv2dBackward));
  exports.Set("im2colBatch", Napi::Function::New(env, Im2colBatch));
  exports.Set("col2imBatch", Napi::Function::New(env, Col2imBatch));
  exports.Set("maxPool", Napi::Function::New(env, MaxPool));
  exports.Set("tuneAllocator", Napi::Function::New(env, TuneAllocator));
  exports.Set("qkvAttention", Napi::Function::New(env, QkvAttention));
  exports.Set("qkvAttentionBackward", Napi::Function::New(env, QkvAttentionBackward));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate));
  exports.Set("sumOfSquares", Napi::Function::New(env, SumOfSquares));
}

}  // namespace glimpse
