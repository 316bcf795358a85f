// `tsync tracecmd ...`: read trace-cmd's TIME_SHIFT / TSC2NSEC options from a
// trace.dat file (versions 6 and 7) or from a raw option payload, print them,
// and write the sync table of one CPU as the CSV `tsync correct --table` reads.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsync/io/file.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/io/tracecmd.hpp"
#include "tsync/io/tracecmd_write.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/sync/output_file.hpp"

namespace {

using namespace tsync::io;

const char* const input_help =
    "FILE is a trace.dat file (format version 6 or 7, uncompressed options). With\n"
    "--payload, FILE holds the raw bytes of one TIME_SHIFT option payload instead\n"
    "(little-endian unless --big-endian is given).\n";

/// The options of FILE, or an exit code after printing the error.
struct loaded {
  std::optional<trace_dat_info> info;
  int status = 0;
};

loaded load(const std::string& cmd, const tsync::cli::options& opt) {
  loaded out;
  if (opt.positional().size() != 1) {
    out.status = tsync::cli::usage_error(cmd, "expected exactly one FILE");
    return out;
  }
  const std::string& path = opt.positional()[0];
  if (!opt.has("payload")) {
    if (opt.has("big-endian")) {
      out.status = tsync::cli::usage_error(cmd, "--big-endian goes with --payload (a trace.dat declares its byte order)");
      return out;
    }
    dat_read_options ro;
    ro.use_unlinked_time_shift = opt.has("use-unlinked");
    auto r = read_trace_dat_file(path, ro);
    if (!r) {
      out.status = tsync::cli::fail(path + ": " + r.error().what());
      return out;
    }
    out.info = std::move(*r);
    return out;
  }
  auto raw = tsync::io::read_small_file(path, std::size_t{16} << 20);
  if (!raw) {
    out.status = tsync::cli::fail(raw.error().message);
    return out;
  }
  std::vector<std::byte> b(raw->size());
  for (std::size_t i = 0; i < raw->size(); ++i) b[i] = static_cast<std::byte>((*raw)[i]);
  const auto order = opt.has("big-endian") ? byte_order::big : byte_order::little;
  auto ts = decode_time_shift(b, order);
  if (!ts) {
    out.status = tsync::cli::fail(path + ": TIME_SHIFT payload: " + ts.error().what());
    return out;
  }
  trace_dat_info info;
  info.order = order;
  info.options.time_shift_option = std::move(*ts);
  info.options.option_count = 1;
  out.info = std::move(info);
  return out;
}

// What the decoder repaired (trace-cmd bug B7, ...) goes to stderr as warnings.
void warn_repairs(const std::string& path, const trace_dat_info& info) {
  const auto& o = info.options;
  if (o.unlinked_time_shift) {
    std::cerr << "tsync: warning: " << path << ": a TIME_SHIFT options section at byte " << o.unlinked_time_shift_at
              << " is not linked from the file's options chain (trace-cmd wrote it but never linked it, so trace-cmd"
              << " itself ignores it); " << (o.time_shift_option ? "using it as asked (--use-unlinked)" : "pass --use-unlinked to use it")
              << "\n";
  }
  if (!info.options.time_shift_option) return;
  for (const auto& r : info.options.time_shift_option->repairs) std::cerr << "tsync: warning: " << path << ": " << r << "\n";
}

int run_show(const std::vector<std::string>& args) {
  const std::string cmd = "tracecmd show";
  tsync::cli::options opt(args, {"payload", "big-endian", "use-unlinked"});
  if (!opt.error().empty()) return tsync::cli::usage_error(cmd, opt.error());
  if (auto u = opt.unknown({"payload", "big-endian", "use-unlinked"})) return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  auto l = load(cmd, opt);
  if (!l.info) return l.status;
  const auto& info = *l.info;
  warn_repairs(opt.positional()[0], info);
  if (info.version != 0)
    std::cout << "trace.dat version " << info.version << ", "
              << (info.order == byte_order::little ? "little" : "big") << "-endian, long size " << info.long_size
              << ", page size " << info.page_size << ", " << info.options.option_count << " option(s)\n";
  else
    std::cout << "TIME_SHIFT payload, " << (info.order == byte_order::little ? "little" : "big") << "-endian\n";
  if (info.options.time_shift_option) {
    const auto& ts = *info.options.time_shift_option;
    std::cout << to_text(ts);
    std::cout << "correction: " << (ts.interpolate() ? "interpolate" : "step") << " ('tsync tracecmd table --cpu N' writes one CPU's table)\n";
  } else {
    std::cout << "no TIME_SHIFT option\n";
  }
  if (info.options.tsc2nsec_option)
    std::cout << to_text(*info.options.tsc2nsec_option);
  else if (info.version != 0)
    std::cout << "no TSC2NSEC option\n";
  return 0;
}

int run_table(const std::vector<std::string>& args) {
  const std::string cmd = "tracecmd table";
  tsync::cli::options opt(args, {"payload", "big-endian", "use-unlinked"});
  if (!opt.error().empty()) return tsync::cli::usage_error(cmd, opt.error());
  if (auto u = opt.unknown({"payload", "big-endian", "cpu", "use-unlinked"})) return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  const auto cpu_text = opt.get("cpu");
  if (!cpu_text) return tsync::cli::usage_error(cmd, "--cpu N is required");
  const auto cpu = tsync::cli::parse_int<std::uint32_t>(*cpu_text);
  if (!cpu) return tsync::cli::usage_error(cmd, "--cpu '" + *cpu_text + "' is not a CPU number");
  auto l = load(cmd, opt);
  if (!l.info) return l.status;
  const std::string& path = opt.positional()[0];
  if (!l.info->options.time_shift_option) return tsync::cli::fail(path + ": no TIME_SHIFT option");
  warn_repairs(path, *l.info);
  const auto& ts = *l.info->options.time_shift_option;
  // Build the table to validate it exactly as `tsync correct` will.
  auto table = to_sync_table(ts, *cpu);
  if (!table) return tsync::cli::fail(path + ": " + table.error().what());
  std::cout << to_table_csv(table->samples(), mode_of(ts));
  return 0;
}

const tsync::cli::command_registrar reg_show{tsync::cli::command{
    "tracecmd show", "print the TIME_SHIFT / TSC2NSEC options of a trace-cmd trace.dat",
    "[--payload [--big-endian]] [--use-unlinked] FILE\n\n"
    "Prints the trace.dat header fields, then the TIME_SHIFT option (trace id, flags,\n"
    "every CPU's samples: time, offset = host - guest, scaling, fraction bits) and the\n"
    "TSC2NSEC option (mult, shift, offset), or says that they are absent.\n\n" +
        std::string(input_help) +
        "Malformed options are reported with the byte offset and the reason, including the\n"
        "layouts of trace-cmd bugs B16 (no CPUs) and B18 (a CPU with no samples). Files\n"
        "with trace-cmd bug B7 (every per-CPU count field holding the last CPU's count)\n"
        "are repaired when the counts are recoverable from the payload size and each CPU's\n"
        "time order, with a warning naming the recovered counts, and refused when the split\n"
        "is ambiguous. A v7 file whose options chain has no TIME_SHIFT is searched for an\n"
        "unlinked TIME_SHIFT section (trace-cmd sometimes writes it without linking it): a\n"
        "warning gives its offset, and --use-unlinked uses it.",
    run_show}};

const tsync::cli::command_registrar reg_table{tsync::cli::command{
    "tracecmd table", "write one CPU's TIME_SHIFT samples as a tsync sync table (CSV)",
    "--cpu N [--payload [--big-endian]] [--use-unlinked] FILE\n\n"
    "Writes the samples of guest CPU N as 'time,offset,ratio,frac_bits' lines (with a\n"
    "header and a '#' comment naming the mode) to stdout: the table 'tsync correct\n"
    "--table' reads. The mode is 'step' for KVM files (flags bit 0 clear) and\n"
    "'interpolate' otherwise: pass the same --mode to 'tsync correct'.\n"
    "Scaling is applied even with a single sample (trace-cmd ignores it then, bug B3).\n"
    "A CPU the option has no entry for is an error (trace-cmd silently leaves such\n"
    "a CPU's events uncorrected, bug B5).\n\n" +
        std::string(input_help),
    run_table}};

// ---- tracecmd set-timeshift --------------------------------------------------

std::optional<std::string> slurp(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "cannot open '" + path + "'";
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) return "read error on '" + path + "'";
  out = s.str();
  return std::nullopt;
}

