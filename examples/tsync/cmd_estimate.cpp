// `tsync estimate`: fit a guest->host model to a probes CSV and write it as JSON.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "tsync/io/file.hpp"
#include "tsync/io/text.hpp"
#include "tsync/estimate.hpp"
#include "tsync/io/probes_csv.hpp"
#include "tsync/io/session_model_json.hpp"
#include "tsync/sync/output_file.hpp"
#include "tsync/sync/whole_trace.hpp"

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
    "  --segment N       use only the probes of segment N (the segment column\n"
    "                    of PREFIX.probes.csv from `tsync sync`)\n"
    "  --breaks          find clock breaks offline (steps, backward time, frequency\n"
    "                    steps; as `tsync sync` does while it runs, one burst = one\n"
    "                    series) and fit each segment between them\n"
    "  --initiator host|guest  the side that took t1 and t2 (default: the file's\n"
    "                    '# initiator:' line, else host). guest: t1, t2 are the\n"
    "                    guest's stamps and g the host's (`tsync sync --role guest`);\n"
    "                    each probe is turned around before the fit\n"
    "  --strict          fail on the first bad probe (t2 < t1, duplicate id)\n"
    "                    instead of rejecting and counting it\n"
    "  --max-drift PPM   largest plausible |drift| (default 1000)\n"
    "  --no-filter       keep probes the outlier gate would drop\n"
    "  --list            list the estimators and exit\n\n"
    "A file with a segment column and several segments (from `tsync sync`, where\n"
    "breaks were found) is fitted segment by segment unless --segment picks one.\n"
    "With segments, the model is a session model (format version 2, with `parts` and\n"
    "`breaks`, as `tsync sync` writes PREFIX.vcpuN.model.json); this needs the\n"
    "probes of one vCPU (--vcpu N). Breaks found are reported on stderr.\n\n"
    "PROBES.csv is read as a stream (up to 4 GiB); only the probes are kept.";

int list_estimators() {
  for (const auto& e : tsync::estimate::estimators())
    std::cout << e.name << std::string(e.name.size() < 18 ? 18 - e.name.size() : 1, ' ') << e.kind << "  " << e.summary
              << '\n';
  return 0;
}

/// The `# initiator: host|guest` line among the leading comments of a probes
/// file (`tsync sync` writes one), or nothing.
std::optional<std::string> initiator_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  for (int n = 0; n < 64 && std::getline(in, line) && (line.empty() || line.front() == '#'); ++n) {
    constexpr std::string_view key = "# initiator: ";
    if (line.size() > key.size() && std::string_view(line).substr(0, key.size()) == key) return line.substr(key.size());
  }
  return std::nullopt;
}

/// Keep the probes (and their segments) for which `keep(i)` holds, in place.
template <class Keep>
void keep_if(std::vector<tsync::probe_sample>& probes, std::vector<std::uint32_t>& segments, Keep keep) {
  std::size_t out = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (!keep(i)) continue;
    probes[out] = probes[i];
    if (!segments.empty()) segments[out] = segments[i];
    ++out;
  }
  probes.resize(out);
  if (!segments.empty()) segments.resize(out);
}

/// Offline break detection: each run of probes with the same burst is one series.
tsync::expected<tsync::estimate::session_model, tsync::errc> fit_with_breaks(
    const std::string& name, const std::vector<tsync::probe_sample>& use, const tsync::estimate::fit_options& fo) {
  tsync::sync::whole_trace_options wo;
  wo.estimator = name;
  wo.fit = fo;
  tsync::sync::whole_trace_tracker tracker(wo);
  for (std::size_t i = 0; i < use.size();) {
    std::size_t j = i + 1;
    while (j < use.size() && use[j].burst == use[i].burst) ++j;
    for (const auto& b : tracker.add_series(std::span(use).subspan(i, j - i)))
      std::cerr << "tsync estimate: break (" << tsync::estimate::to_string(b.kind) << ") in burst " << b.series << ": "
                << b.reason << (b.step ? "; the offset moved by " + std::to_string(*b.step) + " ns" : std::string())
                << "; segment " << b.segment << " starts at guest time " << b.guest_after << '\n';
    i = j;
  }
  if (tracker.dropped() != 0)
    std::cerr << "tsync estimate: " << tracker.dropped() << " probe(s) dropped as glitches (not confirmed by the next)\n";
  return tracker.fit();
}

/// The segments of a `tsync sync` probes file, each fitted alone. A segment whose
/// first guest time is not after the previous one's last starts a new epoch (the
/// guest clock went back there).
tsync::expected<tsync::estimate::session_model, tsync::errc> fit_by_segment(
    const std::string& name, const std::vector<tsync::probe_sample>& use, const std::vector<std::uint32_t>& seg,
    const tsync::estimate::fit_options& fo) {
  tsync::estimate::session_model sm;
  sm.estimator = name;
  std::vector<std::uint32_t> ids(seg);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::uint32_t epoch = 0;
  for (auto id : ids) {
    std::vector<tsync::probe_sample> part;
    for (std::size_t i = 0; i < use.size(); ++i)
      if (seg[i] == id) part.push_back(use[i]);
    std::int64_t first = part.front().g, last = part.front().g;
    for (const auto& p : part) first = std::min(first, p.g), last = std::max(last, p.g);
    if (!sm.parts.empty() && first <= sm.parts.back().last_guest) ++epoch;
    auto m = tsync::estimate::fit(name, part, fo);
    if (!m) {
      std::cerr << "tsync estimate: segment " << id << " (" << part.size()
                << " probes): " << to_string(m.error()) << "; left out\n";
      continue;
    }
    sm.parts.push_back(tsync::estimate::model_part{id, epoch, first, last, std::move(*m)});
  }
  if (sm.parts.empty()) return tsync::unexpected(tsync::errc::empty_input);
  return sm;
}

