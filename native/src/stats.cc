// Regularized incomplete beta, Student's t tail and the two-sample tests of bank screening.
// The formulas live in shared/stats_math.h so that the CUDA screen kernel runs the same code.
#include "nfp/stats.h"

#include "shared/stats_math.h"

namespace nfp {
namespace stats {

double incomplete_beta(double a, double b, double x) {
  if (math::IsNan(a) || math::IsNan(b) || math::IsNan(x) || a <= 0.0 || b <= 0.0 || x < 0.0 || x > 1.0) {
    return math::Nan();
  }
  return math::IncompleteBeta(a, b, x, 1.0 - x);
}

double t_two_sided_p(double t, double df) { return math::TTwoSidedP(t, df); }

TwoSampleResult two_sample_test(const SampleMoments& clean, const SampleMoments& attacked, TTest test) {
  return math::TwoSampleTest(clean, attacked, test);
}

}  // namespace stats
}  // namespace nfp
