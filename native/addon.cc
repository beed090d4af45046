// N-API entry points of the native backend. Each function runs one whole kernel on the backing
// stores of the Float32Arrays it is given (no copies), after checking that every index the kernel
// will touch lies inside its array: a wrong size throws a RangeError instead of corrupting memory.
// Small integer vectors (shapes, strides, windows) arrive packed in one Float64Array, which is much
// cheaper to read than a JS array. src/backend/native.ts is the only caller.
#include <napi.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "train_addon.h"

namespace glimpse {
namespace {

KernelTable scalarTable, avx2Table, avx512Table;
const KernelTable* active = nullptr;
int threads = 1;

std::vector<std::string> supportedIsas() {
  std::vector<std::string> out;
#if defined(GLIMPSE_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    out.push_back("avx512");
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back("avx2");
#endif
  out.push_back("scalar");
  return out;
}

const KernelTable* tableFor(const std::string& name) {
  for (const auto& isa : supportedIsas()) {
    if (isa != name) continue;
#if defined(GLIMPSE_X86)
    if (name == "avx512") return &avx512Table;
    if (name == "avx2") return &avx2Table;
#endif
    return &scalarTable;
  }
  return nullptr;
}

// Argument access with checks; every failure throws a JS TypeError/RangeError naming the kernel.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* kernel) : info_(info), kernel_(kernel) {}

  [[noreturn]] void fail(const std::string& what, bool range = true) const {
    const std::string msg = std::string("native ") + kernel_ + ": " + what;
    if (range) throw Napi::RangeError::New(info_.Env(), msg);
    throw Napi::TypeError::New(info_.Env(), msg);
  }

  struct F32 {
    float* data;
    int64_t length;
  };

  F32 f32(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      fail(std::string(name) + " must be a Float32Array", false);
    }
    auto a = v.As<Napi::Float32Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }

  F32 f32OrNull(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (v.IsNull() || v.IsUndefined()) return {nullptr, 0};
    return f32(i, name);
  }

  double num(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) fail(std::string(name) + " must be a number", false);
    return v.As<Napi::Number>().DoubleValue();
  }

  // A non-negative integer below 2^53.
  int64_t count(size_t i, const char* name) const {
    const double d = num(i, name);
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) {
      fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }

  // Any integer (strides and offsets may be negative).
  int64_t integer(size_t i, const char* name) const {
    const double d = num(i, name);
    if (!(std::fabs(d) <= 9007199254740991.0) || std::floor(d) != d) {
      fail(std::string(name) + " must be an integer, got " + std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }

  bool flag(size_t i) const { return info_[i].ToBoolean().Value(); }

  // The packed integer vector: a Float64Array of shapes/strides/windows.
  std::vector<int64_t> ints(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      fail(std::string(name) + " must be a Float64Array", false);
    }
    auto a = v.As<Napi::Float64Array>();
    std::vector<int64_t> out(a.ElementLength());
    for (size_t k = 0; k < out.size(); k++) {
      const double d = a[k];
      if (!(std::fabs(d) <= 9007199254740991.0) || std::floor(d) != d) fail(std::string(name) + " must hold integers");
      out[k] = static_cast<int64_t>(d);
    }
    return out;
  }

  // Fails unless `need` elements fit in the array.
  void fits(const F32& a, int64_t need, const char* name) const {
    if (a.data && need > a.length) {
      fail(std::string(name) + " has " + std::to_string(a.length) + " elements, needs " + std::to_string(need));
    }
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* kernel_;
};

// Elements spanned by a batch of `batch` items of `each` elements, `stride` apart (0 broadcasts).
int64_t span(int64_t batch, int64_t stride, int64_t each) {
  if (batch == 0 || each == 0) return 0;
  return (batch - 1) * stride + each;
}

// The index range [lo, hi] reached from `offset` by a strided walk over `shape`; false when empty.
bool reach(int64_t offset, const int64_t* strides, const int64_t* shape, int ndim, int64_t* lo, int64_t* hi) {
  *lo = *hi = offset;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) return false;
    const int64_t ext = (shape[d] - 1) * strides[d];
    if (ext > 0) {
      *hi += ext;
    } else {
      *lo += ext;
    }
  }
  return true;
}

