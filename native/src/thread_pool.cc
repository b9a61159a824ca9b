// The shared worker pool behind parallel_for. A job is split into chunks claimed through an
// atomic counter; the caller works on its own job too and only waits for chunks that other
// threads have already claimed, which is why concurrent and nested calls cannot deadlock.
#include "nfp/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace nfp {
namespace {

struct Job {
  const std::function<void(std::size_t, std::size_t)>* body;
  std::size_t n, chunk, chunks;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> finished{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;

  // Claims and runs chunks until none are left.
  void Work() {
    for (;;) {
      std::size_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      std::size_t begin = c * chunk, end = std::min(n, begin + chunk);
      try {
        (*body)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
};

std::size_t ParseThreadsEnv() {
  const char* env = std::getenv("NFP_THREADS");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 1024) return static_cast<std::size_t>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

class Pool {
 public:
  Pool() { Start(default_threads()); }
  ~Pool() { Stop(); }

  std::size_t size() const { return size_.load(); }

  void Resize(std::size_t n) {
    std::unique_lock<std::shared_mutex> resize_lock(resize_mu_);  // waits for running jobs
    Stop();
    Start(n);
  }

  void Run(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body) {
    std::shared_lock<std::shared_mutex> resize_lock(resize_mu_);
    std::size_t threads = size_.load();
    std::size_t chunk = std::max<std::size_t>(grain, 1);
    // Several chunks per thread balance uneven work; never below the caller's grain.
    std::size_t target_chunks = threads * 4;
    if (n / chunk > target_chunks) chunk = (n + target_chunks - 1) / target_chunks;
    std::size_t chunks = (n + chunk - 1) / chunk;
    if (threads <= 1 || chunks <= 1) {
      body(0, n);
      return;
    }
    auto job = std::make_shared<Job>();
    job->body = &body;
    job->n = n;
    job->chunk = chunk;
    job->chunks = chunks;
    std::size_t helpers = std::min(threads - 1, chunks - 1);
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      for (std::size_t i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1)
      queue_cv_.notify_one();
    else
      queue_cv_.notify_all();
    job->Work();
    {
      std::unique_lock<std::mutex> lock(job->mu);
      job->cv.wait(lock, [&] { return job->finished.load(std::memory_order_acquire) == job->chunks; });
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void Start(std::size_t n) {
    if (n == 0) n = default_threads();
    stop_ = false;
    for (std::size_t i = 1; i < n; ++i) workers_.emplace_back([this] { Loop(); });
    size_.store(n);
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    queue_.clear();
  }

  void Loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->Work();
    }
  }

  std::shared_mutex resize_mu_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> workers_;
  std::atomic<std::size_t> size_{1};
  bool stop_ = false;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destruction order
  return *p;
}

}  // namespace

std::size_t default_threads() {
  static const std::size_t n = ParseThreadsEnv();
  return n;
}

std::size_t threads() { return pool().size(); }

void set_threads(std::size_t n) { pool().Resize(n == 0 ? default_threads() : std::min<std::size_t>(n, 1024)); }

void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body) {
  if (n == 0) return;
  pool().Run(n, grain, body);
}

}  // namespace nfp
