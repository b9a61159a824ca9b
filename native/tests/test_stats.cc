// Special functions and two-sample tests against scipy (fixtures from scripts/gen_ttest_fixtures.py).
#include <fstream>
#include <sstream>
#include <string>

#include "check.h"
#include "nfp/stats.h"

using nfp::stats::incomplete_beta;
using nfp::stats::t_two_sided_p;

namespace {

std::string DataPath(const char* name) { return std::string(NFP_TEST_DATA_DIR) + "/" + name; }

std::vector<std::vector<double>> ReadRows(const char* name) {
  std::ifstream in(DataPath(name));
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::vector<double> row;
    double v;
    while (ls >> v) row.push_back(v);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

TEST(incomplete_beta_closed_forms) {
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1-x)^b; I_{1/2}(a, a) = 1/2.
  for (double x : {0.0, 1e-12, 0.1, 0.37, 0.5, 0.9, 1.0}) {
    CHECK_CLOSE(incomplete_beta(1, 1, x), x, 1e-14, 1e-300);
    CHECK_CLOSE(incomplete_beta(3.5, 1, x), std::pow(x, 3.5), 1e-13, 1e-300);
    CHECK_CLOSE(incomplete_beta(1, 2.5, x), 1 - std::pow(1 - x, 2.5), 1e-13, 1e-15);
  }
  for (double a : {0.5, 1.0, 7.0, 250.0}) CHECK_CLOSE(incomplete_beta(a, a, 0.5), 0.5, 1e-13, 0);
  CHECK(std::isnan(incomplete_beta(-1, 1, 0.5)));
  CHECK(std::isnan(incomplete_beta(1, 1, 1.5)));
  CHECK(std::isnan(incomplete_beta(1, 1, std::nan(""))));
}

TEST(t_p_value_matches_scipy) {
  auto rows = ReadRows("t_dist.tsv");
  CHECK(rows.size() > 700);
  double worst = 0;
  for (auto& r : rows) {
    const double p = t_two_sided_p(r[0], r[1]);
    if (r[2] > 1e-300) {
      const double rel = std::fabs(p - r[2]) / r[2];
      worst = std::max(worst, rel);
      CHECK_MSG(rel < 1e-9, "t=" + std::to_string(r[0]) + " df=" + std::to_string(r[1]) + " p=" + std::to_string(p) +
                                " scipy=" + std::to_string(r[2]));
    } else {
      CHECK(p < 1e-290);
    }
  }
  std::printf("    worst relative error vs scipy: %.3g over %zu values\n", worst, rows.size());
}

TEST(t_p_value_edges) {
  CHECK(t_two_sided_p(0, 10) == 1.0);
  CHECK(t_two_sided_p(INFINITY, 10) == 0.0);
  CHECK(t_two_sided_p(-INFINITY, 10) == 0.0);
  CHECK(std::isnan(t_two_sided_p(NAN, 10)));
  CHECK(std::isnan(t_two_sided_p(1, 0)));
  CHECK(t_two_sided_p(3, 5) == t_two_sided_p(-3, 5));
}

TEST(two_sample_tests_match_scipy) {
  auto rows = ReadRows("ttest_from_stats.tsv");
  CHECK(rows.size() == 300);
  for (auto& r : rows) {
    nfp::stats::SampleMoments c{r[0], r[1] * r[1], r[2]}, a{r[3], r[4] * r[4], r[5]};
    auto w = nfp::stats::two_sample_test(c, a, nfp::stats::TTest::kWelch);
    auto s = nfp::stats::two_sample_test(c, a, nfp::stats::TTest::kStudent);
    CHECK_CLOSE(w.t, r[6], 1e-11, 1e-13);
    CHECK_CLOSE(w.p, r[7], 1e-8, 1e-300);
    CHECK_CLOSE(s.t, r[8], 1e-11, 1e-13);
    CHECK_CLOSE(s.p, r[9], 1e-8, 1e-300);
  }
}

TEST(two_sample_degenerate_cases) {
  using nfp::stats::TTest;
  nfp::stats::SampleMoments same{1.0, 0.0, 10}, higher{2.0, 0.0, 10};
  auto eq = nfp::stats::two_sample_test(same, same, TTest::kWelch);
  CHECK(eq.t == 0 && eq.p == 1 && eq.d == 0);
  auto up = nfp::stats::two_sample_test(same, higher, TTest::kWelch);
  CHECK(std::isinf(up.t) && up.t > 0 && up.p == 0 && std::isinf(up.d) && up.d > 0);
  auto down = nfp::stats::two_sample_test(higher, same, TTest::kStudent);
  CHECK(down.t < 0 && std::isinf(down.t) && down.p == 0 && down.d < 0);
  nfp::stats::SampleMoments nan_mean{NAN, 1.0, 10};
  auto bad = nfp::stats::two_sample_test(nan_mean, same, TTest::kWelch);
  CHECK(std::isnan(bad.t) && std::isnan(bad.p) && std::isnan(bad.d));
}

CHECK_MAIN()