/// The sync table of a model JSON or a table CSV (interpolate mode), or a message.
tsync::expected<tsync::correct::sync_table, std::string> load_source(bool model, const std::string& path) {
  tsync::correct::table_options to;
  to.mode = tsync::correct::correction_mode::interpolate;
  std::string text;
  if (auto e = slurp(path, text)) return tsync::unexpected(*e);
  if (!model) {
    std::istringstream in(text);
    auto t = load_table_csv(in, to);
    if (!t) return tsync::unexpected(path + ": " + t.error().what());
    return std::move(*t);
  }
  auto m = tsync::io::read_model_json(text);
  if (!m) return tsync::unexpected(path + ": " + m.error().what());
  auto t = tsync::correct::sync_table::make(m->to_sync_table(), to);
  if (!t) return tsync::unexpected(path + ": " + tsync::to_string(t.error()));
  return std::move(*t);
}

/// One --model / --table of set-timeshift: "[vN=]FILE", "%v" in FILE standing for the CPU.
struct cpu_source {
  bool model = false;
  std::optional<std::uint32_t> cpu;
  std::string path;
};

std::optional<cpu_source> parse_cpu_source(bool model, const std::string& v) {
  cpu_source s{model, std::nullopt, v};
  const auto eq = v.find('=');
  if (eq != std::string::npos && eq > 1 && v[0] == 'v') {
    auto n = tsync::cli::parse_int<std::uint32_t>(std::string_view(v).substr(1, eq - 1));
    if (n) {
      s.cpu = *n;
      s.path = v.substr(eq + 1);
    }
  }
  if (s.path.empty()) return std::nullopt;
  return s;
}

