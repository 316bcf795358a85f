// `tsync correct`: correct guest timestamps (stdin, one per line) to host
// timestamps (stdout) with a sync table; `--reverse` maps host to guest.
//
// Table sources are listed in `table_sources()`: each is an option name and a
// loader. Adding a source (say `--model FILE` from the estimators) is adding
// one entry there; the rest of the command does not change.
//
// `--tsc-writes FILE --vcpu N` is not a table source: KVM's offset changes
// (kvm_write_tsc_offset records of a host trace) need the whole guest stream
// at once to tell which offset each event had, so it has its own path,
// `run_tsc_writes`.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsync/io/file.hpp"
#include "tsync/io/model_json.hpp"
#include "tsync/io/session_model_json.hpp"
#include "tsync/estimate/breaks.hpp"
#include "tsync/correct.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/io/tsc_offset_records.hpp"
#include "tsync/sync/tsc_writes.hpp"
#include "tsync/io/json.hpp"
#include "tsync/estimate/model.hpp"

// correct_tracecmd.cpp: --rounding tracecmd
int run_correct_tracecmd_rounding(const char* cmd, const tsync::correct::sync_table& table, bool wrapped);

namespace {

using tsync::correct::correction_mode;
using tsync::correct::outside_policy;
using tsync::correct::sync_table;
using tsync::correct::table_options;

/// The host-time interval of one guest time (for `--bounds`); empty when the
/// source has none there.
using bounds_fn = std::function<std::optional<tsync::offset_interval>(std::int64_t guest, std::int64_t host)>;

/// What a segmented source says about one guest time.
struct seg_answer {
  enum class status : std::uint8_t { ok, unknown, error } st = status::ok;
  std::int64_t host = 0;
  std::optional<tsync::offset_interval> bounds;  ///< absolute host-time bounds {lo, hi}
  std::string error;
};

/// A table, and where its bounds come from.
struct loaded_table {
  sync_table table;
  bounds_fn bounds;  ///< returns absolute host-time bounds {lo, hi}
  /// Set when the source has several segments (breaks) and no --segment was
  /// given: every guest time is answered by it (never interpolated across a break).
  std::function<seg_answer(std::int64_t guest)> segmented;
  std::size_t segments = 1;
};

/// A table or a message for the user.
using table_or_message = tsync::expected<loaded_table, std::string>;

/// One way of obtaining a sync table.
struct table_source {
  std::string option;  ///< the option that selects it, without "--"
  std::function<table_or_message(const std::string& value, const table_options& opt,
                                 std::optional<std::uint32_t> segment)>
      load;
};

/// The drift bound `tsync sync` assumes (fit_options::max_drift): a table's
/// bounds widen by it outside the samples of their segment.
constexpr double table_max_drift = 1e-3;

/// Host-time bounds of guest time `g` corrected to `h` by one segment's table
/// (samples spanning [first, last]); empty when its samples carry none.
std::optional<tsync::offset_interval> table_bounds(const sync_table& t, std::int64_t first, std::int64_t last,
                                                   std::int64_t g, std::int64_t h) {
  auto o = t.bounds_at(tsync::at_ns<tsync::guest>(g));
  if (!o) return std::nullopt;
  const double dist = g < first ? static_cast<double>(first) - static_cast<double>(g)
                      : g > last ? static_cast<double>(g) - static_cast<double>(last) : 0.0;
  const auto w = static_cast<std::int64_t>(std::min(dist * table_max_drift + 1, 9e18)) + (dist > 0 ? 1 : 0);
  return tsync::offset_interval{h + o->lo - w, h + o->hi + w};
}

/// One segment of a table file.
struct table_part {
  std::uint32_t segment = 0, epoch = 0;
  std::int64_t first = 0, last = 0;
  std::shared_ptr<sync_table> table;
};

/// Split a parsed table into its segments (rows of one segment are contiguous).
tsync::expected<std::vector<table_part>, std::string> table_parts(const tsync::io::csv_table& ct, const table_options& opt,
                                                                 const std::string& path) {
  std::vector<table_part> parts;
  for (std::size_t i = 0; i < ct.samples.size();) {
    std::size_t j = i;
    std::vector<tsync::sync_sample> v;
    while (j < ct.samples.size() && ct.segments[j] == ct.segments[i]) v.push_back(ct.samples[j++]);
    for (const auto& p : parts)
      if (p.segment == ct.segments[i])
        return tsync::unexpected("table '" + path + "' line " + std::to_string(ct.lines[i]) + ": segment " +
                                 std::to_string(ct.segments[i]) + " appears twice (its rows must be contiguous)");
    if (auto bad = tsync::correct::check_samples(v, opt.mode))
      return tsync::unexpected("table '" + path + "' line " + std::to_string(ct.lines[i + bad->index]) + ": " +
                               tsync::to_string(bad->code) + " within segment " + std::to_string(ct.segments[i]));
    auto t = sync_table::make(v, opt);
    if (!t) return tsync::unexpected("table '" + path + "': segment " + std::to_string(ct.segments[i]) + ": " +
                                     tsync::to_string(t.error()));
    parts.push_back({ct.segments[i], ct.epochs[i], tsync::raw_ns(v.front().guest_time), tsync::raw_ns(v.back().guest_time),
                     std::make_shared<sync_table>(std::move(*t))});
    i = j;
  }
  return parts;
}

/// The answer of a segmented table: the candidate segments of `g`, the point
/// from the one whose samples hold it (else the earliest), bounds their union.
seg_answer table_answer(const std::vector<table_part>& parts, std::int64_t g) {
  std::vector<tsync::estimate::segment_span> spans;
  for (const auto& p : parts) spans.push_back({p.segment, p.epoch, p.first, p.last});
  const auto cand = tsync::estimate::segment_candidates(spans, g);
  seg_answer a;
  if (cand.empty() || tsync::estimate::candidates_ambiguous(spans, cand)) {
    a.st = seg_answer::status::unknown;
    return a;
  }
  std::size_t point = cand.front();
  for (auto k : cand)
    if (parts[k].first <= g && g <= parts[k].last) point = k;
  auto h = parts[point].table->correct(tsync::at_ns<tsync::guest>(g));
  if (!h) return {seg_answer::status::error, 0, std::nullopt, tsync::to_string(h.error())};
  a.host = tsync::raw_ns(*h);
  for (auto k : cand) {
    auto hk = parts[k].table->correct(tsync::at_ns<tsync::guest>(g));
    if (!hk) return {seg_answer::status::error, 0, std::nullopt, tsync::to_string(hk.error())};
    auto b = table_bounds(*parts[k].table, parts[k].first, parts[k].last, g, tsync::raw_ns(*hk));
    if (!b) return a;  // no bounds: the caller reports it
    a.bounds = a.bounds ? tsync::offset_interval{std::min(a.bounds->lo, b->lo), std::max(a.bounds->hi, b->hi)} : *b;
  }
  return a;
}

/// One segment's table as a plain source (bounds widened outside its samples).
loaded_table plain_table(const table_part& p) {
  auto shared = p.table;
  const auto first = p.first, last = p.last;
  bounds_fn b = [shared, first, last](std::int64_t g, std::int64_t h) { return table_bounds(*shared, first, last, g, h); };
  return loaded_table{*p.table, std::move(b), {}, 1};
}

table_or_message load_csv_file(const std::string& path, const table_options& opt, std::optional<std::uint32_t> segment) {
  auto text = tsync::io::read_small_file(path);
  if (!text) return tsync::unexpected("table " + text.error().message);
  const bool maybe_segmented = segment || text->find("segment") != std::string::npos;
  std::istringstream in(std::move(*text));
  if (maybe_segmented) {
    auto ct = tsync::io::parse_table_csv(in);
    if (!ct) return tsync::unexpected("table '" + path + "' " + ct.error().message);
    if (!ct->segments.empty()) {
      auto parts = table_parts(*ct, opt, path);
      if (!parts) return tsync::unexpected(parts.error());
      if (parts->empty()) return tsync::unexpected("table '" + path + "': the table has no samples");
      if (segment) {
        for (const auto& p : *parts)
          if (p.segment == *segment) return plain_table(p);
        return tsync::unexpected("table '" + path + "' has no segment " + std::to_string(*segment));
      }
      if (parts->size() == 1) return plain_table(parts->front());
      auto shared = std::make_shared<std::vector<table_part>>(std::move(*parts));
      loaded_table lt = plain_table(shared->front());
      lt.segments = shared->size();
      lt.segmented = [shared](std::int64_t g) { return table_answer(*shared, g); };
      return lt;
    }
    if (segment && *segment != 0) return tsync::unexpected("table '" + path + "' has no segment column (one segment, 0)");
    in.clear();
    in.seekg(0);
  }
  auto t = tsync::io::load_table_csv(in, opt);
  if (!t) {
    if (t.error().line == 0) return tsync::unexpected("table '" + path + "': " + t.error().message);
    return tsync::unexpected("table '" + path + "' " + t.error().message);
  }
  // A CSV table's samples carry bounds only when built from an estimator; use them when present.
  auto shared = std::make_shared<sync_table>(*t);  // the bounds outlive the move below
  const auto first = tsync::raw_ns(shared->samples().front().guest_time);
  const auto last = tsync::raw_ns(shared->samples().back().guest_time);
  bounds_fn b = [shared, first, last](std::int64_t g, std::int64_t h) { return table_bounds(*shared, first, last, g, h); };
  return loaded_table{std::move(*t), std::move(b), {}, 1};
}

/// One model as a plain source (its hard interval is exact).
table_or_message plain_model(const std::string& path, tsync::estimate::model m, const table_options& opt) {
  auto t = sync_table::make(m.to_sync_table(), opt);
  if (!t) return tsync::unexpected("model '" + path + "': " + tsync::to_string(t.error()));
  auto model = std::make_shared<tsync::estimate::model>(std::move(m));
  bounds_fn b = [model](std::int64_t g, std::int64_t) -> std::optional<tsync::offset_interval> {
    auto hb = model->hard_bounds(tsync::at_ns<tsync::guest>(g));
    if (!hb) return std::nullopt;
    return tsync::offset_interval{tsync::raw_ns(hb->lo), tsync::raw_ns(hb->hi)};
  };
  return loaded_table{std::move(*t), std::move(b), {}, 1};
}

// A piecewise model written by `tsync sync` / the estimators (model JSON,
// version 1, or version 2 with one part per segment), turned into
// interpolation samples by `model::to_sync_table()`.
table_or_message load_model_file(const std::string& path, const table_options& opt, std::optional<std::uint32_t> segment) {
  auto text = tsync::io::read_small_file(path, std::size_t{16} << 20);
  if (!text) return tsync::unexpected("model " + text.error().message);
  auto sm = tsync::io::read_session_model_json(*text);
  if (!sm) return tsync::unexpected("model '" + path + "' " + sm.error().what());
  if (opt.mode != correction_mode::interpolate)
    return tsync::unexpected(std::string("a model is a drift model: use --mode interpolate"));
  if (segment) {
    for (auto& p : sm->parts)
      if (p.segment == *segment) return plain_model(path, std::move(p.model), opt);
    return tsync::unexpected("model '" + path + "' has no segment " + std::to_string(*segment));
  }
  if (sm->parts.size() == 1) return plain_model(path, std::move(sm->parts.front().model), opt);
  auto shared = std::make_shared<tsync::estimate::session_model>(std::move(*sm));
  auto lt = plain_model(path, shared->parts.front().model, opt);
  if (!lt) return lt;
  lt->segments = shared->parts.size();
  lt->segmented = [shared](std::int64_t g) -> seg_answer {
    auto q = tsync::estimate::query(*shared, g);
    if (!q) return {seg_answer::status::error, 0, std::nullopt, tsync::to_string(q.error())};
    if (!q->known) return {seg_answer::status::unknown, 0, std::nullopt, {}};
    return {seg_answer::status::ok, q->host, tsync::offset_interval{q->lo, q->hi}, {}};
  };
  return lt;
}

std::vector<table_source> table_sources() {
  return {
      {"table", load_csv_file},
      {"model", load_model_file},
  };
}

/// Buffered output of decimal numbers, one per line.
class line_writer {
 public:
  ~line_writer() { flush(); }
  line_writer() = default;
  line_writer(const line_writer&) = delete;
  line_writer& operator=(const line_writer&) = delete;
  void put(std::int64_t v) {
    buf_ += std::to_string(v);
    buf_ += '\n';
    if (buf_.size() > (1u << 16)) flush();
  }
  void put_u64(std::uint64_t v) {
    buf_ += std::to_string(v);
    buf_ += '\n';
    if (buf_.size() > (1u << 16)) flush();
  }
  /// `ambiguous: h1 h2 ...` for an event whose offset the data cannot decide;
  /// when not every candidate is shown, `ambiguous: h1 h2 h3 ... hN (N candidates)`.
  void put_ambiguous(const std::vector<std::uint64_t>& shown, std::size_t candidates) {
    buf_ += "ambiguous:";
    for (std::size_t i = 0; i < shown.size(); ++i) {
      if (i + 1 == shown.size() && candidates > shown.size()) buf_ += " ...";
      buf_ += ' ';
      buf_ += std::to_string(shown[i]);
    }
    if (candidates > shown.size()) buf_ += " (" + std::to_string(candidates) + " candidates)";
    buf_ += '\n';
    if (buf_.size() > (1u << 16)) flush();
  }
  void put_row(std::int64_t v, std::int64_t lo, std::int64_t hi) {
    buf_ += std::to_string(v);
    buf_ += ',';
    buf_ += std::to_string(lo);
    buf_ += ',';
    buf_ += std::to_string(hi);
    buf_ += '\n';
    if (buf_.size() > (1u << 16)) flush();
  }
  void put_text(std::string_view t) {
    buf_ += t;
    buf_ += '\n';
    if (buf_.size() > (1u << 16)) flush();
  }
  void flush() {
    if (!buf_.empty()) std::fwrite(buf_.data(), 1, buf_.size(), stdout);
    buf_.clear();
    std::fflush(stdout);
  }

