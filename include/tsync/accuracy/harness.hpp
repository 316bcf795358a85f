#pragma once
// The accuracy harness: runs estimators on simulated scenarios over many seeds
// and measures, against the simulator's exact truth, how close the corrected
// time is and how honest the reported intervals are.
//
// It is a header so that both the `tsync_accuracy` program (bench/accuracy)
// and `tsync shootout` (examples/tsync) use the same code. Estimators enter as
// type-erased `estimator_entry`s; `estimate_adapter.hpp` builds them from the
// tsync::estimate library.
//
// Metrics (per scenario × estimator, pooled over seeds):
// * error e(h) = model.to_host(truth.guest_at(h)) − h on a host-time grid
//   (every `grid_ns`, from the first burst's start to the last burst's end):
//   bias (mean e), RMS, p99 and max of |e|;
// * drift error: the median over the grid of |e(h + 10 s) − e(h)| / 10 s, in
//   ppb (a robust local rate error; steps in the truth touch few pairs);
// * hard coverage: share of grid points with h inside model.hard_bounds(g),
//   and the interval's mean width; the same for the statistical interval when
//   the model gives one;
// * time per burst: wall time of the fit divided by the number of bursts;
// * step recovery (scenarios with clock steps): after each step at T, the time
//   from T to the first grid point h from which, for the next 30 s, the truth
//   stays inside the hard interval and |e| <= max(2 µs, 3 × the RMS of e
//   before the step). "never" if that does not happen before the trace ends;
// * floor: mean over the grid of the asymmetry floor (m_f − m_b)/2; a
//   two-way estimator's bias cannot beat −floor.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tsync/core/sync_sample.hpp"
#include "tsync/sim.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::accuracy {

