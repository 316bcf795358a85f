// `tsync simulate` (probes + truth from a scenario preset or file) and
// `tsync shootout` (the accuracy harness).
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tsync/io/file.hpp"
#include "tsync/accuracy/shootout.hpp"
#include "cli.hpp"
#include "tsync/sim.hpp"
#include "tsync/io/probes_csv.hpp"

namespace {

int run_simulate(const std::vector<std::string>& args) {
  const std::string cmd = "simulate";
  tsync::cli::options o(args, {"list", "print-scenario", "minimal"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"scenario", "scenario-file", "seed", "out", "truth", "truth-step-ms", "list",
                          "print-scenario", "minimal"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  if (o.has("list")) {
    for (const auto& n : tsync::sim::preset_names())
      std::cout << n << "  " << tsync::sim::preset(n)->description << '\n';
    return 0;
  }
  tsync::sim::scenario sc;
  if (auto f = o.get("scenario-file")) {
    if (o.has("scenario")) return tsync::cli::usage_error(cmd, "give --scenario or --scenario-file, not both");
    auto text = tsync::io::read_small_file(*f, std::size_t{1} << 20);
    if (!text) return tsync::cli::fail("simulate: scenario file " + text.error().message);
    auto parsed = tsync::sim::parse_scenario(*text);
    if (!parsed) {  // FILE:LINE: KEY: reason (no line when the value is a default)
      const auto& e = parsed.error();
      return tsync::cli::fail("simulate: " + *f + (e.line ? ":" + std::to_string(e.line) : std::string()) + ": " +
                              e.message);
    }
    sc = *parsed;
  } else {
    const auto name = o.get("scenario");
    if (!name) return tsync::cli::usage_error(cmd, "--scenario NAME (or --scenario-file FILE) is required");
    auto p = tsync::sim::preset(*name);
    if (!p) return tsync::cli::fail("simulate: unknown scenario '" + *name + "' (see tsync simulate --list)");
    sc = *p;
  }
  if (o.has("print-scenario")) {
    std::cout << tsync::sim::to_text(sc);
    return 0;
  }
  std::uint64_t seed = 1;
  if (auto s = o.get("seed")) {
    auto v = tsync::cli::parse_int<std::uint64_t>(*s);
    if (!v) return tsync::cli::usage_error(cmd, "--seed: not an unsigned 64-bit integer: '" + *s + "'");
    seed = *v;
  }
  std::int64_t truth_step = 100'000'000;
  if (auto s = o.get("truth-step-ms")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v || *v <= 0 || *v > 3'600'000) return tsync::cli::usage_error(cmd, "--truth-step-ms must be 1..3600000");
    truth_step = *v * 1'000'000;
  }
  auto tr = tsync::sim::simulate(sc, seed);
  if (!tr) return tsync::cli::fail(std::string("simulate: invalid scenario: ") + tsync::to_string(tr.error()));

  std::ostringstream comment;
  comment << "tsync simulate: scenario " << sc.name << ", seed " << seed << "\n"
          << "t1, t2: host ns (initiator); g: guest ns (responder); offset host - guest = (t1+t2)/2 - g\n"
          << "probes sent " << tr->stats.sent << ", recorded " << tr->stats.recorded << ", timeouts "
          << tr->stats.timeouts << ", mis-paired " << tr->stats.mispaired << ", duplicates " << tr->stats.duplicates
          << ", glitched " << tr->stats.glitched << "\n"
          << "asymmetry floor (m_f - m_b)/2 at start: " << sc.floor_at(sc.start_ns) << " ns";
  const bool minimal = o.has("minimal");
  if (auto f = o.get("out"); f && *f != "-") {
    std::ofstream out(*f);
    if (!out) return tsync::cli::fail("simulate: cannot write " + *f);
    tsync::io::write_probes_csv(out, tr->probes, comment.str(), minimal);
    if (!out) return tsync::cli::fail("simulate: write error on " + *f);
  } else {
    tsync::io::write_probes_csv(std::cout, tr->probes, comment.str(), minimal);
  }
  if (auto f = o.get("truth")) {
    std::ofstream out(*f);
    if (!out) return tsync::cli::fail("simulate: cannot write " + *f);
    out << "# tsync simulate truth: scenario " << sc.name << ", seed " << seed
        << "\n# the true guest clock reading at each host time (ns); offset host - guest = host - guest\n"
           "host,guest\n";
    for (const auto& pt : tsync::sim::truth_grid(*tr, truth_step)) out << pt.host << ',' << pt.guest << '\n';
    if (!out) return tsync::cli::fail("simulate: write error on " + *f);
  }
  return 0;
}

const tsync::cli::command_registrar simulate_cmd{{
    "simulate",
    "simulate probes (and the exact truth) for a scenario preset or file",
    "(--scenario NAME | --scenario-file FILE) [--seed N] [--out probes.csv] [--truth truth.csv]\n"
    "       [--truth-step-ms N] [--minimal] [--print-scenario] [--list]\n\n"
    "Run the link and clock simulator and write the probes an initiator (the host)\n"
    "records, as CSV: a '#' comment, the header 't1,g,t2,burst,id,vcpu' (or 't1,g,t2'\n"
    "with --minimal), one probe per line (integers, ns). --out - or no --out writes to\n"
    "standard output. --truth writes 'host,guest' pairs of the true guest clock every\n"
    "--truth-step-ms (default 100) over the trace. The same seed gives the same files.\n"
    "--list shows the presets; --print-scenario prints the scenario in the key=value\n"
    "format that --scenario-file reads (see docs/simulator.md).",
    run_simulate}};

const tsync::cli::command_registrar shootout_cmd{{
    "shootout",
    "run every estimator on every simulated scenario and print the accuracy table",
    tsync::accuracy::shootout_help,
    [](const std::vector<std::string>& args) { return tsync::accuracy::shootout_main(args, std::cout, std::cerr); }}};

}  // namespace
