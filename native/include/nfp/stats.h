// Special functions and two-sample tests used to screen fingerprint candidates.
#pragma once

#include <cstddef>

namespace nfp {
namespace stats {

// Regularized incomplete beta I_x(a, b) for a, b > 0 and x in [0, 1], accurate to about
// 1e-14 relative, including the far tail (x near 0) that tiny p-values live in.
double incomplete_beta(double a, double b, double x);

// Two-sided p-value of Student's t distribution with `df` degrees of freedom (df > 0, may be
// fractional as Welch's is). Returns 1 for t = 0 and 0 for |t| = inf; NaN for NaN input.
double t_two_sided_p(double t, double df);

enum class TTest { kWelch, kStudent };

struct SampleMoments {
  double mean;
  double var;  // unbiased (n - 1)
  double n;
};

struct TwoSampleResult {
  double t;  // (mean1 - mean0) / standard error
  double df;
  double p;  // two-sided
  double d;  // Cohen's d with the pooled standard deviation, (mean1 - mean0) / s_pooled
};

// Compares sample 1 (attacked) against sample 0 (clean). Degenerate cases, chosen so that the
// bank filter (p < p_max, |d| >= d_min) treats them sensibly: equal means with zero spread give
// t = 0, p = 1, d = 0; different means with zero spread give t = d = +-inf, p = 0.
TwoSampleResult two_sample_test(const SampleMoments& clean, const SampleMoments& attacked, TTest test);

}  // namespace stats
}  // namespace nfp