/// A host-time interval (closed).
struct host_interval {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

/// A fitted guest→host map, type-erased. `to_host` is required; the bounds are
/// optional (an empty function or an empty result means "not given").
struct fitted_map {
  std::function<std::optional<std::int64_t>(std::int64_t guest)> to_host;
  std::function<std::optional<host_interval>(std::int64_t guest)> hard;
  std::function<std::optional<host_interval>(std::int64_t guest)> stat;
  std::size_t segments = 1;                ///< pieces of the model (diagnostic)
  std::vector<std::int64_t> boundaries{};  ///< guest times where segments start (except the first)
};

/// One estimator under test: its name and how to fit it.
struct estimator_entry {
  std::string name;
  std::function<std::optional<fitted_map>(std::span<const probe_sample> probes, std::string& error)> fit;
};

/// An oracle built from the truth (a self-check of the harness, not an
/// estimator): maps guest time back through `truth.host_at` and reports a
/// zero-width interval, shifted by `bias_ns`.
inline estimator_entry oracle_entry(const sim::truth_map* truth, std::int64_t bias_ns = 0,
                                    std::string name = "oracle") {
  return {std::move(name), [truth, bias_ns](std::span<const probe_sample>, std::string&) -> std::optional<fitted_map> {
            fitted_map m;
            m.to_host = [truth, bias_ns](std::int64_t g) { return std::optional<std::int64_t>(truth->host_at(g) + bias_ns); };
            m.hard = [truth, bias_ns](std::int64_t g) {
              const auto h = truth->host_at(g) + bias_ns;
              return std::optional<host_interval>(host_interval{h - 1, h + 1});
            };
            return m;
          }};
}

/// Harness options.
struct options {
  std::vector<std::string> scenarios = sim::preset_names();
  unsigned seeds = 5;
  std::uint64_t first_seed = 1;
  std::int64_t grid_ns = 100'000'000;  ///< error grid spacing (100 ms)
  bool quick = false;                  ///< shorten every trace to 5 minutes (and drift_wander to 10)
  std::string plot_dir{};              ///< write plot data for the first seed here (empty: none)
};

/// The metrics of one scenario × estimator, pooled over seeds.
struct metrics {
  std::string scenario, estimator;
  double floor_ns = 0;       ///< mean asymmetry floor (m_f − m_b)/2
  std::uint64_t points = 0;  ///< grid points evaluated
  unsigned runs = 0, failures = 0;
  std::string failure{};     ///< first failure message
  double bias = 0, rms = 0, p99 = 0, max = 0;  ///< ns
  double drift_ppb = 0;
  double hard_cov = std::numeric_limits<double>::quiet_NaN(), hard_width = 0;
  double stat_cov = std::numeric_limits<double>::quiet_NaN(), stat_width = 0;
  double us_per_burst = 0;
  std::vector<double> recovery_s{};  ///< per step and seed; +inf = never recovered
  bool has_steps = false;
  double burst_interval_s = 0;
};

namespace detail {

inline double quantile_sorted(const std::vector<double>& v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

struct accum {
  std::vector<double> abs_err;
  double sum = 0, sum2 = 0;
  std::vector<double> drift;
  std::uint64_t hard_n = 0, hard_in = 0, stat_n = 0, stat_in = 0;
  double hard_w = 0, stat_w = 0;
  double fit_s = 0;
  std::uint64_t bursts = 0;
};

/// Step instants (host, absolute) of a scenario: clock offset and frequency steps.
inline std::vector<std::int64_t> step_times(const sim::scenario& sc) {
  std::vector<std::int64_t> v;
  for (const auto& s : sc.clock.offset_steps) v.push_back(sc.start_ns + s.at_ns);
  for (const auto& s : sc.clock.frequency_steps) v.push_back(sc.start_ns + s.at_ns);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace detail

/// Evaluation of one fitted map on one trace (the per-seed part of `metrics`).
struct evaluation {
  std::vector<std::int64_t> grid;  ///< host times
  std::vector<double> err;         ///< e(h), NaN where to_host failed
  std::vector<std::optional<host_interval>> hard, stat;
};

/// Evaluate `m` on the grid of `tr`.
inline evaluation evaluate(const fitted_map& m, const sim::trace& tr, std::int64_t grid_ns) {
  evaluation ev;
  for (const auto& pt : sim::truth_grid(tr, grid_ns)) {
    ev.grid.push_back(pt.host);
    const auto h = m.to_host ? m.to_host(pt.guest) : std::nullopt;
    ev.err.push_back(h ? static_cast<double>(*h - pt.host) : std::numeric_limits<double>::quiet_NaN());
    ev.hard.push_back(m.hard ? m.hard(pt.guest) : std::nullopt);
    ev.stat.push_back(m.stat ? m.stat(pt.guest) : std::nullopt);
  }
  return ev;
}

/// Step recovery times (s) of one evaluation (see the file comment).
inline std::vector<double> step_recovery(const evaluation& ev, const sim::scenario& sc, std::int64_t grid_ns) {
  std::vector<double> out;
  const auto steps = detail::step_times(sc);
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const std::int64_t T = steps[k];
    const std::int64_t next = k + 1 < steps.size() ? steps[k + 1] : std::numeric_limits<std::int64_t>::max();
    double s2 = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < ev.grid.size() && ev.grid[i] < T; ++i)
      if (std::isfinite(ev.err[i])) { s2 += ev.err[i] * ev.err[i]; ++n; }
    const double pre_rms = n ? std::sqrt(s2 / static_cast<double>(n)) : 0.0;
    const double tol = std::max(2000.0, 3 * pre_rms);
    const std::int64_t hold = 30'000'000'000;
    auto good = [&](std::size_t i) {
      const auto& hb = ev.hard[i];
      return std::isfinite(ev.err[i]) && std::abs(ev.err[i]) <= tol && hb && hb->lo <= ev.grid[i] &&
             ev.grid[i] <= hb->hi;
    };
    double rec = std::numeric_limits<double>::infinity();
    const std::size_t end = ev.grid.size();
    for (std::size_t i = 0; i < end; ++i) {
      if (ev.grid[i] < T) continue;
      if (ev.grid[i] >= next || ev.grid[i] + hold > ev.grid.back()) break;
      bool ok = true;
      std::size_t j = i;
      for (; j < end && ev.grid[j] <= ev.grid[i] + hold; ++j)
        if (!good(j)) { ok = false; break; }
      if (ok) {
        rec = static_cast<double>(ev.grid[i] - T) * 1e-9;
        break;
      }
      i = j;  // skip past the bad point
    }
    (void)grid_ns;
    out.push_back(rec);
  }
  return out;
}

/// Plot data of one scenario (first seed): probes, per-estimator curves and a
/// histogram of one burst, plus a gnuplot variables file (see scripts/shootout.gp).
inline void write_plot_data(const std::string& dir, const sim::trace& tr,
                            const std::vector<std::pair<std::string, evaluation>>& evs,
                            const std::vector<std::pair<std::string, std::optional<std::int64_t>>>& burst_marks,
                            std::uint32_t hist_burst, double yrange_ns) {
  const std::string base = dir + "/" + tr.sc.name;
  const double t0 = static_cast<double>(tr.sc.start_ns);
  {
    // Probes: time (s), midpoint offset, lower and upper causality bound, all
    // minus the true offset at the probe (µs); host − guest convention.
    std::ofstream f(base + "_probes.dat");
    f << "# t_s mid_us lo_us hi_us (host - guest, relative to the true offset)\n";
    std::size_t stride = std::max<std::size_t>(1, tr.probes.size() / 20000);
    for (std::size_t i = 0; i < tr.probes.size(); i += stride) {
      const auto& p = tr.probes[i];
      const std::int64_t mid = p.t1 + (p.t2 - p.t1) / 2;
      const double truth = static_cast<double>(tr.truth.offset_at(mid));
      f << (static_cast<double>(mid) - t0) * 1e-9 << ' '
        << (static_cast<double>(mid - p.g) - truth) * 1e-3 << ' '
        << (static_cast<double>(p.t1 - p.g) - truth) * 1e-3 << ' '
        << (static_cast<double>(p.t2 - p.g) - truth) * 1e-3 << '\n';
    }
  }
  std::string names;
  for (const auto& [name, ev] : evs) {
    std::ofstream f(base + "_" + name + ".dat");
    f << "# t_s err_us hard_lo_us hard_hi_us stat_lo_us stat_hi_us (relative to the truth)\n";
    const std::size_t stride = std::max<std::size_t>(1, ev.grid.size() / 3000);
    for (std::size_t i = 0; i < ev.grid.size(); i += stride) {
      const double h = static_cast<double>(ev.grid[i]);
      f << (h - t0) * 1e-9 << ' ' << (std::isfinite(ev.err[i]) ? ev.err[i] * 1e-3 : 0.0);
      auto put = [&](const std::optional<host_interval>& b) {
        if (b) f << ' ' << (static_cast<double>(b->lo) - h) * 1e-3 << ' ' << (static_cast<double>(b->hi) - h) * 1e-3;
        else f << " NaN NaN";
      };
      put(ev.hard[i]);
      put(ev.stat[i]);
      f << '\n';
    }
    names += (names.empty() ? "" : " ") + name;
  }
  {
    // Histogram input: the midpoint offsets of one burst relative to the true
    // offset at the burst's middle, and each estimator's offset there.
    std::ofstream f(base + "_hist.dat");
    std::int64_t a = 0, z = 0;
    for (const auto& bi : tr.bursts)
      if (bi.index == hist_burst) { a = bi.start_ns; z = bi.end_ns; }
    const std::int64_t mid_t = a + (z - a) / 2;
    const double truth = static_cast<double>(tr.truth.offset_at(mid_t));
    for (const auto& p : tr.probes)
      if (p.burst == hist_burst) f << (static_cast<double>(p.t1 + (p.t2 - p.t1) / 2 - p.g) - truth) * 1e-3 << '\n';
    std::ofstream m(base + "_marks.dat");
    m << "# estimator offset_us (relative to the true offset at the middle of burst " << hist_burst << ")\n";
    for (const auto& [name, off] : burst_marks)
      if (off) m << name << ' ' << (static_cast<double>(*off) - truth) * 1e-3 << '\n';
  }
  std::ofstream v(base + "_vars.gp");
  v << "scen='" << tr.sc.name << "'\nests='" << names << "'\nfloor_us=" << tr.sc.floor_at(tr.sc.start_ns) * 1e-3
    << "\nyr_us=" << std::max(1.0, yrange_ns * 1e-3) << "\nhist_burst=" << hist_burst << "\n";
}

namespace detail {

/// `--quick`: 5 minutes (10 for drift_wander); 7.5 minutes when a step at
/// 300 s needs time after it.
inline void apply_quick_duration(sim::scenario& sc, const std::string& sname) {
  const bool stepped =
      !sc.clock.offset_steps.empty() || !sc.clock.frequency_steps.empty() || !sc.link.asymmetry_steps.empty();
  const std::int64_t cap = sname == "drift_wander" ? 600'000'000'000 : stepped ? 450'000'000'000 : 300'000'000'000;
  sc.duration_ns = std::min(sc.duration_ns, cap);
}

/// Add one evaluation's grid points to the accumulated errors, coverages and drift.
inline void accumulate(accum& a, const evaluation& ev, std::int64_t grid_ns) {
  const std::int64_t lag = 10'000'000'000 / grid_ns;
  for (std::size_t i = 0; i < ev.grid.size(); ++i) {
    const double x = ev.err[i];
    if (!std::isfinite(x)) continue;
    a.abs_err.push_back(std::abs(x));
    a.sum += x;
    a.sum2 += x * x;
    if (ev.hard[i]) {
      ++a.hard_n;
      a.hard_w += static_cast<double>(ev.hard[i]->hi - ev.hard[i]->lo);
      if (ev.hard[i]->lo <= ev.grid[i] && ev.grid[i] <= ev.hard[i]->hi) ++a.hard_in;
    }
    if (ev.stat[i]) {
      ++a.stat_n;
      a.stat_w += static_cast<double>(ev.stat[i]->hi - ev.stat[i]->lo);
      if (ev.stat[i]->lo <= ev.grid[i] && ev.grid[i] <= ev.stat[i]->hi) ++a.stat_in;
    }
    const auto j = i + static_cast<std::size_t>(lag);
    if (lag > 0 && j < ev.grid.size() && std::isfinite(ev.err[j]))
      a.drift.push_back(std::abs(ev.err[j] - x) / static_cast<double>(ev.grid[j] - ev.grid[i]) * 1e9);
  }
}

/// The model's offset at the middle of burst `burst` (the histogram plot's mark).
inline std::optional<std::int64_t> burst_mark(const fitted_map& fm, const sim::trace& tr, std::uint32_t burst) {
  std::optional<std::int64_t> mark;
  for (const auto& bi : tr.bursts) {
    if (bi.index != burst) continue;
    const std::int64_t mid_t = bi.start_ns + (bi.end_ns - bi.start_ns) / 2;
    const std::int64_t g = tr.truth.guest_at(mid_t);
    if (auto h = fm.to_host(g)) mark = *h - g;
  }
  return mark;
}

/// The 99th percentile of an evaluation's absolute errors.
inline double p99_of(const evaluation& ev) {
  std::vector<double> s;
  for (double x : ev.err)
    if (std::isfinite(x)) s.push_back(std::abs(x));
  std::sort(s.begin(), s.end());
  return quantile_sorted(s, 0.99);
}

/// The plots of the first seed: every estimator's evaluation, with a y range
/// of 3 x the median estimator's p99 error (so one bad estimator does not
/// flatten the rest).
struct plot_collector {
  std::vector<std::pair<std::string, evaluation>> evs;
  std::vector<std::pair<std::string, std::optional<std::int64_t>>> marks;
  std::vector<double> p99s;
  void add(const std::string& name, const fitted_map& fm, const sim::trace& tr, std::uint32_t burst, evaluation ev) {
    marks.emplace_back(name, burst_mark(fm, tr, burst));
    p99s.push_back(p99_of(ev));
    evs.emplace_back(name, std::move(ev));
  }
  void write(const std::string& dir, const sim::trace& tr, std::uint32_t burst) {
    std::sort(p99s.begin(), p99s.end());
    double yr = p99s.empty() ? 1000.0 : 3 * p99s[p99s.size() / 2];
    if (!std::isfinite(yr)) yr = 1000.0;
    yr = std::max(yr, 2 * std::abs(tr.floor_at(tr.sc.start_ns)));
    write_plot_data(dir, tr, evs, marks, burst, yr);
  }
};

/// The metrics of one estimator on one scenario from its accumulated points.
inline metrics finish_metrics(metrics m, accum& a, double floor_mean) {
  m.floor_ns = floor_mean;
  m.points = a.abs_err.size();
  if (a.abs_err.empty()) return m;
  const double n = static_cast<double>(a.abs_err.size());
  m.bias = a.sum / n;
  m.rms = std::sqrt(a.sum2 / n);
  std::sort(a.abs_err.begin(), a.abs_err.end());
  m.p99 = quantile_sorted(a.abs_err, 0.99);
  m.max = a.abs_err.back();
  std::sort(a.drift.begin(), a.drift.end());
  m.drift_ppb = quantile_sorted(a.drift, 0.5);
  if (a.hard_n) {
    m.hard_cov = static_cast<double>(a.hard_in) / static_cast<double>(a.hard_n);
    m.hard_width = a.hard_w / static_cast<double>(a.hard_n);
  }
  if (a.stat_n) {
    m.stat_cov = static_cast<double>(a.stat_in) / static_cast<double>(a.stat_n);
    m.stat_width = a.stat_w / static_cast<double>(a.stat_n);
  }
  m.us_per_burst = a.bursts ? a.fit_s / static_cast<double>(a.bursts) * 1e6 : 0.0;
  return m;
}

/// Every seed of one scenario: fits each entry, accumulates its points, and
/// writes the plots of the first seed.
class scenario_run {
 public:
  scenario_run(const options& opt, const sim::scenario& sc, const std::string& sname)
      : opt_(opt), sc_(sc), sname_(sname) {}