std::string for_cpu(std::string p, std::size_t cpu) {
  const std::string n = std::to_string(cpu);
  for (auto at = p.find("%v"); at != std::string::npos; at = p.find("%v", at + n.size())) p.replace(at, 2, n);
  return p;
}

/// The TIME_SHIFT samples of each CPU from its source (the source for "vN=" first,
/// else the one without a CPU), planned so trace-cmd's arithmetic cannot overflow.
tsync::expected<std::vector<std::vector<time_shift_sample>>, std::string> plan_cpus(const std::vector<cpu_source>& srcs,
                                                                                      std::size_t cpus,
                                                                                      const time_shift_plan_options& po) {
  std::map<std::string, std::vector<time_shift_sample>> planned;  // by file: a shared source is planned once
  std::vector<std::vector<time_shift_sample>> out;
  for (std::size_t c = 0; c < cpus; ++c) {
    const cpu_source* pick = nullptr;
    for (const auto& s : srcs)
      if ((s.cpu && *s.cpu == c) || (!s.cpu && pick == nullptr)) pick = &s;
    if (pick == nullptr) return tsync::unexpected("no --model or --table for CPU " + std::to_string(c) + " (give vN=FILE for it, or a FILE for every CPU)");
    const std::string path = for_cpu(pick->path, c);
    auto it = planned.find(path);
    if (it == planned.end()) {
      auto table = load_source(pick->model, path);
      if (!table) return tsync::unexpected("CPU " + std::to_string(c) + ": " + table.error());
      auto plan = plan_time_shift(*table, po);
      if (!plan) return tsync::unexpected("CPU " + std::to_string(c) + ": " + path + ": " + plan.error().what());
      it = planned.emplace(path, std::move(*plan)).first;
    }
    out.push_back(it->second);
  }
  return out;
}