void checkReach(const Args& args, const Args::F32& a, int64_t offset, const int64_t* strides, const int64_t* shape,
                int ndim, const char* name) {
  int64_t lo, hi;
  if (!reach(offset, strides, shape, ndim, &lo, &hi)) return;
  if (lo < 0 || hi >= a.length) {
    args.fail(std::string(name) + " is indexed at [" + std::to_string(lo) + ", " + std::to_string(hi) +
              "] but has " + std::to_string(a.length) + " elements");
  }
}

constexpr int kMaxDims = 16;

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", active->name);
  const auto isas = supportedIsas();
  Napi::Array list = Napi::Array::New(env, isas.size());
  for (size_t i = 0; i < isas.size(); i++) list.Set(static_cast<uint32_t>(i), isas[i]);
  o.Set("isas", list);
  o.Set("threads", threads);
  o.Set("hardwareThreads", static_cast<double>(std::thread::hardware_concurrency()));
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setThreads");
  const int64_t n = args.count(0, "threads");
  if (n < 1 || n > 1024) args.fail("threads must be in [1, 1024], got " + std::to_string(n));
  threads = static_cast<int>(n);
  return info.Env().Undefined();
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Args args(info, "setIsa");
  if (!info[0].IsString()) args.fail("expected an instruction set name", false);
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const KernelTable* t = tableFor(name);
  if (!t) {
    std::string have;
    for (const auto& isa : supportedIsas()) have += (have.empty() ? "" : ", ") + isa;
    args.fail("instruction set '" + name + "' is not available on this CPU (available: " + have + ")");
  }
  active = t;
  return info.Env().Undefined();
}

// gemm(a, b, c, bias, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta, act,
//      packedB): packedB (from packB, for the active ISA) replaces b when given.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Args args(info, "gemm");
  GemmParams p;
  const auto a = args.f32(0, "a"), b = args.f32(1, "b"), c = args.f32(2, "c"), bias = args.f32OrNull(3, "bias");
  p.batch = args.count(4, "batch");
  p.m = args.count(5, "m");
  p.n = args.count(6, "n");
  p.k = args.count(7, "k");
  p.transA = args.flag(8);
  p.transB = args.flag(9);
  p.strideA = args.count(10, "strideA");
  p.strideB = args.count(11, "strideB");
  p.strideC = args.count(12, "strideC");
  p.alpha = static_cast<float>(args.num(13, "alpha"));
  p.beta = static_cast<float>(args.num(14, "beta"));
  p.act = static_cast<int>(args.count(15, "act"));
  if (p.act > kActGelu) args.fail("unknown activation code " + std::to_string(p.act));
  if (p.batch > 1 && p.strideC < p.m * p.n) args.fail("strideC must be at least m * n");
  const auto packed = args.f32OrNull(16, "packedB");
  if (packed.data && p.batch > 1 && p.strideB != 0) args.fail("a packed B cannot be batched (strideB must be 0)");
  args.fits(packed, active->packedBSize(p.k, p.n), "packedB");
  args.fits(a, span(p.batch, p.strideA, p.m * p.k), "a");
  if (!packed.data) args.fits(b, span(p.batch, p.strideB, p.k * p.n), "b");
  args.fits(c, span(p.batch, p.strideC, p.m * p.n), "c");
  args.fits(bias, p.n, "bias");
  p.a = a.data;
  p.b = b.data;
  p.c = c.data;
  p.bias = bias.data;
  p.packedB = packed.data;
  active->gemm(p, threads);
  return info.Env().Undefined();
}

// packedBSize(k, n) -> floats packB writes for the active ISA
Napi::Value PackedBSize(const Napi::CallbackInfo& info) {
  Args args(info, "packedBSize");
  const int64_t k = args.count(0, "k"), n = args.count(1, "n");
  return Napi::Number::New(info.Env(), static_cast<double>(active->packedBSize(k, n)));
}

