// `tsync tracecmd merge HOST.dat GUEST.dat...`: one host-time timeline of a host
// trace and its guests' traces, as `trace-cmd report`-style text or as Chrome
// trace-event JSON. Built only with the optional tsync::tracecmd target
// (Debian's libtracecmd); the engine is io/tracecmd_merge.hpp, this file only
// chooses each guest vCPU's mapping to host time:
//
//   --model SPEC / --table SPEC   tsync's model JSON / sync table CSV; SPEC is
//                                 [gI.][vN=]FILE ("%v" in FILE is the vCPU)
//   --tsc-writes FILE             KVM's kvm_write_tsc_offset records (offset steps)
//   (neither)                     the guest file's own TIME_SHIFT option
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../cli.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/io/file.hpp"
#include "tsync/io/model_json.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/io/tracecmd.hpp"
#include "tsync/io/tracecmd_events.hpp"
#include "tsync/io/tracecmd_merge.hpp"
#include "tsync/io/tracecmd_write.hpp"
#include "tsync/io/tsc_offset_records.hpp"
#include "tsync/sync/output_file.hpp"
#include "tsync/sync/tsc_writes.hpp"

namespace {

namespace io = tsync::io;
using tsync::correct::correction_mode;
using tsync::correct::sync_table;

const char* const cmd = "tracecmd merge";

/// One --model / --table argument: which guest and vCPU it is for (none: all).
struct source_spec {
  bool model = false;
  std::optional<std::uint32_t> guest;  ///< 1-based guest number (order of the GUEST.dat arguments)
  std::optional<std::uint32_t> vcpu;
  std::string path;  ///< "%v" stands for the vCPU number
};

/// Parse "[gI.][vN=]FILE". A prefix is taken only when it has that exact form.
std::optional<source_spec> parse_spec(const std::string& text, bool model) {
  source_spec s;
  s.model = model;
  s.path = text;
  const auto eq = text.find('=');
  if (eq == std::string::npos) return s;
  std::string key = text.substr(0, eq);
  auto take = [&](char c, std::optional<std::uint32_t>& out) {
    if (key.empty() || key[0] != c) return true;
    std::size_t n = 1;
    while (n < key.size() && key[n] >= '0' && key[n] <= '9') ++n;
    auto v = tsync::cli::parse_int<std::uint32_t>(std::string_view(key).substr(1, n - 1));
    if (!v) return false;
    out = *v;
    key.erase(0, n);
    return true;
  };
  if (!take('g', s.guest)) return s;
  if (s.guest && !key.empty()) {
    if (key[0] != '.') return source_spec{model, std::nullopt, std::nullopt, text};
    key.erase(0, 1);
  }
  if (!take('v', s.vcpu) || !key.empty() || (!s.guest && !s.vcpu)) return source_spec{model, std::nullopt, std::nullopt, text};
  if (s.guest && *s.guest == 0) return std::nullopt;
  s.path = text.substr(eq + 1);
  return s;
}

std::string with_vcpu(std::string p, std::uint32_t v) {
  for (auto at = p.find("%v"); at != std::string::npos; at = p.find("%v", at)) {
    p.replace(at, 2, std::to_string(v));
    at += std::to_string(v).size();
  }
  return p;
}

/// How one guest vCPU's raw timestamps become host times.
struct vcpu_map {
  std::shared_ptr<const sync_table> table;            // a table or the file's TIME_SHIFT
  std::shared_ptr<const tsync::estimate::model> model;  // or a model
  std::vector<io::time_shift_sample> tc_samples;       // --rounding tracecmd: trace-cmd's arithmetic on these
  bool tc_interpolate = true;
  // --tsc-writes: the vCPU's whole raw stream, resolved against its offset periods.
  std::shared_ptr<const tsync::sync::tsc_write_pipeline> pipe;
  std::vector<std::uint64_t> stream;
  std::optional<tsync::correct::step_resolution> resolution;
  std::size_t next = 0;
};

struct merge_settings {
  std::vector<source_spec> specs;
  tsync::correct::table_options table_opt;
  bool tracecmd_rounding = false;
  bool use_unlinked = false;
  std::optional<std::string> tsc_writes;
  std::uint64_t ratio = 1;
  std::uint8_t frac_bits = 0;
};

/// Run-time state of one guest input: its vCPU maps, built when first needed.
class guest_mapper {
 public:
  guest_mapper(const merge_settings& s, std::uint32_t number, std::string path,
               std::shared_ptr<const io::tsc_offset_records> writes)
      : s_(s), number_(number), path_(std::move(path)), writes_(std::move(writes)) {}

