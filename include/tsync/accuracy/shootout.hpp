#pragma once
// The `shootout` driver shared by `tsync shootout` and the tsync_accuracy
// program: parses options, runs the harness, prints the table, writes CSV and
// plot data.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "tsync/accuracy/estimate_adapter.hpp"
#include "tsync/accuracy/harness.hpp"
#include "tsync/core/config.hpp"
#include "tsync/io/text.hpp"

namespace tsync::inline TSYNC_ABI::accuracy {

inline constexpr const char* shootout_help =
    "[--seeds N] [--first-seed N] [--scenario NAME]... [--estimator NAME]... [--quick]\n"
    "       [--csv FILE] [--plots DIR] [--grid-ms N] [--text] [--self-check] [--list]\n\n"
    "Run every estimator on every simulated scenario preset over N seeds (default 5)\n"
    "and print, per scenario, the error of the corrected time against the exact\n"
    "truth: bias, RMS, p99 and max (ns), drift error (ppb), hard and statistical\n"
    "interval coverage and mean width, fit time per burst, and for clock-step\n"
    "scenarios the step recovery time. The floor (m_f - m_b)/2 is printed per scenario.\n\n"
    "  --quick        shorter traces (5 min; 7.5 with a step; 10 for drift_wander)\n"
    "  --csv FILE     also write the rows as CSV\n"
    "  --plots DIR    write plot data of the first seed (for scripts/plot.sh)\n"
    "  --text         aligned text instead of a Markdown table\n"
    "  --self-check   add the truth oracle and a +1 us biased oracle (harness check)\n"
    "  --list         list scenarios and estimators, then exit";

namespace detail {

/// The shootout's command line.
struct shootout_args {
  options opt;
  std::vector<std::string> scenarios, estimators;
  std::string csv;
  bool text = false, self_check = false, list = false;
};

/// Apply one `--name value` option; false (after a message on `err`) when it is bad.
inline bool apply_shootout_option(shootout_args& s, const std::string& a, const std::string& v, std::ostream& err) {
  auto num = [&](auto& dst) {
    if (tsync::io::parse_decimal(v, dst) == tsync::errc::ok) return true;
    err << "tsync shootout: " << a << ": not a valid number: '" << v << "'\n";
    return false;
  };
  if (a == "--seeds") {
    if (!num(s.opt.seeds) || s.opt.seeds == 0 || s.opt.seeds > 1000) {
      err << "tsync shootout: --seeds must be 1..1000\n";
      return false;
    }
  } else if (a == "--first-seed") {
    return num(s.opt.first_seed);
  } else if (a == "--grid-ms") {
    std::int64_t ms = 0;
    if (!num(ms) || ms <= 0 || ms > 60'000) {
      err << "tsync shootout: --grid-ms must be 1..60000\n";
      return false;
    }
    s.opt.grid_ns = ms * 1'000'000;
  } else if (a == "--scenario") s.scenarios.push_back(v);
  else if (a == "--estimator") s.estimators.push_back(v);
  else if (a == "--csv") s.csv = v;
  else if (a == "--plots") s.opt.plot_dir = v;
  else if (a == "--quick") s.opt.quick = true;
  else if (a == "--text") s.text = true;
  else if (a == "--self-check") s.self_check = true;
  else if (a == "--list") s.list = true;
  else { err << "tsync shootout: unknown option " << a << "\n"; return false; }
  return true;
}

/// Split and apply the arguments (`--name value`, `--name=value` or a flag).
inline std::optional<shootout_args> parse_shootout_args(const std::vector<std::string>& args, std::ostream& err) {
  shootout_args s;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], v;
    const auto eq = a.find('=');
    const bool flag = a == "--quick" || a == "--text" || a == "--self-check" || a == "--list";
    if (a.rfind("--", 0) != 0) {
      err << "tsync shootout: unexpected argument '" << a << "'\n";
      return std::nullopt;
    }
    if (eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (!flag) {
      if (i + 1 >= args.size()) {
        err << "tsync shootout: option " << a << " needs a value\n";
        return std::nullopt;
      }
      v = args[++i];
    }
    if (!apply_shootout_option(s, a, v, err)) return std::nullopt;
  }
  return s;
}

/// Check the scenario and estimator names; 0, or the exit code after a message.
inline int check_shootout_names(const shootout_args& s, const std::vector<std::string>& all_est, std::ostream& err) {
  for (const auto& n : s.scenarios)
    if (!sim::preset(n)) {
      err << "tsync shootout: unknown scenario '" << n << "' (see --list)\n";
      return 2;
    }
  for (const auto& e : s.estimators)
    if (std::find(all_est.begin(), all_est.end(), e) == all_est.end()) {
      err << "tsync shootout: unknown estimator '" << e << "' (see --list)\n";
      return 2;
    }
  if (all_est.empty() && !s.self_check) {
    err << "tsync shootout: this build has no estimators (the estimate family is missing); try --self-check\n";
    return 1;
  }
  return 0;
}

/// Write the rows as CSV to `path`; false (after a message) when the file cannot be written or closed.
inline bool write_shootout_csv(const std::string& path, const std::vector<metrics>& rows, std::ostream& err) {
  std::ofstream f(path);
  if (!f) {
    err << "tsync shootout: cannot write " << path << '\n';
    return false;
  }
  write_csv(f, rows);
  f.close();
  if (!f) {
    err << "tsync shootout: write error on " << path << '\n';
    return false;
  }
  return true;
}

}  // namespace detail

/// Run the shootout with already-split options. Returns the exit code.
inline int shootout_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto s = detail::parse_shootout_args(args, err);
  if (!s) return 2;
  const auto all_est = library_estimator_names();
  if (s->list) {
    out << "scenarios:";
    for (const auto& n : sim::preset_names()) out << ' ' << n;
    out << "\nestimators:";
    for (const auto& n : all_est) out << ' ' << n;
    out << '\n';
    return 0;
  }
  if (int rc = detail::check_shootout_names(*s, all_est, err)) return rc;
  options& opt = s->opt;
  if (!s->scenarios.empty()) opt.scenarios = s->scenarios;
  if (!opt.plot_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.plot_dir, ec);
    if (ec) {
      err << "tsync shootout: cannot create " << opt.plot_dir << ": " << ec.message() << '\n';
      return 1;
    }
  }
  const auto lib = library_entries(s->estimators);
  const bool self_check = s->self_check;
  auto rows = run(opt, [&](const sim::trace& tr) {
    std::vector<estimator_entry> v = lib;
    if (self_check) {
      v.push_back(oracle_entry(&tr.truth));
      v.push_back(oracle_entry(&tr.truth, 1000, "oracle_plus_1us"));
    }
    return v;
  });
  out << "tsync shootout: " << opt.seeds << " seed(s) from " << opt.first_seed << (opt.quick ? ", quick traces" : "")
      << ", error grid " << opt.grid_ns / 1'000'000 << " ms; errors in ns (corrected host time − true host time)\n";
  print_table(out, rows, !s->text);
  if (!s->csv.empty() && !detail::write_shootout_csv(s->csv, rows, err)) return 1;
  return 0;
}

}  // namespace tsync::accuracy
