// A fixed-size pool of worker threads for data-parallel loops. The calling thread takes part in the
// work, so a pool of N threads keeps N cores busy with N-1 workers.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nd {

class ThreadPool {
 public:
  // cpuSet: the logical CPUs the workers are pinned to (empty: no pinning).
  explicit ThreadPool(int threads, std::vector<int> cpuSet = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return int(workers_.size()) + 1; }
  const std::vector<int>& cpuSet() const { return cpuSet_; }

  // Runs fn(begin, end) over [0, n) split in chunks of at least `grain` items; returns when all are
  // done. Exceptions thrown by fn are rethrown here (the first one). Safe to call from several
  // threads at once (calls are serialised); a nested call from inside fn runs inline.
  void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void workerLoop(int id);

  std::vector<std::thread> workers_;
  std::vector<int> cpuSet_;
  std::mutex submitMutex_;  // one parallelFor at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t jobN_ = 0, jobChunk_ = 0, nextChunk_ = 0, chunks_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

// pool->parallelFor(n, grain, fn) when there is a pool and more than one grain of work, else fn(0, n)
// on the calling thread (small inputs do not wake the workers).
void parallelForOrInline(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Number of logical CPUs this process may run on (sched_getaffinity, not the machine total).
int availableCpus();
// Their ids, in order (what virtual devices are pinned to).
std::vector<int> availableCpuList();
// Default thread count: env ND_THREADS if a positive integer, else availableCpus().
int defaultThreadCount();

}  // namespace nd