/// Write `bytes` to `path` atomically (temporary file, fsync, rename), or a message.
std::optional<std::string> write_atomically(const std::string& path, const std::vector<std::byte>& bytes) {
  auto f = tsync::sync::atomic_file::create(path);
  constexpr std::size_t block = std::size_t{1} << 20;
  for (std::size_t at = 0; at < bytes.size() && !f.error(); at += block)
    f << std::string_view(reinterpret_cast<const char*>(bytes.data()) + at, std::min(block, bytes.size() - at));
  if (auto r = f.commit(); !r) return r.error().what();
  return std::nullopt;
}

int run_set_timeshift(const std::vector<std::string>& raw_args) {
  const std::string cmd = "tracecmd set-timeshift";
  std::vector<std::string> args = raw_args;  // "-o X" is "--output X"
  for (auto& a : args)
    if (a == "-o") a = "--output";
  tsync::cli::options opt(args, {});
  if (!opt.error().empty()) return tsync::cli::usage_error(cmd, opt.error());
  if (auto u = opt.unknown({"model", "table", "output", "cpus", "until", "from"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (opt.positional().size() != 1) return tsync::cli::usage_error(cmd, "expected exactly one GUEST.dat");
  const auto out_path = opt.get("output");
  if (!out_path) return tsync::cli::usage_error(cmd, "-o OUT.dat is required");
  const std::string& path = opt.positional()[0];
  std::vector<cpu_source> srcs;
  for (const char* k : {"model", "table"})
    for (const auto& v : opt.all(k)) {
      auto s = parse_cpu_source(std::string(k) == "model", v);
      if (!s) return tsync::cli::usage_error(cmd, std::string("--") + k + " '" + v + "': expected [vN=]FILE");
      srcs.push_back(*s);
    }
  if (srcs.empty()) return tsync::cli::usage_error(cmd, "give --model FILE or --table FILE (vN=FILE for one CPU)");
  time_shift_plan_options po;
  for (const char* k : {"from", "until"})
    if (auto v = opt.get(k)) {
      auto n = tsync::cli::parse_int<std::int64_t>(*v);
      if (!n || *n < 0) return tsync::cli::usage_error(cmd, std::string("--") + k + " needs a guest time in ns, not '" + *v + "'");
      (std::string(k) == "from" ? po.from : po.until) = *n;
    }
  std::string raw;
  if (auto e = slurp(path, raw)) return tsync::cli::fail(cmd + ": " + *e);
  std::vector<std::byte> bytes(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) bytes[i] = static_cast<std::byte>(raw[i]);
  auto info = read_trace_dat(bytes, dat_read_options{true});
  if (!info) return tsync::cli::fail(path + ": " + info.error().what());
  warn_repairs(path, *info);
  time_shift ts;
  ts.flags = time_shift_flag_interpolate;
  std::size_t cpus = 0;
  if (const auto& old = info->options.time_shift_option) {
    ts.peer_trace_id = old->peer_trace_id;
    cpus = old->cpus.size();
  }
  if (auto c = opt.get("cpus")) {
    auto n = tsync::cli::parse_int<std::uint32_t>(*c);
    if (!n || *n == 0 || *n > 4096) return tsync::cli::usage_error(cmd, "--cpus needs a CPU count (1..4096), not '" + *c + "'");
    cpus = *n;
  }
  if (cpus == 0) return tsync::cli::fail(cmd + ": " + path + " has no TIME_SHIFT to take the CPU count from: give --cpus N");
  for (const auto& s : srcs)
    if (s.cpu && *s.cpu >= cpus)
      return tsync::cli::usage_error(cmd, "a source is for CPU " + std::to_string(*s.cpu) + " but the file has " + std::to_string(cpus) + " CPU(s)");
  auto plans = plan_cpus(srcs, cpus, po);
  if (!plans) return tsync::cli::fail(cmd + ": " + plans.error());
  ts.cpus = std::move(*plans);
  auto r = rewrite_time_shift(bytes, ts);
  if (!r) return tsync::cli::fail(cmd + ": " + path + ": " + r.error().what());
  if (auto e = write_atomically(*out_path, r->file)) return tsync::cli::fail(cmd + ": " + *e);
  std::cerr << "tsync " << cmd << ": format " << info->version << ", " << cpus << " CPU(s), samples per CPU:";
  for (const auto& c : ts.cpus) std::cerr << ' ' << c.size();
  std::cerr << "; "
            << (info->version == 6 ? (r->replaced ? "the old TIME_SHIFT is replaced in the options list" : "the options list gained a TIME_SHIFT")
                : r->old_section_unlinked ? "the old TIME_SHIFT section is unlinked"
                : r->old_option_renamed   ? "the old TIME_SHIFT option is renamed (id 0x7fff)"
                                          : "the file had no TIME_SHIFT in its chain")
            << "\n";
  return 0;
}

const tsync::cli::command_registrar reg_set_timeshift{tsync::cli::command{
    "tracecmd set-timeshift", "write tsync's correction into a guest trace.dat as trace-cmd's TIME_SHIFT",
    "(--model SPEC | --table SPEC)... (-o | --output) OUT.dat [--cpus N] [--from NS] [--until NS] GUEST.dat\n\n"
    "Copies GUEST.dat (trace.dat format 6 or 7) to OUT.dat with a TIME_SHIFT option built from\n"
    "tsync's models or interpolation tables, one per guest CPU: SPEC is [vN=]FILE, 'vN=' for\n"
    "CPU N only (the source without 'vN=' serves every other CPU), and '%v' in FILE stands\n"
    "for the CPU number ('--model run.vcpu%v.model.json' reads what 'tsync sync' writes).\n"
    "Each CPU's samples are tsync's own corrections at its table's sample times and at\n"
    "points in between, spaced so that trace-cmd's 64-bit interpolation cannot overflow on\n"
    "any guest time in [--from, --until] (default: 0 to twice the last sample time, at least\n"
    "1 h past it). 'trace-cmd report' of OUT.dat then places every guest event within 2 ns\n"
    "of 'tsync correct' with the same table.\n"
    "Format 7: the new option lives in a new options section at the end of the file; the old\n"
    "TIME_SHIFT (if any, including an unlinked one) leaves the options chain. Format 6: the\n"
    "options list is written again with the new TIME_SHIFT instead of the old one, and the\n"
    "CPU data moves by whole pages. The CPU count is the old TIME_SHIFT's, or --cpus N.\n"
    "OUT.dat is written atomically (a temporary file renamed when complete).",
    run_set_timeshift}};

#ifndef TSYNC_CLI_HAVE_TRACECMD
// Without libtracecmd (Debian: libtracecmd-dev) the event reader is not built.
const tsync::cli::command_registrar reg_merge_missing{tsync::cli::command{
    "tracecmd merge", "merge host and guest trace.dat files (needs libtracecmd at build time)",
    "HOST.dat GUEST.dat... (this tsync was built without libtracecmd: see 'tsync tracecmd merge' in docs/interop.md)",
    [](const std::vector<std::string>&) {
      return tsync::cli::fail("tracecmd merge: this tsync was built without libtracecmd (Debian package libtracecmd-dev), "
                              "which reads the events of trace.dat files");
    }}};
#endif

}  // namespace
