// The special functions and two-sample tests of screening, written once for the host and the
// device (nvcc compiles them into the CUDA screen kernel, so p-values never leave the GPU).
// Only C math functions that CUDA also provides on the device are used.
#pragma once

#include <math.h>

#include <limits>

#include "nfp/kernels.h"
#include "nfp/stats.h"
#include "shared/hd.h"

namespace nfp {
namespace stats {
namespace math {

NFP_HD bool IsNan(double x) { return x != x; }
NFP_HD bool IsInf(double x) {
  return x == std::numeric_limits<double>::infinity() || x == -std::numeric_limits<double>::infinity();
}
NFP_HD double Nan() { return std::numeric_limits<double>::quiet_NaN(); }
NFP_HD double Inf() { return std::numeric_limits<double>::infinity(); }

// Continued fraction of I_x(a, b) (modified Lentz); converges quickly for x < (a+1)/(a+b+2).
NFP_HD double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-16;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 100000; ++m) {
    double m2 = 2.0 * m;
    double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + num * d;
    if (fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + num * d;
    if (fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    double delta = d * c;
    h *= delta;
    if (fabs(delta - 1.0) < kEps) break;
  }
  return h;
}

// I_x(a, b) given both x and y = 1 - x, so callers that know y exactly (the t tail, where
// y = t^2 / (df + t^2)) avoid cancellation in 1 - x.
NFP_HD double IncompleteBeta(double a, double b, double x, double y) {
  if (x <= 0.0) return 0.0;
  if (y <= 0.0) return 1.0;
  double log_front = a * log(x) + b * log(y) - (lgamma(a) + lgamma(b) - lgamma(a + b));
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return exp(log_front) * BetaContinuedFraction(a, b, x) / a;
  }
  return 1.0 - exp(log_front) * BetaContinuedFraction(b, a, y) / b;
}

NFP_HD double TTwoSidedP(double t, double df) {
  if (IsNan(t) || IsNan(df) || df <= 0.0) return Nan();
  if (IsInf(t)) return 0.0;
  if (t == 0.0) return 1.0;
  double t2 = t * t;
  // p = I_{df/(df+t^2)}(df/2, 1/2); for large |t| the argument is tiny and the tail exact.
  double x = df / (df + t2);
  double y = t2 / (df + t2);
  double p = IncompleteBeta(0.5 * df, 0.5, x, y);
  return p > 1.0 ? 1.0 : p;
}

NFP_HD TwoSampleResult TwoSampleTest(const SampleMoments& clean, const SampleMoments& attacked, TTest test) {
  const double n0 = clean.n, n1 = attacked.n;
  const double v0 = clean.var > 0.0 ? clean.var : 0.0;
  const double v1 = attacked.var > 0.0 ? attacked.var : 0.0;
  const double diff = attacked.mean - clean.mean;
  const double pooled_var = ((n0 - 1.0) * v0 + (n1 - 1.0) * v1) / (n0 + n1 - 2.0);

  TwoSampleResult r{};
  double se2;
  if (test == TTest::kWelch) {
    const double q0 = v0 / n0, q1 = v1 / n1;
    se2 = q0 + q1;
    const double denom = q0 * q0 / (n0 - 1.0) + q1 * q1 / (n1 - 1.0);
    r.df = denom > 0.0 ? se2 * se2 / denom : n0 + n1 - 2.0;
  } else {
    se2 = pooled_var * (1.0 / n0 + 1.0 / n1);
    r.df = n0 + n1 - 2.0;
  }
  if (IsNan(diff) || IsNan(se2)) {
    r.t = r.p = r.d = Nan();
    return r;
  }
  if (se2 > 0.0) {
    r.t = diff / sqrt(se2);
    r.p = TTwoSidedP(r.t, r.df);
  } else {
    r.t = diff == 0.0 ? 0.0 : (diff > 0.0 ? Inf() : -Inf());
    r.p = diff == 0.0 ? 1.0 : 0.0;
  }
  if (pooled_var > 0.0) {
    r.d = diff / sqrt(pooled_var);
  } else {
    r.d = diff == 0.0 ? 0.0 : (diff > 0.0 ? Inf() : -Inf());
  }
  return r;
}

// The statistics of one candidate from the moments of its per-image subset *sums* about
// `shift` (the sum on the first clean image): s = sum (x - shift), ss = sum (x - shift)^2 over
// n0 clean and n1 attacked images. Divides by k (and k^2) to get the subset means' moments.
struct CandidateStats {
  double mu0, sd0, mu1, sd1;
  TwoSampleResult test;
};

NFP_HD CandidateStats FromSumMoments(double s0, double ss0, double n0, double s1, double ss1, double n1, double shift,
                                     double k, TTest test) {
  const double mean_shift = shift / k;
  double var0 = (ss0 - s0 * s0 / n0) / (n0 - 1.0) / (k * k);
  double var1 = (ss1 - s1 * s1 / n1) / (n1 - 1.0) / (k * k);
  var0 = var0 > 0.0 ? var0 : 0.0;
  var1 = var1 > 0.0 ? var1 : 0.0;
  const SampleMoments m0{s0 / (n0 * k) + mean_shift, var0, n0};
  const SampleMoments m1{s1 / (n1 * k) + mean_shift, var1, n1};
  return {m0.mean, sqrt(var0), m1.mean, sqrt(var1), TwoSampleTest(m0, m1, test)};
}

NFP_HD void Store(const CandidateStats& r, std::size_t i, const ScreenOutputs& out) {
  out.mu0[i] = r.mu0;
  out.sd0[i] = r.sd0;
  out.mu1[i] = r.mu1;
  out.sd1[i] = r.sd1;
  out.t[i] = r.test.t;
  out.p[i] = r.test.p;
  out.d[i] = r.test.d;
}

}  // namespace math
}  // namespace stats
}  // namespace nfp