  /// The mapping; on an error, `message()` says why in full.
  tsync::expected<io::host_placement, tsync::errc> operator()(std::uint32_t vcpu, std::uint64_t ts) {
    if (vcpu >= maps_.size()) maps_.resize(vcpu + 1);
    if (!maps_[vcpu]) {
      auto m = build(vcpu);
      if (!m) {
        message_ = m.error();
        return tsync::unexpected(tsync::errc::invalid_argument);
      }
      maps_[vcpu] = std::move(*m);
    }
    return place(*maps_[vcpu], vcpu, ts);
  }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] std::uint64_t tracecmd_overflows() const noexcept { return overflows_; }
  [[nodiscard]] std::uint64_t ambiguous() const noexcept { return ambiguous_; }

 private:
  tsync::expected<io::host_placement, tsync::errc> place(vcpu_map& m, std::uint32_t vcpu, std::uint64_t ts) {
    if (m.pipe) return place_tsc(m, vcpu, ts);
    if (ts > static_cast<std::uint64_t>(INT64_MAX)) return fail_at(vcpu, ts, "raw timestamp above INT64_MAX");
    const auto g = tsync::at_ns<tsync::guest>(static_cast<std::int64_t>(ts));
    io::host_placement p;
    if (m.model) {
      auto h = m.model->to_host(g);
      if (!h) return fail_at(vcpu, ts, std::string("the model cannot place it: ") + tsync::to_string(h.error()));
      p.host_ns = tsync::raw_ns(*h);
      if (auto hb = m.model->hard_bounds(g)) {
        p.has_hard = true;
        p.hard_lo = tsync::raw_ns(hb->lo);
        p.hard_hi = tsync::raw_ns(hb->hi);
      }
    } else {
      auto h = m.table->correct(g);
      if (!h) return fail_at(vcpu, ts, std::string("the table cannot place it: ") + tsync::to_string(h.error()));
      p.host_ns = tsync::raw_ns(*h);
      if (auto b = m.table->bounds_at(g)) {
        p.has_hard = true;
        p.hard_lo = p.host_ns + b->lo;
        p.hard_hi = p.host_ns + b->hi;
      }
    }
    if (s_.tracecmd_rounding) {
      const auto r = io::tracecmd_correct(ts, m.tc_samples, m.tc_interpolate);
      if (r.overflow) ++overflows_;  // trace-cmd's 64-bit product wraps: keep the exact value
      const std::uint64_t v = r.overflow ? r.exact : r.wrapped;
      if (v > static_cast<std::uint64_t>(INT64_MAX)) return fail_at(vcpu, ts, "host time above INT64_MAX");
      p.host_ns = static_cast<std::int64_t>(v);
    }
    return p;
  }

  tsync::expected<io::host_placement, tsync::errc> place_tsc(vcpu_map& m, std::uint32_t vcpu, std::uint64_t ts) {
    if (m.next >= m.stream.size() || m.stream[m.next] != ts)
      return fail_at(vcpu, ts, "the vCPU's events came back in another order than the first pass read them");
    auto ev = m.pipe->event(*m.resolution, m.stream, m.next++);
    if (!ev) return fail_at(vcpu, ts, std::string("converting with the vCPU's TSC offset: ") + tsync::to_string(ev.error()));
    io::host_placement p;
    p.has_hard = true;
    if (ev->host) {
      if (*ev->host > static_cast<std::uint64_t>(INT64_MAX)) return fail_at(vcpu, ts, "host time above INT64_MAX");
      p.host_ns = p.hard_lo = p.hard_hi = static_cast<std::int64_t>(*ev->host);
      return p;
    }
    // Several offsets fit: the earliest candidate, and every candidate inside the hard interval.
    ++ambiguous_;
    std::uint64_t lo = UINT64_MAX, hi = 0;
    for (const auto h : ev->shown) {
      lo = std::min(lo, h);
      hi = std::max(hi, h);
    }
    if (hi > static_cast<std::uint64_t>(INT64_MAX)) return fail_at(vcpu, ts, "host time above INT64_MAX");
    p.host_ns = p.hard_lo = static_cast<std::int64_t>(lo);
    p.hard_hi = static_cast<std::int64_t>(hi);
    return p;
  }