  void seed(unsigned k, const std::function<std::vector<estimator_entry>(const sim::trace&)>& make_entries) {
    const std::uint64_t seed = opt_.first_seed + k;
    auto tr = sim::simulate(sc_, seed);
    if (!tr) return;
    const bool plots = k == 0 && !opt_.plot_dir.empty();
    const auto hist_burst = static_cast<std::uint32_t>(tr->bursts.size() / 2);
    plot_collector pc;
    for (const auto& pt : sim::truth_grid(*tr, opt_.grid_ns)) {
      floor_sum_ += tr->floor_at(pt.host);
      ++floor_n_;
    }
    for (const auto& e : make_entries(*tr)) {
      metrics& m = meta_of(e.name);
      ++m.runs;
      std::string err;
      const auto t0 = std::chrono::steady_clock::now();
      auto fm = e.fit(tr->probes, err);
      const auto t1 = std::chrono::steady_clock::now();
      if (!fm) {
        ++m.failures;
        if (m.failure.empty()) m.failure = "seed " + std::to_string(seed) + ": " + err;
        continue;
      }
      accum& a = acc_[e.name];
      a.fit_s += std::chrono::duration<double>(t1 - t0).count();
      a.bursts += tr->bursts.size();
      auto ev = evaluate(*fm, *tr, opt_.grid_ns);
      accumulate(a, ev, opt_.grid_ns);
      for (double r : step_recovery(ev, sc_, opt_.grid_ns)) m.recovery_s.push_back(r);
      if (plots) pc.add(e.name, *fm, *tr, hist_burst, std::move(ev));
    }
    if (plots) pc.write(opt_.plot_dir, *tr, hist_burst);
  }

