// `tsync estimate`: fit a guest->host model to a probes CSV and write it as JSON.
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsync/io/file.hpp"
#include "tsync/io/text.hpp"
#include "tsync/estimate.hpp"
#include "tsync/io/probes_csv.hpp"

namespace {

constexpr const char* help_text =
    "--estimator NAME [options] PROBES.csv\n"
    "       tsync estimate --list\n\n"
    "Fit a guest->host model to two-way probes and print it as JSON (or write it\n"
    "to --out). PROBES.csv holds one probe per line, t1,g,t2[,burst[,id[,vcpu]]]\n"
    "or columns named by a header line (see `tsync simulate`); '-' reads stdin.\n"
    "The model (segments with offset, slope, reference time, hard and statistical\n"
    "intervals, diagnostics) is what `tsync correct --model` reads.\n\n"
    "  --estimator NAME  one of --list (default: segmented)\n"
    "  --out FILE        write the model to FILE and print a summary instead\n"
    "  --vcpu N          use only the probes of vCPU N (default: all probes)\n"
    "  --strict          fail on the first bad probe (t2 < t1, duplicate id)\n"
    "                    instead of rejecting and counting it\n"
    "  --max-drift PPM   largest plausible |drift| (default 1000)\n"
    "  --no-filter       keep probes the outlier gate would drop\n"
    "  --list            list the estimators and exit\n\n"
    "PROBES.csv is read as a stream (up to 4 GiB); only the probes are kept.";

int list_estimators() {
  for (const auto& e : tsync::estimate::estimators())
    std::cout << e.name << std::string(e.name.size() < 18 ? 18 - e.name.size() : 1, ' ') << e.kind << "  " << e.summary
              << '\n';
  return 0;
}

int run(const std::vector<std::string>& args) {
  tsync::cli::options o(args, {"list", "strict", "no-filter"});
  if (!o.error().empty()) return tsync::cli::usage_error("estimate", o.error());
  if (auto u = o.unknown({"estimator", "out", "vcpu", "strict", "max-drift", "no-filter", "list"}))
    return tsync::cli::usage_error("estimate", "unknown option --" + *u);
  if (o.has("list")) return list_estimators();
  if (o.positional().size() != 1) return tsync::cli::usage_error("estimate", "expected one probes CSV file");
  const std::string name = o.get("estimator").value_or("segmented");
  bool known = false;
  for (auto n : tsync::estimate::names()) known = known || n == name;
  if (!known) return tsync::cli::usage_error("estimate", "unknown estimator '" + name + "' (see --list)");

  tsync::estimate::fit_options fo;
  fo.strict = o.has("strict");
  fo.filter_outliers = !o.has("no-filter");
  if (auto d = o.get("max-drift")) {
    double ppm = 0;
    if (tsync::io::parse_decimal(*d, ppm) != tsync::errc::ok || ppm <= 0 || ppm > 5e5)
      return tsync::cli::usage_error("estimate", "--max-drift needs a positive number of ppm (at most 500000)");
    fo.max_drift = ppm * 1e-6;
  }
  std::optional<std::uint32_t> vcpu;
  if (auto v = o.get("vcpu")) {
    vcpu = tsync::cli::parse_int<std::uint32_t>(*v);
    if (!vcpu) return tsync::cli::usage_error("estimate", "--vcpu needs an unsigned 32-bit number");
  }

  const std::string& path = o.positional().front();
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    if (auto ok = tsync::io::check_input_file(path); !ok) return tsync::cli::fail("estimate: " + ok.error().message);
    file.open(path);
    if (!file) return tsync::cli::fail("estimate: cannot open '" + path + "'");
    in = &file;
  }
  // The CSV is streamed line by line (only the probes are kept, about 40 bytes
  // each): inputs up to 4 GiB (some 70 M probes) instead of the 64 MiB default.
  tsync::io::text_limits limits;
  limits.max_bytes = std::size_t{4} << 30;
  auto probes = tsync::io::read_probes_csv(*in, limits);
  if (!probes) return tsync::cli::fail("estimate: " + path + ": " + probes.error().what());
  std::vector<tsync::probe_sample>& use = *probes;  // filtered in place: a trace is not held twice
  if (vcpu) std::erase_if(use, [&](const tsync::probe_sample& p) { return p.vcpu != *vcpu; });
  if (use.empty()) return tsync::cli::fail("estimate: " + path + ": no probes" + (vcpu ? " for that vCPU" : ""));

  auto m = tsync::estimate::fit(name, use, fo);
  if (!m) return tsync::cli::fail("estimate: " + name + ": " + to_string(m.error()));
  const std::string json = m->to_json();
  if (auto out = o.get("out")) {
    std::ofstream f(*out);
    f << json;
    f.flush();
    if (!f) return tsync::cli::fail("estimate: cannot write '" + *out + "'");
    std::cout << name << ": " << m->segments.size() << " segment(s), " << use.size() << " probes read -> " << *out
              << '\n';
  } else {
    std::cout << json;
  }
  return 0;
}

const tsync::cli::command_registrar reg{
    {"estimate", "fit a guest->host model to a probes CSV (JSON out)", help_text, run}};

}  // namespace