// packB(b, k, n, transB, out): B in the GEMM's packed layout for the active ISA
Napi::Value PackB(const Napi::CallbackInfo& info) {
  Args args(info, "packB");
  const auto b = args.f32(0, "b");
  const int64_t k = args.count(1, "k"), n = args.count(2, "n");
  const bool transB = args.flag(3);
  const auto out = args.f32(4, "out");
  args.fits(b, k * n, "b");
  if (out.length < active->packedBSize(k, n)) {
    args.fail("out has " + std::to_string(out.length) + " elements, needs " +
              std::to_string(active->packedBSize(k, n)));
  }
  active->packB(b.data, k, n, transB, out.data, threads);
  return info.Env().Undefined();
}

// unary(op, x, out)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args args(info, "unary");
  const int64_t op = args.count(0, "op");
  if (op >= kUnaryCount) args.fail("unknown op code " + std::to_string(op));
  const auto x = args.f32(1, "x"), out = args.f32(2, "out");
  args.fits(out, x.length, "out");
  active->unary(static_cast<int>(op), x.data, out.data, x.length, threads);
  return info.Env().Undefined();
}

// unaryGrad(op, x, y, dy, out)
Napi::Value UnaryGrad(const Napi::CallbackInfo& info) {
  Args args(info, "unaryGrad");
  const int64_t op = args.count(0, "op");
  if (op >= kUnaryCount) args.fail("unknown op code " + std::to_string(op));
  const auto x = args.f32(1, "x"), y = args.f32(2, "y"), dy = args.f32(3, "dy"), out = args.f32(4, "out");
  args.fits(y, x.length, "y");
  args.fits(dy, x.length, "dy");
  args.fits(out, x.length, "out");
  active->unaryGrad(static_cast<int>(op), x.data, y.data, dy.data, out.data, x.length, threads);
  return info.Env().Undefined();
}

// binary(op, a, b, out, meta) with meta = [ndim, shape..., aStrides..., bStrides...]
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args args(info, "binary");
  const int64_t op = args.count(0, "op");
  if (op >= kBinaryCount) args.fail("unknown op code " + std::to_string(op));
  const auto a = args.f32(1, "a"), b = args.f32(2, "b"), out = args.f32(3, "out");
  const auto meta = args.ints(4, "meta");
  const int nd = meta.empty() ? -1 : static_cast<int>(meta[0]);
  if (nd < 0 || nd > kMaxDims || static_cast<int64_t>(meta.size()) < 1 + 3 * nd) args.fail("malformed meta");
  const int64_t* shape = meta.data() + 1;
  const int64_t* as = shape + nd;
  const int64_t* bs = as + nd;
  int64_t total = 1;
  for (int d = 0; d < nd; d++) {
    if (shape[d] < 0 || as[d] < 0 || bs[d] < 0) args.fail("negative shape or stride");
    total *= shape[d];
  }
  if (total == 0) return info.Env().Undefined();
  args.fits(out, total, "out");
  checkReach(args, a, 0, as, shape, nd, "a");
  checkReach(args, b, 0, bs, shape, nd, "b");
  active->binary(static_cast<int>(op), a.data, as, b.data, bs, out.data, shape, nd, threads);
  return info.Env().Undefined();
}

// softmax(x, rows, cols, out, log)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Args args(info, "softmax");
  const auto x = args.f32(0, "x");
  const int64_t rows = args.count(1, "rows"), cols = args.count(2, "cols");
  const auto out = args.f32(3, "out");
  args.fits(x, rows * cols, "x");
  args.fits(out, rows * cols, "out");
  active->softmax(x.data, rows, cols, out.data, args.flag(4), threads);
  return info.Env().Undefined();
}

// layerNorm(x, rows, cols, weight, bias, eps, out, mean, rstd)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Args args(info, "layerNorm");
  const auto x = args.f32(0, "x");
  const int64_t rows = args.count(1, "rows"), cols = args.count(2, "cols");
  const auto w = args.f32OrNull(3, "weight"), b = args.f32OrNull(4, "bias");
  const float eps = static_cast<float>(args.num(5, "eps"));
  const auto out = args.f32(6, "out"), mean = args.f32(7, "mean"), rstd = args.f32(8, "rstd");
  args.fits(x, rows * cols, "x");
  args.fits(out, rows * cols, "out");
  args.fits(w, cols, "weight");
  args.fits(b, cols, "bias");
  args.fits(mean, rows, "mean");
  args.fits(rstd, rows, "rstd");
  active->layerNorm(x.data, rows, cols, w.data, b.data, eps, out.data, mean.data, rstd.data, threads);
  return info.Env().Undefined();
}