  void finish(std::vector<metrics>& rows, std::ostream* log) {
    const double floor_mean = floor_n_ ? floor_sum_ / static_cast<double>(floor_n_) : 0.0;
    for (const auto& name : order_) {
      rows.push_back(finish_metrics(meta_[name], acc_[name], floor_mean));
      if (log) *log << "  " << sname_ << " / " << name << " done\n";
    }
  }

 private:
  metrics& meta_of(const std::string& name) {
    if (!meta_.count(name)) {
      order_.push_back(name);
      metrics m;
      m.scenario = sname_;
      m.estimator = name;
      m.burst_interval_s = static_cast<double>(sc_.burst_interval_ns) * 1e-9;
      m.has_steps = !step_times(sc_).empty();
      meta_[name] = m;
    }
    return meta_[name];
  }

  const options& opt_;
  const sim::scenario& sc_;
  std::string sname_;
  std::map<std::string, accum> acc_;
  std::map<std::string, metrics> meta_;
  std::vector<std::string> order_;
  double floor_sum_ = 0;
  std::uint64_t floor_n_ = 0;
};

}  // namespace detail

/// Run every entry on every scenario and seed. `make_entries` is called once
/// per trace (so that oracle entries can refer to it). Progress goes to `log`
/// (may be null).
inline std::vector<metrics> run(const options& opt,
                                const std::function<std::vector<estimator_entry>(const sim::trace&)>& make_entries,
                                std::ostream* log = nullptr) {
  std::vector<metrics> rows;
  for (const auto& sname : opt.scenarios) {
    auto sc = sim::preset(sname);
    if (!sc) {
      metrics m;
      m.scenario = sname;
      m.estimator = "-";
      m.failure = "unknown scenario";
      rows.push_back(m);
      continue;
    }
    if (opt.quick) detail::apply_quick_duration(*sc, sname);
    detail::scenario_run sr(opt, *sc, sname);
    for (unsigned k = 0; k < opt.seeds; ++k) sr.seed(k, make_entries);
    sr.finish(rows, log);
  }
  return rows;
}

namespace detail {
inline std::string fmt(double v, int prec = 0) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return "never";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}
inline std::string fmt_pct(double v) { return std::isnan(v) ? "-" : fmt(v * 100, v >= 0.9995 && v < 1 ? 2 : 1); }
inline std::string recovery_text(const metrics& m) {
  if (!m.has_steps) return "";
  if (m.recovery_s.empty()) return "-";
  double worst = 0;
  for (double r : m.recovery_s) worst = std::max(worst, r);
  return fmt(worst, 1);
}
}  // namespace detail

/// Print the table as Markdown (one block per scenario; times in ns unless named).
inline void print_table(std::ostream& os, const std::vector<metrics>& rows, bool markdown = true) {
  std::string current;
  const char* sep = markdown ? " | " : "  ";
  auto line = [&](const std::vector<std::string>& cells, const std::vector<int>& w) {
    os << (markdown ? "| " : "");
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string c = cells[i];
      if (!markdown) {
        const auto width = static_cast<std::size_t>(w[i]);
        if (c.size() < width) c = (i == 0 ? c + std::string(width - c.size(), ' ') : std::string(width - c.size(), ' ') + c);
      }
      os << c << (i + 1 < cells.size() ? sep : "");
    }
    os << (markdown ? " |" : "") << '\n';
  };
  const std::vector<std::string> head{"estimator", "bias", "rms", "p99", "max", "drift ppb", "hard cov %",
                                      "hard width", "stat cov %", "stat width", "us/burst", "step recovery s", "fails"};
  const std::vector<int> w{18, 9, 8, 8, 9, 9, 10, 10, 10, 10, 8, 15, 5};
  for (const auto& m : rows) {
    if (m.scenario != current) {
      current = m.scenario;
      auto sc = sim::preset(current);
      os << '\n' << (markdown ? "#### " : "== ") << current << " — floor (m_f − m_b)/2 = " << detail::fmt(m.floor_ns)
         << " ns" << (sc && sc->clock.offset_steps.size() + sc->clock.frequency_steps.size() > 0 ? ", bursts every " + detail::fmt(m.burst_interval_s) + " s" : "")
         << "\n\n";
      line(head, w);
      if (markdown) {
        os << "|";
        for (std::size_t i = 0; i < head.size(); ++i) os << (i == 0 ? "---|" : "---:|");
        os << '\n';
      }
    }
    line({m.estimator, detail::fmt(m.bias), detail::fmt(m.rms), detail::fmt(m.p99), detail::fmt(m.max),
          detail::fmt(m.drift_ppb, 1), detail::fmt_pct(m.hard_cov), detail::fmt(m.hard_width), detail::fmt_pct(m.stat_cov),
          std::isnan(m.stat_cov) ? "-" : detail::fmt(m.stat_width), detail::fmt(m.us_per_burst, 1),
          detail::recovery_text(m), m.failures ? std::to_string(m.failures) + "/" + std::to_string(m.runs) : "0"},
         w);
  }
  bool any_fail = false;
  for (const auto& m : rows)
    if (!m.failure.empty()) {
      if (!any_fail) os << "\nfailures:\n";
      any_fail = true;
      os << "  " << m.scenario << " / " << m.estimator << ": " << m.failure << '\n';
    }
}