  tsync::unexpected<tsync::errc> fail_at(std::uint32_t vcpu, std::uint64_t ts, const std::string& why) {
    message_ = path_ + ": vCPU " + std::to_string(vcpu) + ", raw timestamp " + std::to_string(ts) + ": " + why;
    return tsync::unexpected(tsync::errc::out_of_range);
  }

  /// The most specific --model/--table for this guest and vCPU, if any.
  [[nodiscard]] const source_spec* spec_for(std::uint32_t vcpu) const {
    const source_spec* best = nullptr;
    int best_rank = -1;
    for (const auto& sp : s_.specs) {
      if (sp.guest && *sp.guest != number_) continue;
      if (sp.vcpu && *sp.vcpu != vcpu) continue;
      const int rank = (sp.vcpu ? 2 : 0) + (sp.guest ? 1 : 0);
      if (rank > best_rank) {
        best = &sp;
        best_rank = rank;
      }
    }
    return best;
  }

  tsync::expected<vcpu_map, std::string> build(std::uint32_t vcpu) {
    vcpu_map m;
    const std::string who = path_ + ", vCPU " + std::to_string(vcpu);
    if (const source_spec* sp = spec_for(vcpu)) {
      const std::string p = with_vcpu(sp->path, vcpu);
      auto text = io::read_small_file(p, std::size_t{16} << 20);
      if (!text) return tsync::unexpected(who + ": " + (sp->model ? "model " : "table ") + text.error().message);
      if (sp->model) {
        auto mo = io::read_model_json(*text);
        if (!mo) return tsync::unexpected(who + ": model '" + p + "' " + mo.error().what());
        auto t = sync_table::make(mo->to_sync_table(), s_.table_opt);
        if (!t) return tsync::unexpected(who + ": model '" + p + "': " + tsync::to_string(t.error()));
        m.tc_samples = io::to_time_shift_samples(t->samples());
        m.model = std::make_shared<const tsync::estimate::model>(std::move(*mo));
      } else {
        std::istringstream in(std::move(*text));
        auto t = io::load_table_csv(in, s_.table_opt);
        if (!t) return tsync::unexpected(who + ": table '" + p + "' " + t.error().what());
        m.tc_samples = io::to_time_shift_samples(t->samples());
        m.tc_interpolate = t->options().mode == correction_mode::interpolate;
        m.table = std::make_shared<const sync_table>(std::move(*t));
      }
      return m;
    }
    if (writes_) return build_tsc(vcpu, who);
    if (!time_shift_loaded_) {
      time_shift_loaded_ = true;
      io::dat_read_options ro;
      ro.use_unlinked_time_shift = s_.use_unlinked;
      auto info = io::read_trace_dat_file(path_, ro);
      if (!info) return tsync::unexpected(path_ + ": " + info.error().what());
      const auto& o = info->options;
      if (o.unlinked_time_shift)
        std::cerr << "tsync " << cmd << ": warning: " << path_ << ": a TIME_SHIFT section at byte " << o.unlinked_time_shift_at
                  << " is not linked from the options chain (trace-cmd ignores it); "
                  << (o.time_shift_option ? "using it (--use-unlinked)" : "--use-unlinked uses it") << "\n";
      if (o.time_shift_option) {
        for (const auto& r : o.time_shift_option->repairs) std::cerr << "tsync " << cmd << ": warning: " << path_ << ": " << r << "\n";
        time_shift_ = *o.time_shift_option;
      }
    }
    if (!time_shift_)
      return tsync::unexpected(path_ + ": no TIME_SHIFT option to place vCPU " + std::to_string(vcpu) +
                               "'s events: give --model or --table for it (or --use-unlinked if a warning names an unlinked one)");
    auto t = io::to_sync_table(*time_shift_, vcpu);
    if (!t) return tsync::unexpected(path_ + ": TIME_SHIFT: " + t.error().what());
    m.tc_samples = time_shift_->cpus[vcpu];
    m.tc_interpolate = time_shift_->interpolate();
    m.table = std::make_shared<const sync_table>(std::move(*t));
    return m;
  }