// layerNormBackward(x, gy, rows, cols, weight, mean, rstd, gx, gw, gb)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormBackward");
  const auto x = args.f32(0, "x"), gy = args.f32(1, "gy");
  const int64_t rows = args.count(2, "rows"), cols = args.count(3, "cols");
  const auto w = args.f32OrNull(4, "weight"), mean = args.f32(5, "mean"), rstd = args.f32(6, "rstd");
  const auto gx = args.f32(7, "gx"), gw = args.f32OrNull(8, "gw"), gb = args.f32OrNull(9, "gb");
  for (const auto* a : {&x, &gy, &gx}) args.fits(*a, rows * cols, "x, gy and gx");
  for (const auto* a : {&w, &gw, &gb}) args.fits(*a, cols, "weight, gw and gb");
  args.fits(mean, rows, "mean");
  args.fits(rstd, rows, "rstd");
  active->layerNormBackward(x.data, gy.data, rows, cols, w.data, mean.data, rstd.data, gx.data, gw.data, gb.data,
                            threads);
  return info.Env().Undefined();
}

// reduce(op, x, outer, n, inner, out)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Args args(info, "reduce");
  const int64_t op = args.count(0, "op");
  if (op != kSum && op != kMax && op != kMin && op != kProd) args.fail("unsupported op code " + std::to_string(op));
  const auto x = args.f32(1, "x");
  const int64_t outer = args.count(2, "outer"), n = args.count(3, "n"), inner = args.count(4, "inner");
  const auto out = args.f32(5, "out");
  args.fits(x, outer * n * inner, "x");
  args.fits(out, outer * inner, "out");
  active->reduce(static_cast<int>(op), x.data, outer, n, inner, out.data, threads);
  return info.Env().Undefined();
}

// copyStrided(src, dst, accumulate, meta) with meta = [ndim, srcOffset, dstOffset, shape...,
// srcStrides..., dstStrides...]
Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  Args args(info, "copyStrided");
  const auto src = args.f32(0, "src"), dst = args.f32(1, "dst");
  const bool accumulate = args.flag(2);
  const auto meta = args.ints(3, "meta");
  const int nd = meta.empty() ? -1 : static_cast<int>(meta[0]);
  if (nd < 0 || nd > kMaxDims || static_cast<int64_t>(meta.size()) < 3 + 3 * nd) args.fail("malformed meta");
  const int64_t srcOffset = meta[1], dstOffset = meta[2];
  const int64_t* shape = meta.data() + 3;
  const int64_t* ss = shape + nd;
  const int64_t* ds = ss + nd;
  for (int d = 0; d < nd; d++) {
    if (shape[d] < 0) args.fail("negative shape");
    if (shape[d] == 0) return info.Env().Undefined();
  }
  checkReach(args, src, srcOffset, ss, shape, nd, "src");
  checkReach(args, dst, dstOffset, ds, shape, nd, "dst");
  active->copyStrided(src.data + srcOffset, ss, shape, nd, dst.data + dstOffset, ds, accumulate, threads);
  return info.Env().Undefined();
}

