// The worker pool, bank validation and backend choice.
#include <atomic>
#include <stdexcept>
#include <thread>

#include "check.h"
#include "nfp/backend.h"
#include "nfp/bank.h"
#include "nfp/thread_pool.h"
#include "reference.h"

TEST(parallel_for_covers_every_index_once) {
  for (std::size_t threads : {1u, 2u, 5u}) {
    nfp::set_threads(threads);
    for (std::size_t n : {0u, 1u, 7u, 1000u, 100003u}) {
      for (std::size_t grain : {1u, 3u, 4096u}) {
        std::vector<std::atomic<int>> hits(n);
        nfp::parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
          CHECK(b < e && e <= n);
          for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (auto& h : hits) CHECK(h.load() == 1);
      }
    }
  }
  nfp::set_threads(0);
  CHECK(nfp::threads() == nfp::default_threads());
}

TEST(parallel_for_from_many_threads_at_once) {
  nfp::set_threads(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) {
        nfp::parallel_for(1000, 10, [&](std::size_t b, std::size_t e) { total += static_cast<long>(e - b); });
      }
    });
  }
  for (auto& c : callers) c.join();
  CHECK(total.load() == 8L * 50 * 1000);
  nfp::set_threads(0);
}

TEST(parallel_for_propagates_exceptions) {
  nfp::set_threads(2);
  bool caught = false;
  try {
    nfp::parallel_for(100, 1, [](std::size_t b, std::size_t e) {
      if (b <= 50 && 50 < e) throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
  nfp::set_threads(0);
}

TEST(bank_validation) {
  std::mt19937_64 rng(9);
  auto d = reference::RandomBank(rng, 10, 3, 4, 2);
  nfp::Status st;
  CHECK(nfp::Bank::Create(d.spec(), &st) != nullptr && st.ok());
  auto bad = d;
  bad.indices[5] = 10;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.code == nfp::Code::kOutOfRange && st.argument == "indices");
  CHECK_MSG(st.message.find("indices[5]") != std::string::npos, st.message);
  bad = d;
  bad.sd0[1] = 0.0f;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "sd0");
  bad = d;
  bad.sd1[7] = -1.0f;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "sd1");
  bad = d;
  bad.sd1[2] = INFINITY;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "sd1");
  bad = d;
  bad.mu1[3] = NAN;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.code == nfp::Code::kNonFinite && st.argument == "mu1");
  bad = d;
  bad.k = 0;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "k");
  bad = d;
  bad.families = 0;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "families");
  bad = d;
  bad.neurons = 0;
  CHECK(nfp::Bank::Create(bad.spec(), &st) == nullptr && st.argument == "neurons");
}

TEST(backend_choice) {
  nfp::BackendChoice c;
  CHECK(nfp::choose_backend("cpu", &c).ok() && c.kind == nfp::BackendKind::kCpu);
  CHECK(nfp::choose_backend("auto", &c).ok());
  const auto& cuda = nfp::cuda_info();
  CHECK(c.kind == (cuda.usable() ? nfp::BackendKind::kCuda : nfp::BackendKind::kCpu));
  CHECK(!c.message.empty());
  auto st = nfp::choose_backend("cuda", &c);
  CHECK(st.ok() == cuda.usable());
  if (!cuda.usable()) CHECK(st.code == nfp::Code::kUnavailable && !cuda.reason.empty());
  CHECK(nfp::choose_backend("tpu", &c).code == nfp::Code::kInvalidArgument);
#ifdef NFP_WITH_CUDA
  CHECK(cuda.compiled);
#else
  CHECK(!cuda.compiled);
#endif
  std::printf("    cuda: compiled=%d devices=%d reason=%s\n", cuda.compiled, cuda.devices, cuda.reason.c_str());
}

CHECK_MAIN()