  /// --tsc-writes: read the vCPU's raw stream once (timestamps only) and resolve
  /// it against the vCPU's offset periods; the merge then walks it in order.
  tsync::expected<vcpu_map, std::string> build_tsc(std::uint32_t vcpu, const std::string& who) {
    tsync::sync::tsc_write_pipeline::options po;
    po.vcpu = vcpu;
    po.ratio = s_.ratio;
    po.frac_bits = s_.frac_bits;
    auto pipe = tsync::sync::tsc_write_pipeline::make({writes_->writes, writes_->lines}, po);
    if (!pipe) return tsync::unexpected(who + ": trace '" + *s_.tsc_writes + "' " + pipe.error().what());
    auto second = io::tracecmd_file::open(path_);
    if (!second) return tsync::unexpected(second.error().message);
    vcpu_map m;
    for (std::size_t b = 0; b < second->buffer_count(); ++b) {
      auto& buf = second->buffer(b);
      if (b > 0 && vcpu < buf.cpu_count() && buf.peek(vcpu) != nullptr)
        return tsync::unexpected(who + ": --tsc-writes needs the guest's events in one buffer (this file has instance '" +
                                 std::string(buf.name()) + "')");
      if (b > 0) continue;
      for (const io::tracecmd_event* e = buf.peek(vcpu); e != nullptr; e = buf.peek(vcpu)) {
        m.stream.push_back(e->ts);
        buf.pop(vcpu);
      }
    }
    if (second->error()) return tsync::unexpected(second->error()->message);
    auto res = pipe->resolve(m.stream);
    if (!res)
      return tsync::unexpected(who + ": the events fit no sequence of the vCPU's TSC offsets in '" + *s_.tsc_writes + "' (" +
                               tsync::to_string(res.error()) + ")");
    m.resolution = std::move(*res);
    m.pipe = std::make_shared<const tsync::sync::tsc_write_pipeline>(std::move(*pipe));
    return m;
  }

  const merge_settings& s_;
  std::uint32_t number_;
  std::string path_;
  std::shared_ptr<const io::tsc_offset_records> writes_;
  std::vector<std::optional<vcpu_map>> maps_;
  bool time_shift_loaded_ = false;
  std::optional<io::time_shift> time_shift_;
  std::string message_;
  std::uint64_t overflows_ = 0, ambiguous_ = 0;
};

