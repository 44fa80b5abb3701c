#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace nd {

namespace {
thread_local bool tInsidePool = false;

void pinCurrentThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  // Pinning is an optimisation; a refusal (containers, cgroups) is not an error.
  (void)sched_setaffinity(0, sizeof(set), &set);
}
}  // namespace

std::vector<int> availableCpuList() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  if (out.empty())
    for (int c = 0; c < availableCpus(); ++c) out.push_back(c);
  return out;
}

int availableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

int defaultThreadCount() {
  if (const char* env = std::getenv("ND_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end && *end == '\0' && v > 0 && v <= 1024) return int(v);
  }
  return availableCpus();
}

ThreadPool::ThreadPool(int threads, std::vector<int> cpuSet) : cpuSet_(std::move(cpuSet)) {
  ND_REQUIRE(threads >= 1 && threads <= 1024, Arg,
             "Expected thread count in [1, 1024] but received " + std::to_string(threads));
  workers_.reserve(size_t(threads - 1));
  try {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this, i] { workerLoop(i); });
  } catch (const std::exception& e) {
    // Out of threads (pids limit, memory): stop and join the ones that started, then report it;
    // leaving joinable threads behind would terminate the process.
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    size_t started = workers_.size();
    for (auto& t : workers_) t.join();
    workers_.clear();
    fail(ErrorCode::Oom, "Could not start " + std::to_string(threads) + " threads (" + std::to_string(started + 1) +
                             " running): " + e.what());
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::workerLoop(int) {
  pinCurrentThread(cpuSet_);
  tInsidePool = true;
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lk(mutex_);
  for (;;) {
    wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    while (nextChunk_ < chunks_) {
      int64_t c = nextChunk_++;
      auto* fn = job_;
      int64_t b = c * jobChunk_, e = std::min(jobN_, b + jobChunk_);
      lk.unlock();
      try {
        (*fn)(b, e);
      } catch (...) {
        lk.lock();
        if (!error_) error_ = std::current_exception();
        lk.unlock();
      }
      lk.lock();
      if (++finished_ == chunks_) done_.notify_all();
    }
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t maxChunks = std::max<int64_t>(1, n / grain);
  int64_t chunks = std::min<int64_t>(maxChunks, int64_t(threads()) * 4);
  if (chunks <= 1 || workers_.empty() || tInsidePool) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> submit(submitMutex_);
  std::unique_lock<std::mutex> lk(mutex_);
  job_ = &fn;
  jobN_ = n;
  jobChunk_ = (n + chunks - 1) / chunks;
  chunks_ = (n + jobChunk_ - 1) / jobChunk_;
  nextChunk_ = 0;
  finished_ = 0;
  error_ = nullptr;
  ++generation_;
  wake_.notify_all();
  // The caller works too, then waits for the stragglers.
  bool wasInside = tInsidePool;
  tInsidePool = true;
  while (nextChunk_ < chunks_) {
    int64_t c = nextChunk_++;
    int64_t b = c * jobChunk_, e = std::min(jobN_, b + jobChunk_);
    lk.unlock();
    try {
      fn(b, e);
    } catch (...) {
      lk.lock();
      if (!error_) error_ = std::current_exception();
      lk.unlock();
    }
    lk.lock();
    ++finished_;
  }
  tInsidePool = wasInside;
  done_.wait(lk, [&] { return finished_ == chunks_; });
  job_ = nullptr;
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void parallelForOrInline(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && n > grain) pool->parallelFor(n, grain, fn);
  else fn(0, n);
}

}  // namespace nd
