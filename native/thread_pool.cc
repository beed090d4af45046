// A persistent pool of worker threads, created on first use and grown on demand. Workers spin for a
// short while after each run (kernels tend to come in quick succession) and then sleep on a
// condition variable, so an idle process costs no CPU. The libuv pool is not used: it has 4 threads
// shared with file I/O.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define GLIMPSE_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define GLIMPSE_PAUSE() asm volatile("yield")
#else
#define GLIMPSE_PAUSE() ((void)0)
#endif

#include "kernels.h"

namespace glimpse {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSpin = std::chrono::microseconds(200);

class Pool {
 public:
  void run(int n, ParallelBody body, void* ctx) {
    grow(n - 1);
    body_ = body;
    ctx_ = ctx;
    active_ = n;
    // Every worker acknowledges every run, participating or not, so that none can still be reading
    // this run's fields when the next one overwrites them.
    remaining_.store(workers_, std::memory_order_relaxed);
    barrierCount_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    inside_ = true;
    body(ctx, 0, n);
    inside_ = false;
    waitFor([&] { return remaining_.load(std::memory_order_acquire) == 0; });
  }

  // Sense-reversing barrier over the `active_` threads of the current run.
  void barrier() {
    const uint32_t phase = barrierPhase_.load(std::memory_order_acquire);
    if (barrierCount_.fetch_add(1, std::memory_order_acq_rel) + 1 == active_) {
      barrierCount_.store(0, std::memory_order_relaxed);
      barrierPhase_.store(phase + 1, std::memory_order_release);
      return;
    }
    waitFor([&] { return barrierPhase_.load(std::memory_order_acquire) != phase; });
  }

  static thread_local bool inside_;

 private:
  template <class Done>
  static void waitFor(Done done) {
    for (int i = 0; !done(); i++) {
      if (i < 4096) {
        GLIMPSE_PAUSE();
      } else {
        // Another process may hold our core: let it run rather than spin against it.
        std::this_thread::yield();
      }
    }
  }

  void grow(int workers) {
    while (workers_ < workers) {
      const int id = workers_ + 1;
      // The worker starts from the current generation, so it cannot miss the run about to start.
      const uint64_t seen = generation_.load(std::memory_order_acquire);
      std::thread([this, id, seen] { loop(id, seen); }).detach();
      workers_++;
    }
  }

  void loop(int id, uint64_t seen) {
    inside_ = true;
    for (;;) {
      const auto spinUntil = Clock::now() + kSpin;
      int i = 0;
      while (generation_.load(std::memory_order_acquire) == seen) {
        GLIMPSE_PAUSE();
        if (++i % 64 == 0 && Clock::now() > spinUntil) {
          std::unique_lock<std::mutex> lock(mu_);
          sleeping_.fetch_add(1, std::memory_order_acq_rel);
          cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          sleeping_.fetch_sub(1, std::memory_order_acq_rel);
        }
      }
      seen = generation_.load(std::memory_order_acquire);
      if (id < active_) body_(ctx_, id, active_);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int workers_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int> barrierCount_{0};
  std::atomic<uint32_t> barrierPhase_{0};
  ParallelBody body_ = nullptr;
  void* ctx_ = nullptr;
  int active_ = 1;
};

thread_local bool Pool::inside_ = false;

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void parallelRun(int nthreads, ParallelBody body, void* ctx) {
  if (nthreads <= 1 || Pool::inside_) {
    body(ctx, 0, 1);
    return;
  }
  pool().run(nthreads, body, ctx);
}

void poolBarrier(int nthreads) {
  if (nthreads <= 1) return;
  pool().barrier();
}

}  // namespace glimpse