// attention(q, k, v, out, mask, probs, meta, scale) and attentionBackward(..., gradOut, gq, gk, gv)
// with meta = [batch, heads, nq, nk, d, dv, causal, maskStride0, maskStride1, maskStride2]
AttentionParams attentionParams(const Args& args) {
  AttentionParams p{};
  const auto q = args.f32(0, "q"), k = args.f32(1, "k"), v = args.f32(2, "v"), out = args.f32OrNull(3, "out");
  const auto mask = args.f32OrNull(4, "mask"), probs = args.f32OrNull(5, "probs");
  const auto meta = args.ints(6, "meta");
  if (meta.size() < 10) args.fail("malformed meta");
  for (int i = 0; i < 10; i++) {
    if (meta[i] < 0) args.fail("negative size or stride");
  }
  p.batch = meta[0];
  p.heads = meta[1];
  p.nq = meta[2];
  p.nk = meta[3];
  p.d = meta[4];
  p.dv = meta[5];
  p.causal = meta[6] != 0;
  p.maskStride[0] = meta[7];
  p.maskStride[1] = meta[8];
  p.maskStride[2] = meta[9];
  p.scale = static_cast<float>(args.num(7, "scale"));
  const int64_t bh = p.batch * p.heads;
  args.fits(q, bh * p.nq * p.d, "q");
  args.fits(k, bh * p.nk * p.d, "k");
  args.fits(v, bh * p.nk * p.dv, "v");
  args.fits(out, bh * p.nq * p.dv, "out");
  args.fits(probs, bh * p.nq * p.nk, "probs");
  if (mask.data && bh > 0 && p.nq > 0 && p.nk > 0) {
    args.fits(mask,
              (p.batch - 1) * p.maskStride[0] + (p.heads - 1) * p.maskStride[1] + (p.nq - 1) * p.maskStride[2] +
                  p.nk,
              "mask");
  }
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.out = out.data;
  p.mask = mask.data;
  p.probs = probs.data;
  return p;
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args args(info, "attention");
  AttentionParams p = attentionParams(args);
  if (!p.out) args.fail("out must be a Float32Array", false);
  active->attention(p, threads);
  return info.Env().Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionBackward");
  AttentionParams p = attentionParams(args);
  const auto go = args.f32(8, "gradOut"), gq = args.f32(9, "gq"), gk = args.f32(10, "gk"), gv = args.f32(11, "gv");
  const int64_t bh = p.batch * p.heads;
  args.fits(go, bh * p.nq * p.dv, "gradOut");
  args.fits(gq, bh * p.nq * p.d, "gq");
  args.fits(gk, bh * p.nk * p.d, "gk");
  args.fits(gv, bh * p.nk * p.dv, "gv");
  p.gradOut = go.data;
  p.gq = gq.data;
  p.gk = gk.data;
  p.gv = gv.data;
  active->attentionBackward(p, threads);
  return info.Env().Undefined();
}

// A window from meta = [inSize(3), outSize(3), kernel(3), stride(3), padding(3), dilation(3)].
Window windowFrom(const Args& args, size_t i) {
  const auto meta = args.ints(i, "window");
  if (meta.size() < 18) args.fail("malformed window");
  Window w;
  for (int d = 0; d < 3; d++) {
    w.inSize[d] = meta[d];
    w.outSize[d] = meta[3 + d];
    w.kernel[d] = meta[6 + d];
    w.stride[d] = meta[9 + d];
    w.padding[d] = meta[12 + d];
    w.dilation[d] = meta[15 + d];
    if (w.inSize[d] < 0 || w.outSize[d] < 0 || w.kernel[d] < 0 || w.stride[d] < 1 || w.dilation[d] < 1) {
      args.fail("window sizes must be non-negative and stride/dilation positive");
    }
  }
  return w;
}

int64_t plane(const int64_t* s) { return s[0] * s[1] * s[2]; }

// im2col(x, channels, window, cols)
Napi::Value Im2col(const Napi::CallbackInfo& info) {
  Args args(info, "im2col");
  const auto x = args.f32(0, "x");
  const int64_t channels = args.count(1, "channels");
  const Window w = windowFrom(args, 2);
  const auto cols = args.f32(3, "cols");
  args.fits(x, channels * plane(w.inSize), "x");
  args.fits(cols, channels * plane(w.kernel) * plane(w.outSize), "cols");
  active->im2col(x.data, channels, w, cols.data, threads);
  return info.Env().Undefined();
}

