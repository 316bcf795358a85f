#pragma once
/// \file
/// Deterministic random numbers for the simulator.
///
/// The standard library's distributions (`std::normal_distribution`, ...) may
/// produce different sequences on different standard-library versions, so the
/// simulator uses its own generator (xoshiro256** seeded through splitmix64)
/// and its own distributions. The same seed gives the same trace on every
/// platform whose `std::log`, `std::exp`, `std::pow`, `std::sin`, `std::cos` and
/// `std::sqrt` agree (glibc's are correctly rounded or nearly so).
///
/// A `distribution` is a value type (kind + parameters, all in ns where they
/// are times) with a text form used by scenario files:
///
/// | text                          | meaning                                                         |
/// |-------------------------------|-----------------------------------------------------------------|
/// | `const:V`                     | always V                                                        |
/// | `uniform:LO,HI`               | uniform in [LO, HI)                                             |
/// | `exp:MEAN`                    | exponential with the given mean (support [0, inf))               |
/// | `normal:MEAN,SD`              | Gaussian (Box–Muller)                                           |
/// | `lognormal:MEDIAN,SIGMA`      | exp(ln(MEDIAN) + SIGMA·N(0,1)) (support (0, inf))                |
/// | `pareto:XM,ALPHA`             | Pareto type I: XM / U^(1/ALPHA) (support [XM, inf))              |
/// | `bimodal:MEAN1,SHIFT2,MEAN2,P2` | with probability 1−P2 Exp(MEAN1), else SHIFT2 + Exp(MEAN2)    |

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <system_error>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/text.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sim {

/// splitmix64: used to expand one 64-bit seed into generator state and to
/// derive independent sub-seeds (`derive_seed`).
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A sub-seed for stream `stream` of `seed` (so that, e.g., the clock model and
/// the link model draw from independent streams and adding a draw to one does
/// not shift the other).
[[nodiscard]] constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  std::uint64_t s = seed ^ (0xD1B54A32D192ED03ULL * (stream + 1));
  (void)splitmix64(s);
  return splitmix64(s);
}

/// xoshiro256** 1.0 (Blackman and Vigna): a small, fast generator with a
/// 2^256 − 1 period. Satisfies `std::uniform_random_bit_generator`.
class rng {
 public:
  using result_type = std::uint64_t;
  /// Seed through splitmix64 (any seed, including 0, gives a valid state).
  constexpr explicit rng(std::uint64_t seed = 0) noexcept {
    std::uint64_t s = seed;
    for (auto& w : s_) w = splitmix64(s);
  }
  [[nodiscard]] static constexpr result_type min() noexcept { return 0; }
  [[nodiscard]] static constexpr result_type max() noexcept { return ~std::uint64_t{0}; }
  /// The next 64 random bits.
  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform01() noexcept {
    return static_cast<double>((*this)() >> 11) * 0x1.0p-53;
  }
  /// Uniform double in (0, 1]: safe to take the logarithm of.
  constexpr double uniform01_open_low() noexcept { return 1.0 - uniform01(); }
  /// True with probability `p` (p <= 0: never; p >= 1: always).
  constexpr bool bernoulli(double p) noexcept { return uniform01() < p; }
  /// Uniform integer in [0, n) (n > 0), by Lemire's multiply-shift with rejection.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    if (n == 0) return 0;
    for (;;) {
      const std::uint64_t x = (*this)();
      const u128_t m = static_cast<u128_t>(x) * n;
      const auto lo = static_cast<std::uint64_t>(m);
      if (lo >= n || lo >= (0 - n) % n) return static_cast<std::uint64_t>(m >> 64);
    }
  }
  /// A standard normal variate (Box–Muller; one of the pair is discarded so
  /// that every call consumes exactly two uniforms).
  double standard_normal() noexcept {
    const double u1 = uniform01_open_low();
    const double u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  friend constexpr bool operator==(const rng&, const rng&) = default;

 private:
  __extension__ using u128_t = unsigned __int128;
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::array<std::uint64_t, 4> s_{};
};

/// The family of a `distribution`.
enum class dist_kind : std::uint8_t { constant, uniform, exponential, normal, lognormal, pareto, bimodal };

/// A probability distribution of a real quantity (ns for delays and noise).
/// Build one with the factory functions (`exponential(2000)`, ...) or
/// `parse_distribution("exp:2000")`; `validate()` checks the parameters.
struct distribution {
  dist_kind kind = dist_kind::constant;
  double a = 0;  ///< constant: value; uniform: lo; exp: mean; normal: mean; lognormal: median; pareto: xm; bimodal: mean1
  double b = 0;  ///< uniform: hi; normal: sd; lognormal: sigma; pareto: alpha; bimodal: shift2
  double c = 0;  ///< bimodal: mean2
  double d = 0;  ///< bimodal: p2 (probability of the second mode)

  /// Draw one value.
  double sample(rng& r) const noexcept {
    switch (kind) {
      case dist_kind::constant: return a;
      case dist_kind::uniform: return a + (b - a) * r.uniform01();
      case dist_kind::exponential: return -a * std::log(r.uniform01_open_low());
      case dist_kind::normal: return a + b * r.standard_normal();
      case dist_kind::lognormal: return a * std::exp(b * r.standard_normal());
      case dist_kind::pareto: return a / std::pow(r.uniform01_open_low(), 1.0 / b);
      case dist_kind::bimodal: {
        const bool second = r.bernoulli(d);
        const double e = -std::log(r.uniform01_open_low());
        return second ? b + c * e : a * e;
      }
    }
    return 0;
  }
  /// The lower end of the support (the smallest value a draw can take, as an
  /// infimum). `normal` is unbounded below: returns −infinity.
  [[nodiscard]] double min_value() const noexcept {
    switch (kind) {
      case dist_kind::constant: return a;
      case dist_kind::uniform: return a;
      case dist_kind::exponential: return 0;
      case dist_kind::normal: return -std::numeric_limits<double>::infinity();
      case dist_kind::lognormal: return 0;
      case dist_kind::pareto: return a;
      case dist_kind::bimodal: return d >= 1.0 ? b : (d <= 0.0 ? 0.0 : std::min(0.0, b));
    }
    return 0;
  }
  /// The mean (infinity for a Pareto with alpha <= 1).
  [[nodiscard]] double mean() const noexcept {
    switch (kind) {
      case dist_kind::constant: return a;
      case dist_kind::uniform: return (a + b) / 2;
      case dist_kind::exponential: return a;
      case dist_kind::normal: return a;
      case dist_kind::lognormal: return a * std::exp(b * b / 2);
      case dist_kind::pareto: return b <= 1 ? std::numeric_limits<double>::infinity() : a * b / (b - 1);
      case dist_kind::bimodal: return (1 - d) * a + d * (b + c);
    }
    return 0;
  }
  /// Deprecated (one release): use the free `validate(x)`.
  [[deprecated("use sim::validate(x)")]] [[nodiscard]] errc validate() const noexcept;
  friend constexpr bool operator==(const distribution&, const distribution&) = default;
};

/// `errc::non_finite` for NaN/inf parameters, `errc::invalid_argument` for
/// parameters outside the family's domain (negative mean or sd, hi < lo,
/// median <= 0, xm <= 0 or alpha <= 0, p2 outside [0, 1]).
[[nodiscard]] inline expected<void, errc> validate(const distribution& x) noexcept {
  const errc e = [&x]() noexcept -> errc {
    for (double v : {x.a, x.b, x.c, x.d})
      if (!std::isfinite(v)) return errc::non_finite;
    switch (x.kind) {
      case dist_kind::constant: return errc::ok;
      case dist_kind::uniform: return x.b >= x.a ? errc::ok : errc::invalid_argument;
      case dist_kind::exponential: return x.a >= 0 ? errc::ok : errc::invalid_argument;
      case dist_kind::normal: return x.b >= 0 ? errc::ok : errc::invalid_argument;
      case dist_kind::lognormal: return x.a > 0 && x.b >= 0 ? errc::ok : errc::invalid_argument;
      case dist_kind::pareto: return x.a > 0 && x.b > 0 ? errc::ok : errc::invalid_argument;
      case dist_kind::bimodal:
        return x.a >= 0 && x.c >= 0 && x.d >= 0 && x.d <= 1 ? errc::ok : errc::invalid_argument;
    }
    return errc::invalid_argument;
  }();
  if (e != errc::ok) return unexpected(e);
  return {};
}

inline errc distribution::validate() const noexcept {
  const auto v = sim::validate(*this);
  return v ? errc::ok : v.error();
}

/// Factories (all values in the unit of the quantity, ns for delays).
[[nodiscard]] constexpr distribution constant(double v) noexcept { return {dist_kind::constant, v, 0, 0, 0}; }
[[nodiscard]] constexpr distribution uniform(double lo, double hi) noexcept { return {dist_kind::uniform, lo, hi, 0, 0}; }
[[nodiscard]] constexpr distribution exponential(double mean) noexcept { return {dist_kind::exponential, mean, 0, 0, 0}; }
[[nodiscard]] constexpr distribution normal(double mean, double sd) noexcept { return {dist_kind::normal, mean, sd, 0, 0}; }
[[nodiscard]] constexpr distribution lognormal(double median, double sigma) noexcept {
  return {dist_kind::lognormal, median, sigma, 0, 0};
}
[[nodiscard]] constexpr distribution pareto(double xm, double alpha) noexcept { return {dist_kind::pareto, xm, alpha, 0, 0}; }
[[nodiscard]] constexpr distribution bimodal(double mean1, double shift2, double mean2, double p2) noexcept {
  return {dist_kind::bimodal, mean1, shift2, mean2, p2};
}

namespace detail {
/// Shortest round-trip text of a double.
template <class = void>
inline std::string format_double(double v) {
  std::array<char, 40> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}
/// A whole string as a finite double (no spaces, no leading '+').
inline expected<double, errc> parse_double(std::string_view s) { return io::parse_decimal<double>(s); }
}  // namespace detail

/// The text form of a distribution (see the file comment); round-trips exactly
/// through `parse_distribution`.
template <class = void>
[[nodiscard]] inline std::string to_string(const distribution& d) {
  using detail::format_double;
  switch (d.kind) {
    case dist_kind::constant: return "const:" + format_double(d.a);
    case dist_kind::uniform: return "uniform:" + format_double(d.a) + "," + format_double(d.b);
    case dist_kind::exponential: return "exp:" + format_double(d.a);
    case dist_kind::normal: return "normal:" + format_double(d.a) + "," + format_double(d.b);
    case dist_kind::lognormal: return "lognormal:" + format_double(d.a) + "," + format_double(d.b);
    case dist_kind::pareto: return "pareto:" + format_double(d.a) + "," + format_double(d.b);
    case dist_kind::bimodal:
      return "bimodal:" + format_double(d.a) + "," + format_double(d.b) + "," + format_double(d.c) + "," +
             format_double(d.d);
  }
  return "?";
}

/// Parse `KIND:P1[,P2...]`. Errors: `errc::not_found` for an unknown kind,
/// `errc::invalid_argument` for a wrong parameter count or a parameter outside
/// the family's domain, `errc::malformed_number` / `errc::non_finite` for a
/// parameter that is not a finite decimal number.
template <class = void>
[[nodiscard]] inline expected<distribution, errc> parse_distribution(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return unexpected(errc::invalid_argument);
  const std::string_view kind = text.substr(0, colon);
  std::string_view rest = text.substr(colon + 1);
  std::array<double, 4> p{};
  std::size_t n = 0;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    if (n == p.size()) return unexpected(errc::invalid_argument);
    auto v = detail::parse_double(item);
    if (!v) return unexpected(v.error());
    p[n++] = *v;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  distribution d{};
  std::size_t want = 0;
  if (kind == "const" || kind == "constant") { d.kind = dist_kind::constant; want = 1; }
  else if (kind == "uniform") { d.kind = dist_kind::uniform; want = 2; }
  else if (kind == "exp" || kind == "exponential") { d.kind = dist_kind::exponential; want = 1; }
  else if (kind == "normal") { d.kind = dist_kind::normal; want = 2; }
  else if (kind == "lognormal") { d.kind = dist_kind::lognormal; want = 2; }
  else if (kind == "pareto") { d.kind = dist_kind::pareto; want = 2; }
  else if (kind == "bimodal") { d.kind = dist_kind::bimodal; want = 4; }
  else return unexpected(errc::not_found);
  if (n != want) return unexpected(errc::invalid_argument);
  d.a = p[0];
  d.b = p[1];
  d.c = p[2];
  d.d = p[3];
  if (auto v = validate(d); !v) return unexpected(v.error());
  return d;
}

}  // namespace tsync::sim