int run(const std::vector<std::string>& args) {
  tsync::cli::options o(args, {"list", "strict", "no-filter", "breaks"});
  if (!o.error().empty()) return tsync::cli::usage_error("estimate", o.error());
  if (auto u = o.unknown({"estimator", "out", "vcpu", "segment", "breaks", "initiator", "strict", "max-drift",
                          "no-filter", "list"}))
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
  std::optional<std::uint32_t> vcpu, segment;
  if (auto v = o.get("vcpu")) {
    vcpu = tsync::cli::parse_int<std::uint32_t>(*v);
    if (!vcpu) return tsync::cli::usage_error("estimate", "--vcpu needs an unsigned 32-bit number");
  }
  if (auto v = o.get("segment")) {
    segment = tsync::cli::parse_int<std::uint32_t>(*v);
    if (!segment) return tsync::cli::usage_error("estimate", "--segment needs an unsigned 32-bit number");
  }
  const bool breaks = o.has("breaks");
  if (breaks && segment) return tsync::cli::usage_error("estimate", "--breaks finds the segments itself: drop --segment");

  const std::string& path = o.positional().front();
  std::string initiator = o.get("initiator").value_or("");
  if (!initiator.empty() && initiator != "host" && initiator != "guest")
    return tsync::cli::usage_error("estimate", "bad --initiator '" + initiator + "' (host or guest)");
  if (initiator.empty()) initiator = path != "-" ? initiator_of(path).value_or("host") : "host";
  if (initiator != "host" && initiator != "guest")
    return tsync::cli::fail("estimate: " + path + ": unknown '# initiator: " + initiator + "' line (host or guest)");
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
  auto read = tsync::io::read_probes_csv_segments(*in, limits);
  if (!read) return tsync::cli::fail("estimate: " + path + ": " + read.error().what());
  std::vector<tsync::probe_sample>& use = read->probes;  // filtered in place: a trace is not held twice
  std::vector<std::uint32_t>& seg = read->segments;
  if (segment && seg.empty())
    return tsync::cli::fail("estimate: " + path + ": --segment needs a segment column (PREFIX.probes.csv of `tsync sync` has one)");
  if (vcpu || segment)
    keep_if(use, seg, [&](std::size_t i) { return (!vcpu || use[i].vcpu == *vcpu) && (!segment || seg[i] == *segment); });
  if (use.empty())
    return tsync::cli::fail("estimate: " + path + ": no probes" + (vcpu ? " for that vCPU" : "") +
                            (segment ? " in that segment" : ""));

  if (initiator == "guest")  // into the registry's convention: t1, t2 on the host, g on the guest
    for (auto& p : use) p = tsync::sync::from_guest_initiator(p, fo.max_drift);

  const bool by_segment =
      !breaks && !segment && !seg.empty() && std::any_of(seg.begin(), seg.end(), [&](auto s) { return s != seg.front(); });
  if (breaks || by_segment) {
    if (std::any_of(use.begin(), use.end(), [&](const auto& p) { return p.vcpu != use.front().vcpu; }))
      return tsync::cli::usage_error("estimate", std::string(breaks ? "--breaks" : "a file with several segments") +
                                                     " needs the probes of one vCPU: add --vcpu N");
  }
  std::string json;
  std::string summary;
  if (breaks || by_segment) {
    auto sm = breaks ? fit_with_breaks(name, use, fo) : fit_by_segment(name, use, seg, fo);
    if (!sm) return tsync::cli::fail("estimate: " + name + ": " + to_string(sm.error()));
    json = tsync::io::session_model_to_json(*sm, tsync::io::output_labels{}, use.front().vcpu);
    summary = std::to_string(sm->parts.size()) + " segment(s) fitted, " + std::to_string(sm->breaks.size()) + " break(s)";
  } else {
    auto m = tsync::estimate::fit(name, use, fo);
    if (!m) return tsync::cli::fail("estimate: " + name + ": " + to_string(m.error()));
    json = m->to_json();
    summary = std::to_string(m->segments.size()) + " segment(s)";
  }
  if (auto out = o.get("out")) {
    auto f = tsync::sync::atomic_file::create(*out);
    f << json;
    if (auto r = f.commit(); !r) return tsync::cli::fail("estimate: " + r.error().what());
    std::cout << name << ": " << summary << ", " << use.size() << " probes read -> " << *out << '\n';
  } else {
    std::cout << json;
    std::cout.flush();
    if (!std::cout) return tsync::cli::fail("estimate: cannot write the model to stdout");
  }
  return 0;
}

const tsync::cli::command_registrar reg{
    {"estimate", "fit a guest->host model to a probes CSV (JSON out)", help_text, run}};

}  // namespace
