// Regularized incomplete beta, Student's t tail and the two-sample tests of bank screening.
#include "nfp/stats.h"

#include <cmath>
#include <limits>

namespace nfp {
namespace stats {
namespace {

constexpr double kTiny = 1e-300;
constexpr double kEps = 1e-16;

// Continued fraction of I_x(a, b) (modified Lentz); converges quickly for x < (a+1)/(a+b+2).
double BetaContinuedFraction(double a, double b, double x) {
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 100000; ++m) {
    double m2 = 2.0 * m;
    double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEps) break;
  }
  return h;
}

// I_x(a, b) given both x and y = 1 - x, so callers that know y exactly (the t tail, where
// y = t^2 / (df + t^2)) avoid cancellation in 1 - x.
double IncompleteBeta(double a, double b, double x, double y) {
  if (x <= 0.0) return 0.0;
  if (y <= 0.0) return 1.0;
  double log_front = a * std::log(x) + b * std::log(y) -
                     (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return std::exp(log_front) * BetaContinuedFraction(a, b, x) / a;
  }
  return 1.0 - std::exp(log_front) * BetaContinuedFraction(b, a, y) / b;
}

}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (std::isnan(a) || std::isnan(b) || std::isnan(x) || a <= 0.0 || b <= 0.0 || x < 0.0 || x > 1.0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return IncompleteBeta(a, b, x, 1.0 - x);
}

double t_two_sided_p(double t, double df) {
  if (std::isnan(t) || std::isnan(df) || df <= 0.0) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return 0.0;
  if (t == 0.0) return 1.0;
  double t2 = t * t;
  // p = I_{df/(df+t^2)}(df/2, 1/2); for large |t| the argument is tiny and the tail exact.
  double x = df / (df + t2);
  double y = t2 / (df + t2);
  double p = IncompleteBeta(0.5 * df, 0.5, x, y);
  return p > 1.0 ? 1.0 : p;
}

TwoSampleResult two_sample_test(const SampleMoments& clean, const SampleMoments& attacked,
                                TTest test) {
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
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(diff) || std::isnan(se2)) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.t = r.p = r.d = nan;
    return r;
  }
  if (se2 > 0.0) {
    r.t = diff / std::sqrt(se2);
    r.p = t_two_sided_p(r.t, r.df);
  } else {
    r.t = diff == 0.0 ? 0.0 : (diff > 0.0 ? inf : -inf);
    r.p = diff == 0.0 ? 1.0 : 0.0;
  }
  if (pooled_var > 0.0) {
    r.d = diff / std::sqrt(pooled_var);
  } else {
    r.d = diff == 0.0 ? 0.0 : (diff > 0.0 ? inf : -inf);
  }
  return r;
}

}  // namespace stats
}  // namespace nfp