 private:
  std::string buf_;
};

/// Exit status of `--tsc-writes` when some events are ambiguous (all lines are written).
constexpr int exit_ambiguous = 3;

// `--tsc-writes FILE --vcpu N [--ratio R --frac-bits F]`: guest TSCs of one
// per-CPU stream (stdin) to host TSCs, through the offset periods of vCPU N.
int run_tsc_writes(const char* cmd, const tsync::cli::options& o) {
  for (const char* other : {"mode", "outside", "reverse", "bounds"})
    if (o.has(other)) return tsync::cli::usage_error(cmd, std::string("--") + other + " does not apply to --tsc-writes");
  for (const auto& s : table_sources())
    if (o.has(s.option)) return tsync::cli::usage_error(cmd, "give only one of --tsc-writes and --" + s.option);
  const auto path = o.get("tsc-writes");
  if (!path) return tsync::cli::usage_error(cmd, "--tsc-writes needs a value");
  const auto vcpu_text = o.get("vcpu");
  if (!vcpu_text) return tsync::cli::usage_error(cmd, "--tsc-writes needs --vcpu N (the vCPU of the guest stream)");
  const auto vcpu = tsync::cli::parse_int<std::uint32_t>(*vcpu_text);
  if (!vcpu) return tsync::cli::usage_error(cmd, "--vcpu must be an unsigned 32-bit number, not '" + *vcpu_text + "'");
  std::uint64_t ratio = 1;
  unsigned frac = 0;
  if (o.has("ratio") != o.has("frac-bits")) return tsync::cli::usage_error(cmd, "--ratio and --frac-bits go together");
  if (o.has("ratio")) {
    const auto r = tsync::cli::parse_int<std::uint64_t>(o.get("ratio").value_or(""));
    const auto f = tsync::cli::parse_int<unsigned>(o.get("frac-bits").value_or(""));
    if (!r || *r == 0) return tsync::cli::usage_error(cmd, "--ratio must be a positive unsigned 64-bit number");
    if (!f || *f > 63) return tsync::cli::usage_error(cmd, "--frac-bits must be a number from 0 to 63");
    ratio = *r;
    frac = *f;
  }

  std::optional<std::uint64_t> start;
  if (auto st = o.get("start")) {
    start = tsync::cli::parse_int<std::uint64_t>(*st);
    if (!start) return tsync::cli::usage_error(cmd, "--start must be an unsigned 64-bit host TSC, not '" + *st + "'");
  } else if (o.has("start")) {
    return tsync::cli::usage_error(cmd, "--start needs a value");
  }

  if (auto ok = tsync::io::check_input_file(*path); !ok)
    return tsync::cli::fail(std::string(cmd) + ": cannot open trace " + ok.error().message);
  std::ifstream in(*path, std::ios::binary);
  if (!in) return tsync::cli::fail(std::string(cmd) + ": cannot open trace '" + *path + "': " + std::strerror(errno));
  auto recs = tsync::io::read_tsc_offset_records(in);
  if (!recs) return tsync::cli::fail(std::string(cmd) + ": trace '" + *path + "' " + recs.error().what());
  tsync::sync::tsc_write_pipeline::options po;
  po.vcpu = *vcpu;
  po.ratio = ratio;
  po.frac_bits = static_cast<std::uint8_t>(frac);
  po.start = start;
  auto pipe = tsync::sync::tsc_write_pipeline::make({std::move(recs->writes), std::move(recs->lines)}, po);
  if (!pipe) {
    const auto& e = pipe.error();
    return tsync::cli::fail(std::string(cmd) + ": trace '" + *path + "' " + (e.line ? e.what() : e.message));
  }

  std::vector<std::uint64_t> guest;  // the resolver needs the whole stream
  if (int rc = tsync::cli::for_each_number_line<std::uint64_t>(std::cin, cmd, [&](std::uint64_t v, std::size_t) {
        guest.push_back(v);
        return 0;
      });
      rc != 0)
    return rc;
  const auto res = pipe->resolve(guest);
  if (!res)
    return tsync::cli::fail(std::string(cmd) + ": the guest stream fits no sequence of vCPU " + std::to_string(*vcpu) +
                            "'s offsets (" + tsync::to_string(res.error()) +
                            "): it goes backward within a period, holds events of another vCPU, or a record is missing");
  line_writer out;
  std::size_t ambiguous = 0;
  for (std::size_t i = 0; i < guest.size(); ++i) {
    const auto ev = pipe->event(*res, guest, i);
    if (!ev) {
      out.flush();
      return tsync::cli::fail(std::string(cmd) + ": event " + std::to_string(i + 1) + ": " + tsync::to_string(ev.error()));
    }
    if (ev->host) {
      out.put_u64(*ev->host);
    } else {
      out.put_ambiguous(ev->shown, ev->candidates);
      ++ambiguous;
    }
  }
  out.flush();
  if (ambiguous == 0) return 0;
  std::cerr << "tsync " << cmd << ": " << ambiguous << " of " << guest.size()
            << " events are ambiguous: several offsets of vCPU " << *vcpu
            << " fit them (their lines list the host time under each)\n";
  return exit_ambiguous;
}

/// Exit status when some guest times are unknown (all lines are written).
constexpr int exit_unknown = 3;

/// A source with several segments: each guest time answered by its segments
/// (a wide interval in a gap between segments, "unknown" where times of two
/// epochs meet); exits `exit_unknown` after writing every line when some are unknown.
int run_segmented(const char* cmd, const loaded_table& src, bool with_bounds, const std::string& option) {
  line_writer out;
  std::size_t unknown = 0, total = 0;
  int rc = tsync::cli::for_each_number_line<std::int64_t>(std::cin, cmd, [&](std::int64_t v, std::size_t line) {
    ++total;
    const auto a = src.segmented(v);
    if (a.st == seg_answer::status::unknown) {
      out.put_text("unknown");
      ++unknown;
      return 0;
    }
    if (a.st == seg_answer::status::error) {
      out.flush();
      std::cerr << "tsync " << cmd << ": line " << line << ": guest time " << v << ": " << a.error << '\n';
      return 1;
    }
    if (!with_bounds) {
      out.put(a.host);
      return 0;
    }
    if (!a.bounds) {
      out.flush();
      std::cerr << "tsync " << cmd << ": line " << line << ": guest time " << v << ": the " << option
                << " has no interval here (the table's samples carry no bounds)\n";
      return 1;
    }
    out.put_row(a.host, a.bounds->lo, a.bounds->hi);
    return 0;
  });
  out.flush();
  if (rc != 0 || unknown == 0) return rc;
  std::cerr << "tsync " << cmd << ": " << unknown << " of " << total << " guest times are unknown: the " << option
            << " has " << src.segments << " segments and times of different epochs (before and after a reboot or a "
               "backward clock step) meet there; give --segment N\n";
  return exit_unknown;
}

int run_correct(const std::vector<std::string>& args) {
  const char* cmd = "correct";
  tsync::cli::options o(args, {"reverse", "bounds", "wrapped"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  std::vector<std::string> known{"mode", "outside", "reverse", "bounds", "tsc-writes", "vcpu", "ratio", "frac-bits",
                                 "start", "rounding", "wrapped", "segment"};
  const auto sources = table_sources();
  for (const auto& s : sources) known.push_back(s.option);
  if (auto u = o.unknown(known)) return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  if (o.has("tsc-writes")) return run_tsc_writes(cmd, o);
  for (const char* only : {"vcpu", "ratio", "frac-bits", "start"})
    if (o.has(only)) return tsync::cli::usage_error(cmd, std::string("--") + only + " applies to --tsc-writes only");
  std::optional<std::uint32_t> segment;
  if (o.has("segment")) {
    const auto v = o.get("segment");
    segment = v ? tsync::cli::parse_int<std::uint32_t>(*v) : std::nullopt;
    if (!segment) return tsync::cli::usage_error(cmd, "--segment needs a segment id (an unsigned number)");
  }

  table_options opt;
  if (auto m = o.get("mode")) {
    if (*m == "interpolate") opt.mode = correction_mode::interpolate;
    else if (*m == "step") opt.mode = correction_mode::step;
    else return tsync::cli::usage_error(cmd, "--mode must be interpolate or step, not '" + *m + "'");
  }
  if (auto p = o.get("outside")) {
    if (*p == "extrapolate") opt.outside = outside_policy::extrapolate;
    else if (*p == "clamp") opt.outside = outside_policy::clamp;
    else if (*p == "reject") opt.outside = outside_policy::reject;
    else return tsync::cli::usage_error(cmd, "--outside must be extrapolate, clamp or reject, not '" + *p + "'");
  }
  const table_source* chosen = nullptr;
  std::string value;
  for (const auto& s : sources) {
    if (!o.has(s.option)) continue;
    if (chosen != nullptr) return tsync::cli::usage_error(cmd, "give only one of the table sources");
    auto v = o.get(s.option);
    if (!v) return tsync::cli::usage_error(cmd, "--" + s.option + " needs a value");
    chosen = &s;
    value = *v;
  }
  if (chosen == nullptr) return tsync::cli::usage_error(cmd, "a sync table is needed (--table FILE or --model FILE)");
  auto loaded = chosen->load(value, opt, segment);
  if (!loaded) return tsync::cli::fail(std::string(cmd) + ": " + loaded.error());
  const sync_table* table = &loaded->table;

  const bool reverse = o.has("reverse");
  const bool with_bounds = o.has("bounds");
  if (reverse && with_bounds) return tsync::cli::usage_error(cmd, "--bounds applies to guest-to-host correction only");
  if (reverse && !table->invertible())
    return tsync::cli::fail(std::string(cmd) +
                            ": the table's host times go backward between samples: host to guest is ambiguous");
  if (const auto rounding = o.get("rounding"); rounding && *rounding != "floor") {
    if (loaded->segmented)
      return tsync::cli::fail(std::string(cmd) + ": --rounding tracecmd needs one segment: give --segment N");
    if (*rounding != "tracecmd") return tsync::cli::usage_error(cmd, "--rounding must be floor or tracecmd, not '" + *rounding + "'");
    if (reverse || with_bounds) return tsync::cli::usage_error(cmd, "--rounding tracecmd corrects guest to host only");
    return run_correct_tracecmd_rounding(cmd, *table, o.has("wrapped"));
  }
  if (o.has("wrapped")) return tsync::cli::usage_error(cmd, "--wrapped goes with --rounding tracecmd");
  if (loaded->segmented) {
    if (reverse)
      return tsync::cli::fail(std::string(cmd) + ": the " + chosen->option + " has " +
                              std::to_string(loaded->segments) +
                              " segments (breaks): host to guest needs one; give --segment N");
    return run_segmented(cmd, *loaded, with_bounds, chosen->option);
  }
  tsync::correct::cursor cur(*table);
  line_writer out;
  return tsync::cli::for_each_number_line<std::int64_t>(std::cin, cmd, [&](std::int64_t v, std::size_t line) {
    // host -> guest through the typed scalar entry point; guest -> host through the cursor (raw hot path)
    tsync::expected<std::int64_t, tsync::errc> r = tsync::unexpected(tsync::errc::invalid_argument);
    if (reverse) {
      auto g = table->to_guest(tsync::at_ns<tsync::host>(v));
      r = g ? tsync::expected<std::int64_t, tsync::errc>(tsync::raw_ns(*g)) : tsync::unexpected(g.error());
    } else {
      r = cur.correct(v);
    }
    if (!r) {
      out.flush();
      std::cerr << "tsync " << cmd << ": line " << line << ": " << (reverse ? "host" : "guest") << " time " << v
                << ": " << tsync::to_string(r.error()) << '\n';
      return 1;
    }
    if (!with_bounds) {
      out.put(*r);
      return 0;
    }
    const auto b = loaded->bounds(v, *r);
    if (!b) {
      out.flush();
      std::cerr << "tsync " << cmd << ": line " << line << ": guest time " << v
                << ": the " << chosen->option << " has no interval here (the table's samples carry no bounds)\n";
      return 1;
    }
    out.put_row(*r, b->lo, b->hi);
    return 0;
  });
}

const tsync::cli::command_registrar reg_correct{tsync::cli::command{
    "correct", "correct guest timestamps to host time with a sync table",
    "(--table FILE | --model FILE) [--segment N] [--mode interpolate|step]\n"
    "                [--outside extrapolate|clamp|reject] [--reverse | --bounds | --rounding floor|tracecmd [--wrapped]]\n"
    "       tsync correct --tsc-writes FILE --vcpu N [--ratio R --frac-bits F] [--start T]\n\n"
    "Reads timestamps from stdin, one decimal integer per line ('#' comments and blank\n"
    "lines are skipped), and writes the corrected timestamps to stdout, one per line.\n\n"
    "  --table FILE   the sync table: one sample per line, 'time,offset[,ratio,frac_bits]',\n"
    "                 sorted by time, '#' comments; offset = host - guest. With scaling\n"
    "                 (step mode) host = ceil((guest + offset) * 2^frac_bits / ratio).\n"
    "  --model FILE   a model JSON written by 'tsync estimate' (interpolate mode): its segments\n"
    "                 become interpolation samples.\n"
    "  --mode M       interpolate (default): offset interpolated linearly between samples,\n"
    "                 rounded toward minus infinity; step: the last sample at or before\n"
    "                 the event applies (KVM).\n"
    "  --outside P    outside the sampled range: extrapolate (default) along the nearest\n"
    "                 segment, clamp to the nearest sample's offset, or reject (error).\n"
    "  --reverse      map host timestamps to guest timestamps (the first guest time whose\n"
    "                 host time is at or after the input).\n"
    "  --bounds       write 'host,lo,hi' per line: the corrected time and the interval of host\n"
    "                 times the data allow (a model's hard interval, from causality; a table's\n"
    "                 offset_lo/offset_hi columns, widened by 1000 ppm of the distance outside\n"
    "                 its segment's samples).\n"
    "  --segment N    use segment N of a table or model written by 'tsync sync' (segments are\n"
    "                 separated by breaks: a pause, a clock step, a reboot). Without it, a guest\n"
    "                 time is corrected by the segment whose samples hold it; between the last\n"
    "                 sample before a break and the first after, the interval covers both sides\n"
    "                 and the point is the earlier segment's (nothing is interpolated across a\n"
    "                 break); where the times of two epochs meet (after a reboot, guest times\n"
    "                 repeat) the line is 'unknown' and the command exits with status 3 after\n"
    "                 writing every line.\n"
    "  --rounding R   floor (default): tsync's exact correction, rounded toward minus infinity;\n"
    "                 tracecmd: trace-cmd 3.1.6's arithmetic bit for bit (round half up of\n"
    "                 o0 + ((t - t0)(o1 - o0) + delta/2) / delta, the pair chosen as trace-cmd\n"
    "                 does), as 'trace-cmd report -t' prints. Where trace-cmd's 64-bit product\n"
    "                 wraps, stderr counts the events and shows the first ones, and the exact\n"
    "                 value of its formula is written (--wrapped: trace-cmd's wrapped value).\n\n"
    "Errors (a malformed table or input line, a result outside the signed 64-bit range)\n"
    "name the line and exit with status 1.\n\n"
    "KVM offset changes (a guest TSC write, hotplug, migration), instead of a table:\n\n"
    "  --tsc-writes FILE  a host trace holding kvm:kvm_write_tsc_offset records, as text from\n"
    "                 tracefs or 'trace-cmd report', recorded with the x86-tsc clock\n"
    "                 (trace-cmd record -C x86-tsc -e kvm:kvm_write_tsc_offset ...). Other lines\n"
    "                 are skipped. Stdin holds the guest TSCs of one per-CPU stream of vCPU N,\n"
    "                 in ring-buffer order; the whole stream is read, each event is placed in\n"
    "                 one of the vCPU's offset periods, and its host TSC is written, one per\n"
    "                 line. An event that several periods fit is written as\n"
    "                 'ambiguous: H1 H2 ...' (its host TSC under each) and the command exits\n"
    "                 with status 3 after writing every line.\n"
    "  --vcpu N       the vCPU whose records apply.\n"
    "  --ratio R --frac-bits F  the vCPU's TSC scaling (debugfs tsc-scaling-ratio and\n"
    "                 tsc-scaling-ratio-frac-bits; default: none).\n"
    "  --start T      no event of the stream is before host TSC T (for instance the time of the\n"
    "                 vCPU's creation record): the records at or before T only give the offset\n"
    "                 in force at T.\n"
    "                 Without it, events soon after the vCPU's creation record also fit the\n"
    "                 period before it and come out ambiguous.\n"
    "A stream that fits no sequence of the vCPU's offsets is an error (status 1).",
    run_correct}};

}  // namespace