// col2im(cols, channels, window, x)
Napi::Value Col2im(const Napi::CallbackInfo& info) {
  Args args(info, "col2im");
  const auto cols = args.f32(0, "cols");
  const int64_t channels = args.count(1, "channels");
  const Window w = windowFrom(args, 2);
  const auto x = args.f32(3, "x");
  args.fits(x, channels * plane(w.inSize), "x");
  args.fits(cols, channels * plane(w.kernel) * plane(w.outSize), "cols");
  active->col2im(cols.data, channels, w, x.data, threads);
  return info.Env().Undefined();
}

// depthwiseConv(x, weight, bias, batch, channels, multiplier, window, out)
Napi::Value DepthwiseConv(const Napi::CallbackInfo& info) {
  Args args(info, "depthwiseConv");
  const auto x = args.f32(0, "x"), weight = args.f32(1, "weight"), bias = args.f32OrNull(2, "bias");
  const int64_t batch = args.count(3, "batch"), channels = args.count(4, "channels");
  const int64_t multiplier = args.count(5, "multiplier");
  const Window w = windowFrom(args, 6);
  const auto out = args.f32(7, "out");
  args.fits(x, batch * channels * plane(w.inSize), "x");
  args.fits(weight, channels * multiplier * plane(w.kernel), "weight");
  args.fits(bias, channels * multiplier, "bias");
  args.fits(out, batch * channels * multiplier * plane(w.outSize), "out");
  active->depthwiseConv(x.data, weight.data, bias.data, batch, channels, multiplier, w, out.data, threads);
  return info.Env().Undefined();
}

// depthwiseConvBackward(x, weight, gy, batch, channels, multiplier, window, gx, gw)
Napi::Value DepthwiseConvBackward(const Napi::CallbackInfo& info) {
  Args args(info, "depthwiseConvBackward");
  const auto x = args.f32(0, "x"), weight = args.f32(1, "weight"), gy = args.f32(2, "gy");
  const int64_t batch = args.count(3, "batch"), channels = args.count(4, "channels");
  const int64_t multiplier = args.count(5, "multiplier");
  const Window w = windowFrom(args, 6);
  const auto gx = args.f32OrNull(7, "gx"), gw = args.f32OrNull(8, "gw");
  args.fits(x, batch * channels * plane(w.inSize), "x");
  args.fits(gx, batch * channels * plane(w.inSize), "gx");
  args.fits(weight, channels * multiplier * plane(w.kernel), "weight");
  args.fits(gw, channels * multiplier * plane(w.kernel), "gw");
  args.fits(gy, batch * channels * multiplier * plane(w.outSize), "gy");
  active->depthwiseConvBackward(x.data, weight.data, gy.data, batch, channels, multiplier, w, gx.data, gw.data,
                                threads);
  return info.Env().Undefined();
}

// fmaPeak(iterations, threads) -> floating-point operations done
Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Args args(info, "fmaPeak");
  const int64_t iterations = args.count(0, "iterations"), n = args.count(1, "threads");
  if (n < 1 || n > 1024) args.fail("threads must be in [1, 1024]");
  return Napi::Number::New(info.Env(), active->fmaPeak(iterations, static_cast<int>(n)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  scalar::fillTable(&scalarTable);
#if defined(GLIMPSE_X86)
  avx2::fillTable(&avx2Table);
  avx512::fillTable(&avx512Table);
#endif
  active = tableFor(supportedIsas().front());
  const unsigned hw = std::thread::hardware_concurrency();
  threads = hw > 0 ? static_cast<int>(hw) : 1;
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("packedBSize", Napi::Function::New(env, PackedBSize));
  exports.Set("packB", Napi::Function::New(env, PackB));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("unaryGrad", Napi::Function::New(env, UnaryGrad));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("copyStrided", Napi::Function::New(env, CopyStrided));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
  exports.Set("im2col", Napi::Function::New(env, Im2col));
  exports.Set("col2im", Napi::Function::New(env, Col2im));
  exports.Set("depthwiseConv", Napi::Function::New(env, DepthwiseConv));
  exports.Set("depthwiseConvBackward", Napi::Function::New(env, DepthwiseConvBackward));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  registerTrainKernels(env, exports, &active, &threads);
  return exports;
}

}  // namespace
}  // namespace glimpse

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return glimpse::Init(env, exports); }

NODE_API_MODULE(glimpse_native, InitModule)