std::string base_name(const std::string& p) {
  const auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

/// Parse the options into `s`; an exit code on a usage error.
std::optional<int> parse_settings(const tsync::cli::options& o, merge_settings& s) {
  for (const char* k : {"model", "table"})
    for (const auto& v : o.all(k)) {
      auto sp = parse_spec(v, std::string(k) == "model");
      if (!sp || sp->path.empty()) return tsync::cli::usage_error(cmd, std::string("--") + k + " '" + v + "': expected [gI.][vN=]FILE (guests count from 1)");
      s.specs.push_back(*sp);
    }
  s.table_opt.mode = correction_mode::interpolate;
  if (auto m = o.get("mode")) {
    if (*m == "step") s.table_opt.mode = correction_mode::step;
    else if (*m != "interpolate") return tsync::cli::usage_error(cmd, "--mode must be interpolate or step, not '" + *m + "'");
  }
  for (const auto& sp : s.specs)
    if (sp.model && s.table_opt.mode != correction_mode::interpolate)
      return tsync::cli::usage_error(cmd, "a model is a drift model: --mode step applies to --table only");
  if (auto r = o.get("rounding")) {
    if (*r == "tracecmd") s.tracecmd_rounding = true;
    else if (*r != "floor") return tsync::cli::usage_error(cmd, "--rounding must be floor or tracecmd, not '" + *r + "'");
  }
  s.use_unlinked = o.has("use-unlinked");
  s.tsc_writes = o.get("tsc-writes");
  if (o.has("ratio") != o.has("frac-bits")) return tsync::cli::usage_error(cmd, "--ratio and --frac-bits go together");
  if (o.has("ratio")) {
    if (!s.tsc_writes) return tsync::cli::usage_error(cmd, "--ratio and --frac-bits go with --tsc-writes");
    const auto r = tsync::cli::parse_int<std::uint64_t>(o.get("ratio").value_or(""));
    const auto f = tsync::cli::parse_int<unsigned>(o.get("frac-bits").value_or(""));
    if (!r || *r == 0) return tsync::cli::usage_error(cmd, "--ratio must be a positive unsigned 64-bit number");
    if (!f || *f > 63) return tsync::cli::usage_error(cmd, "--frac-bits must be a number from 0 to 63");
    s.ratio = *r;
    s.frac_bits = static_cast<std::uint8_t>(*f);
  }
  if (s.tsc_writes && s.tracecmd_rounding)
    return tsync::cli::usage_error(cmd, "--rounding tracecmd applies to tables, models and TIME_SHIFT, not to --tsc-writes");
  return std::nullopt;
}

int run_merge(const std::vector<std::string>& raw_args) {
  std::vector<std::string> args = raw_args;  // "-o X" is "--output X"
  for (auto& a : args)
    if (a == "-o") a = "--output";
  tsync::cli::options o(args, {"use-unlinked", "info"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"model", "table", "mode", "tsc-writes", "ratio", "frac-bits", "format", "output", "rounding",
                          "use-unlinked", "info"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (o.positional().size() < 2) return tsync::cli::usage_error(cmd, "expected HOST.dat and at least one GUEST.dat");
  const std::string format = o.get("format").value_or("text");
  if (format != "text" && format != "json") return tsync::cli::usage_error(cmd, "--format must be text or json, not '" + format + "'");
  if (o.has("info") && format != "json") return tsync::cli::usage_error(cmd, "--info applies to --format json");
  merge_settings s;
  if (auto rc = parse_settings(o, s)) return *rc;
  const std::size_t guests = o.positional().size() - 1;
  for (const auto& sp : s.specs)
    if (sp.guest && *sp.guest > guests)
      return tsync::cli::usage_error(cmd, "a source names guest " + std::to_string(*sp.guest) + " but " + std::to_string(guests) +
                                              " GUEST.dat file(s) are given");

  std::shared_ptr<const io::tsc_offset_records> writes;
  if (s.tsc_writes) {
    auto text = io::read_small_file(*s.tsc_writes, std::size_t{1} << 30);
    if (!text) return tsync::cli::fail(std::string(cmd) + ": --tsc-writes " + text.error().message);
    auto r = io::parse_tsc_offset_records(*text);
    if (!r) return tsync::cli::fail(std::string(cmd) + ": trace '" + *s.tsc_writes + "' " + r.error().what());
    writes = std::make_shared<const io::tsc_offset_records>(std::move(*r));
  }

  std::vector<io::tracecmd_file> files;
  files.reserve(o.positional().size());
  for (const auto& p : o.positional()) {
    auto f = io::tracecmd_file::open(p);
    if (!f) return tsync::cli::fail(std::string(cmd) + ": " + f.error().message);
    files.push_back(std::move(*f));
  }
  std::vector<std::unique_ptr<guest_mapper>> mappers;
  std::vector<io::merge_input> inputs;
  inputs.push_back({&files[0], "host", {}});
  for (std::size_t i = 1; i < files.size(); ++i) {
    auto gm = std::make_unique<guest_mapper>(s, static_cast<std::uint32_t>(i), o.positional()[i], writes);
    guest_mapper* raw = gm.get();
    mappers.push_back(std::move(gm));
    std::string name = base_name(o.positional()[i]);
    if (auto gi = files[0].guest(files[i].trace_id()); gi && !gi->name.empty()) name = gi->name;
    for (const auto& in : inputs)
      if (in.name == name) name += "#" + std::to_string(i);
    inputs.push_back({&files[i], name, [raw](std::uint32_t v, std::uint64_t ts) { return (*raw)(v, ts); }});
  }

  const auto out_path = o.get("output");
  tsync::sync::atomic_file af;
  io::output_sink sink;
  std::string what = "standard output";
  if (out_path) {
    af = tsync::sync::atomic_file::create(*out_path);
    if (af.error()) return tsync::cli::fail(std::string(cmd) + ": cannot create " + *out_path + ": " + af.error().message());
    sink = [&af](std::string_view b) {
      af << b;
      return af.error();
    };
    what = *out_path;
  }
  auto run = [&](auto& writer) { return io::merge_events(inputs, writer); };
  tsync::expected<io::merge_stats, tsync::text_error> st = tsync::unexpected(tsync::text_error{});
  if (format == "text") {
    io::report_text_writer w = out_path ? io::report_text_writer(sink, what) : io::report_text_writer(stdout, what);
    st = run(w);
  } else {
    io::chrome_json_writer w = out_path ? io::chrome_json_writer(sink, what) : io::chrome_json_writer(stdout, what);
    w.set_info(o.has("info"));
    st = run(w);
  }
  if (!st) {
    for (const auto& m : mappers)
      if (!m->message().empty()) return tsync::cli::fail(std::string(cmd) + ": " + m->message());
    return tsync::cli::fail(std::string(cmd) + ": " + st.error().message);
  }
  for (const auto& f : files)
    if (f.error()) return tsync::cli::fail(std::string(cmd) + ": " + f.error()->message);
  if (out_path) {
    if (auto r = af.commit(); !r) return tsync::cli::fail(std::string(cmd) + ": " + r.error().what());
  }
  std::uint64_t overflows = 0, ambiguous = 0;
  for (const auto& m : mappers) {
    overflows += m->tracecmd_overflows();
    ambiguous += m->ambiguous();
  }
  std::cerr << "tsync " << cmd << ": " << st->events << " events (";
  for (std::size_t i = 0; i < inputs.size(); ++i) std::cerr << (i ? ", " : "") << inputs[i].name << " " << st->per_input[i];
  std::cerr << "), " << st->with_hard << " with a hard interval";
  if (st->out_of_order != 0) std::cerr << ", " << st->out_of_order << " written earlier than the event before them (a mapping went backwards)";
  std::cerr << "\n";
  if (overflows != 0)
    std::cerr << "tsync " << cmd << ": trace-cmd's 64-bit arithmetic overflows on " << overflows
              << " guest event(s); their exact values were written (trace-cmd report would be off there)\n";
  if (ambiguous != 0)
    std::cerr << "tsync " << cmd << ": " << ambiguous << " guest event(s) fit several TSC offsets: placed at the earliest,"
              << " with every candidate inside their hard interval\n";
  return 0;
}

const tsync::cli::command_registrar reg_merge{tsync::cli::command{
    "tracecmd merge", "merge a host trace.dat and its guests' into one host-time timeline (text or Chrome JSON)",
    "HOST.dat GUEST.dat... [--model SPEC]... [--table SPEC]... [--mode interpolate|step]\n"
    "              [--tsc-writes FILE [--ratio R --frac-bits F]] [--use-unlinked]\n"
    "              [--format text|json [--info]] [-o | --output OUT] [--rounding floor|tracecmd]\n\n"
    "Reads every event of the host file and of each guest file (trace.dat v6 or v7, compressed\n"
    "or not, through libtracecmd with raw timestamps), places each guest event on the host\n"
    "timeline, and writes one time-ordered timeline. Memory stays bounded by the number of\n"
    "CPUs (except with --tsc-writes: 8 bytes per guest event of each vCPU).\n\n"
    "Where a guest vCPU's events go (the most specific source wins):\n"
    "  --model SPEC   a model JSON ('tsync sync' writes PREFIX.vcpuN.model.json, 'tsync\n"
    "                 estimate' writes one): host time from the model, with its segments\n"
    "                 (breaks) and its hard interval per event.\n"
    "  --table SPEC   a sync table CSV (as 'tsync correct --table' reads; --mode applies).\n"
    "                 SPEC is [gI.][vN=]FILE: 'g2.' for the second GUEST.dat only, 'vN=' for\n"
    "                 vCPU N only; '%v' in FILE is replaced by the vCPU number\n"
    "                 (--model run.vcpu%v.model.json reads one model per vCPU).\n"
    "  --tsc-writes FILE  KVM's offset steps: kvm_write_tsc_offset records of the host (the text\n"
    "                 of 'trace-cmd report', as 'tsync correct --tsc-writes' reads); guest TSC\n"
    "                 to host TSC through each vCPU's offset periods (both traces in x86-tsc).\n"
    "                 Events that fit several offsets are placed at the earliest, with every\n"
    "                 candidate inside their hard interval.\n"
    "  (none)         the guest file's own TIME_SHIFT option (per-vCPU samples), as trace-cmd\n"
    "                 would apply it (B7 files recovered; --use-unlinked for an unlinked one).\n\n"
    "Output (stdout, or OUT written atomically: a temporary file renamed when complete):\n"
    "  --format text  trace-cmd report's layout with a tag per input:\n"
    "                 'TAG: comm-pid [cpu] s.ns: event: info' (TAG: host, or the guest's name).\n"
    "  --format json  Chrome trace-event JSON (Perfetto, chrome://tracing): the host and each\n"
    "                 guest are processes, each CPU / vCPU a thread, each event an instant\n"
    "                 event with args comm, pid, raw_ts, the event's fields, and for guest\n"
    "                 events hard_lo_ns / hard_hi_ns when the source gives a hard interval.\n"
    "                 --info adds libtraceevent's formatted text (trace-cmd report's) as\n"
    "                 'info' (about 3x slower).\n"
    "  --rounding R   floor (default): tsync's exact correction; tracecmd: trace-cmd's own\n"
    "                 arithmetic bit for bit (where its 64-bit product overflows, the exact\n"
    "                 value is written and the events are counted on stderr).\n"
    "Host timestamps are written as recorded (raw, the host's trace clock).",
    run_merge}};

}  // namespace