/// Write the rows as CSV (one line per scenario × estimator).
inline void write_csv(std::ostream& os, const std::vector<metrics>& rows) {
  os << "scenario,estimator,floor_ns,points,runs,failures,bias_ns,rms_ns,p99_ns,max_ns,drift_ppb,hard_coverage,"
        "hard_width_ns,stat_coverage,stat_width_ns,us_per_burst,step_recovery_s\n";
  for (const auto& m : rows) {
    double worst = std::numeric_limits<double>::quiet_NaN();
    if (m.has_steps && !m.recovery_s.empty()) {
      worst = 0;
      for (double r : m.recovery_s) worst = std::max(worst, r);
    }
    auto num = [](double v) {
      if (std::isnan(v)) return std::string();
      if (std::isinf(v)) return std::string("inf");
      std::ostringstream o;
      o << std::setprecision(8) << v;
      return o.str();
    };
    os << m.scenario << ',' << m.estimator << ',' << num(m.floor_ns) << ',' << m.points << ',' << m.runs << ','
       << m.failures << ',' << num(m.bias) << ',' << num(m.rms) << ',' << num(m.p99) << ',' << num(m.max) << ','
       << num(m.drift_ppb) << ',' << num(m.hard_cov) << ',' << num(m.hard_width) << ',' << num(m.stat_cov) << ','
       << num(m.stat_width) << ',' << num(m.us_per_burst) << ',' << num(worst) << '\n';
  }
}

}  // namespace tsync::accuracy
