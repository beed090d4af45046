// A persistent pool of worker threads, created on first use and grown on demand.
//
// Work is split into chunks that threads claim from an atomic counter, and the calling thread works
// too: a worker that wakes late (on a machine shared with other processes it may not be scheduled
// for milliseconds) simply finds fewer chunks, instead of the caller waiting for its static share.
// The caller waits only for workers that have joined the run and hold a chunk.
//
// Workers spin for a short while after each run (kernels come in quick succession) and then sleep
// on a condition variable, so an idle process costs no CPU. The libuv pool is not used: it has 4
// threads shared with file I/O.
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
constexpr auto kSpin = std::chrono::microseconds(50);

// The run state packed in one word so that joining and closing are single atomic steps:
// bits 32..63 generation (odd while the run is open), 16..31 threads joined, 0..15 threads active.
constexpr uint64_t kActive = 1, kJoined = uint64_t{1} << 16, kGeneration = uint64_t{1} << 32;
constexpr uint64_t generationOf(uint64_t s) { return s >> 32; }
constexpr uint64_t joinedOf(uint64_t s) { return (s >> 16) & 0xffff; }
constexpr uint64_t activeOf(uint64_t s) { return s & 0xffff; }

template <class Done>
void waitFor(Done done) {
  for (int i = 0; !done(); i++) {
    if (i < 2048) {
      GLIMPSE_PAUSE();
    } else {
      // Another process may hold our core: let it run rather than spin against it.
      std::this_thread::yield();
    }
  }
}

class Pool {
 public:
  void run(int threads, int64_t chunks, ChunkBody body, void* ctx) {
    grow(threads - 1);
    body_ = body;
    ctx_ = ctx;
    chunks_ = chunks;
    maxJoin_ = static_cast<uint64_t>(threads - 1);
    next_.store(0, std::memory_order_relaxed);
    {
      // Opening the run under the mutex pairs with the sleepers' predicate check.
      std::lock_guard<std::mutex> lock(mu_);
      state_.fetch_add(kGeneration, std::memory_order_release);  // even -> odd: open
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    inside_ = true;
    work(0);
    inside_ = false;
    // Close the run once no joined worker is still inside it; late workers then see it closed.
    for (;;) {
      uint64_t s = state_.load(std::memory_order_acquire);
      if (activeOf(s) == 0) {
        const uint64_t closed = (generationOf(s) + 1) * kGeneration;
        if (state_.compare_exchange_weak(s, closed, std::memory_order_acq_rel)) break;
        continue;
      }
      waitFor([&] { return activeOf(state_.load(std::memory_order_acquire)) == 0; });
    }
  }

  static thread_local bool inside_;

 private:
  void work(int tid) {
    for (int64_t c = next_.fetch_add(1, std::memory_order_relaxed); c < chunks_;
         c = next_.fetch_add(1, std::memory_order_relaxed)) {
      body_(ctx_, c, tid);
    }
  }

  void grow(int workers) {
    while (workers_ < workers) {
      workers_++;
      std::thread([this] { loop(); }).detach();
    }
  }

  void loop() {
    inside_ = true;
    uint64_t seen = 0;  // the last generation this worker looked at
    for (;;) {
      const auto spinUntil = Clock::now() + kSpin;
      int i = 0;
      uint64_t s;
      while (generationOf(s = state_.load(std::memory_order_acquire)) == seen || generationOf(s) % 2 == 0) {
        GLIMPSE_PAUSE();
        if (++i % 64 == 0 && Clock::now() > spinUntil) {
          std::unique_lock<std::mutex> lock(mu_);
          sleeping_.fetch_add(1, std::memory_order_acq_rel);
          cv_.wait(lock, [&] {
            const uint64_t g = generationOf(state_.load(std::memory_order_acquire));
            return g != seen && g % 2 == 1;
          });
          sleeping_.fetch_sub(1, std::memory_order_acq_rel);
        }
      }
      seen = generationOf(s);
      // Join unless the run is already full or has closed meanwhile.
      while (generationOf(s) == seen && joinedOf(s) < maxJoin_) {
        if (state_.compare_exchange_weak(s, s + kJoined + kActive, std::memory_order_acq_rel)) {
          work(static_cast<int>(joinedOf(s)) + 1);
          state_.fetch_sub(kActive, std::memory_order_acq_rel);
          break;
        }
      }
    }
  }

  int workers_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<int64_t> next_{0};
  // Written by the caller before the run opens, read by joined workers.
  ChunkBody body_ = nullptr;
  void* ctx_ = nullptr;
  int64_t chunks_ = 0;
  uint64_t maxJoin_ = 0;
};

thread_local bool Pool::inside_ = false;

// One run at a time: a second caller (another worker_thread of the same process using the addon)
// works alone rather than wait.
std::mutex runMutex;

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void parallelChunks(int threads, int64_t chunks, ChunkBody body, void* ctx) {
  std::unique_lock<std::mutex> lock(runMutex, std::defer_lock);
  if (threads <= 1 || chunks <= 1 || Pool::inside_ || !lock.try_lock()) {
    for (int64_t c = 0; c < chunks; c++) body(ctx, c, 0);
    return;
  }
  pool().run(threads, chunks, body, ctx);
}

}  // namespace glimpse
