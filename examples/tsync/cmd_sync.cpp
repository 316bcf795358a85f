// `tsync agent` (the responder) and `tsync sync` (the initiator): a probe
// session between two machines (or a host and its guest) over any transport,
// writing the per-vCPU sync tables that `tsync correct --table` reads.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "cli.hpp"
#include "tsync/io/duration.hpp"
#include "tsync/clock.hpp"
#include "tsync/io/json.hpp"
#include "tsync/io/session_model_json.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/probe.hpp"
#include "tsync/transport.hpp"
#include "tsync/transport/open.hpp"
#include "tsync/transport/server.hpp"
#include "tsync/sync.hpp"
#include "tsync/sync/kvm_tables.hpp"
#include "tsync/sync/output_file.hpp"
#include "tsync/sync/to_model.hpp"
#include "tsync/sync/whole_trace.hpp"

namespace {

using namespace std::chrono_literals;
namespace tr = tsync::transport;
namespace pr = tsync::probe;
namespace sy = tsync::sync;
namespace clk = tsync::clock;

// ---------------------------------------------------------------- parsing

/// A duration option: the grammar of tsync/io/duration.hpp with a unit
/// (ns, us, ms, s, m or min, h; "0" alone), non-negative and overflow-checked.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  auto d = tsync::io::parse_chrono_duration(s, {.unit_required = true, .allow_negative = false});
  if (!d) return std::nullopt;
  return *d;
}

/// vCPU list: "4" (0..3) or "0,2,5".
std::optional<std::vector<std::uint32_t>> parse_vcpus(const std::string& s) {
  std::vector<std::uint32_t> out;
  if (s.find(',') == std::string::npos) {
    auto n = tsync::cli::parse_int<std::uint32_t>(s);
    if (!n || *n == 0 || *n > 4096) return std::nullopt;
    for (std::uint32_t i = 0; i < *n; ++i) out.push_back(i);
    return out;
  }
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto v = tsync::cli::parse_int<std::uint32_t>(item);
    if (!v || *v > tsync::probe::max_vcpu_id) return std::nullopt;
    for (auto x : out)
      if (x == *v) return std::nullopt;
    out.push_back(*v);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) { g_interrupted.store(true); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

// ---------------------------------------------------------------- agent

/// The responder's clock: a named clock, optionally shifted (for tests and demos).
class agent_clock {
 public:
  /// The agent's stamps are raw readings; which side is the host the initiator decides.
  using domain = tsync::host;
  agent_clock(clk::any_clock c, clk::offset_drift od) : c_(c, od) {}
  [[nodiscard]] std::int64_t now_raw() noexcept { return c_.now_raw() + extra_; }
  [[nodiscard]] tsync::ticks<domain> now() noexcept { return tsync::ticks<domain>(static_cast<std::uint64_t>(now_raw())); }
  /// Shift every later stamp by `ns` (testing: a clock that jumps between series).
  void step(std::int64_t ns) noexcept { extra_ += ns; }
  [[nodiscard]] std::string_view name() const noexcept { return "agent"; }

 private:
  clk::adjusted_clock<clk::any_clock> c_;
  std::int64_t extra_ = 0;
};


struct agent_args {
  tr::spec spec;
  std::string spec_text;
  std::optional<clk::any_clock> base;
  clk::offset_drift od{};
  std::uint32_t connections = 0;
  std::size_t max_connections = 64;
  std::chrono::nanoseconds idle = 120s;
  std::int64_t step_per_series = 0;
  bool pin = true, verbose = false;
  pr::peer_identity id;  ///< sent in answer to every hello (clock, unit, boot id, process nonce)
};

/// One line on stderr for the agent (serialized with `out_mu`).
void agent_log(std::mutex& out_mu, const std::string& line) {
  std::lock_guard lk(out_mu);
  std::cerr << "tsync agent: " << line << '\n';
}

/// Serve one connection: the probe responder with the agent's clock.
void serve_one(tr::stream_transport& t, const agent_args& a, std::stop_token stop, std::mutex& out_mu,
               std::atomic<int>& failures, std::uint32_t* started = nullptr) {
  agent_clock c(*a.base, a.od);
  pr::responder_options opt;
  opt.idle_timeout = a.idle;
  std::function<std::error_code(const pr::start_msg&)> pin;
  if (a.pin) {
    pin = sy::pin_on_series_start([&out_mu, verbose = a.verbose](std::uint32_t vcpu, std::error_code ec) {
      if (!verbose) return;
      std::lock_guard lk(out_mu);
      std::cerr << "tsync agent: could not pin to CPU " << vcpu << ": " << ec.message() << " (continuing unpinned)\n";
    });
  }
  opt.on_series_start = [&c, &a, pin](const pr::start_msg& m) -> std::error_code {
    if (a.step_per_series != 0) c.step(a.step_per_series);
    return pin ? pin(m) : std::error_code{};
  };
  opt.identity = a.id;
  opt.require_hello = true;
  bool greeted = false;
  opt.on_hello = [&](const pr::peer_identity& peer) -> std::optional<std::string> {
    auto why = pr::clock_mismatch(peer, a.id, "the sync side", "this agent");
    if (why) {
      agent_log(out_mu, "refused a session: " + *why);
    } else if (!greeted && (a.verbose || started != nullptr)) {
      // Channel transports: "the host is here" is a state change, said once per connection.
      agent_log(out_mu, "host connected (its clock " + pr::describe_clock(peer) + ")");
    }
    greeted = greeted || !why;
    return why;
  };
  opt.on_version_mismatch = [&](std::uint8_t v) {
    agent_log(out_mu, "refused a session: " + pr::version_mismatch_text(v, "agent"));
  };
  auto r = pr::serve(t, c, opt, tr::deadline::max(), stop);
  std::lock_guard lk(out_mu);
  if (r && r->hellos_refused > 0) ++failures;
  if (!r && r.error() == tsync::make_error_code(tsync::errc::unsupported_version)) {
    ++failures;
    return;
  }
  if (!r) {
    if (a.verbose || r.error() != tsync::make_error_code(tsync::errc::timed_out))
      std::cerr << "tsync agent: connection ended with an error: " << r.error().message() << '\n';
    if (r.error() != tsync::make_error_code(tsync::errc::timed_out)) ++failures;
    return;
  }
  if (started) *started = r->series_started + r->hellos;
  // A channel reopened while no host is there is no connection worth a line.
  if (a.verbose && (started == nullptr || *started > 0))
    std::cerr << "tsync agent: connection done: " << r->series_completed << " series, " << r->probes_answered
              << " probes answered\n";
}

/// Parse the agent's options; a non-empty optional is the exit status of a usage error.
std::optional<int> parse_agent_args(const std::vector<std::string>& args, agent_args& a) {
  const std::string cmd = "agent";
  tsync::cli::options o(args, {"no-pin", "verbose"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"transport", "clock", "connections", "max-connections", "no-pin", "verbose", "shift",
                          "drift-ppb", "idle-timeout", "step-per-series"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  auto spec_s = o.get("transport");
  if (!spec_s) return tsync::cli::usage_error(cmd, "--transport is required");
  auto spec = tr::parse_spec(*spec_s);
  if (!spec) return tsync::cli::usage_error(cmd, "bad --transport '" + *spec_s + "': " + spec.error().what());
  a.spec = *spec;
  a.spec_text = *spec_s;
  const std::string clock_name = o.get("clock").value_or("mono_raw");
  auto base = clk::open_clock(clock_name, clk::kernel_clock_policy::trace_marker);
  if (!base) return tsync::cli::fail("agent: cannot use clock '" + clock_name + "': " + base.error().message());
  a.base = *base;
  a.id = pr::local_identity(clock_name, a.base->counts_cycles(), pr::make_nonce());
  if (auto c = o.get("connections")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*c);
    if (!v) return tsync::cli::usage_error(cmd, "bad --connections '" + *c + "'");
    a.connections = *v;
  }
  if (auto c = o.get("max-connections")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*c);
    if (!v || *v == 0 || *v > 4096) return tsync::cli::usage_error(cmd, "bad --max-connections '" + *c + "' (1..4096)");
    a.max_connections = *v;
  }
  if (auto s = o.get("shift")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v) return tsync::cli::usage_error(cmd, "bad --shift '" + *s + "' (nanoseconds)");
    a.od.offset_ns = *v;
  }
  if (auto s = o.get("drift-ppb")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v || *v < -1'000'000'000 || *v > 1'000'000'000) return tsync::cli::usage_error(cmd, "bad --drift-ppb '" + *s + "'");
    a.od.drift_ppb = *v;
    a.od.anchor = a.base->now_raw();
  }
  if (auto s = o.get("idle-timeout")) {
    auto d = parse_duration(*s);
    if (!d) return tsync::cli::usage_error(cmd, "bad --idle-timeout '" + *s + "'");
    a.idle = *d;
  }
  if (auto s = o.get("step-per-series")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v || *v < -1'000'000'000'000 || *v > 1'000'000'000'000)
      return tsync::cli::usage_error(cmd, "bad --step-per-series '" + *s + "' (nanoseconds, |NS| <= 1e12)");
    a.step_per_series = *v;
  }
  a.pin = !o.has("no-pin");
  a.verbose = o.has("verbose");
  return std::nullopt;
}

/// Single-channel transports: serve until the peer is done, reopening when it
/// went away before any series (a FIFO reads as closed until the peer opens it).
int serve_channel(const agent_args& a, std::mutex& out_mu, std::atomic<int>& failures) {
  const bool fifo = a.spec.k == tr::spec::kind::fifo;
  const std::string in = a.spec.path + ".in", out = a.spec.path + ".out";
  if (fifo) {
    for (const auto& p : {in, out}) {
      if (auto made = tr::make_fifo(p); !made)
        return tsync::cli::fail("agent: cannot create FIFO " + p + ": " + made.error().message());
    }
  }
  std::stop_source stop;
  std::uint32_t served = 0;
  // While no host is there (a virtio-serial port reads end-of-file until the host
  // side opens it), reopen with a growing pause (50 ms doubling to 2 s) and say
  // so once; each change of state (waiting / host connected / host gone) is one line.
  std::chrono::milliseconds pause = 50ms;
  bool waiting_said = false;
  while (!g_interrupted.load() && (a.connections == 0 || served < a.connections)) {
    if (!waiting_said) {
      agent_log(out_mu, "waiting for the host on " + a.spec_text);
      waiting_said = true;
    }
    auto t = fifo ? tr::open_fifo_pair(in, out, tr::after(500ms)) : tr::open_chardev(a.spec.path);
    if (!t) {
      if (t.error() == tsync::make_error_code(tsync::errc::timed_out)) continue;
      return tsync::cli::fail("agent: cannot open " + a.spec.path + ": " + t.error().message());
    }
    std::uint32_t started = 0;
    serve_one(*t, a, stop.get_token(), out_mu, failures, &started);
    if (started > 0) {
      ++served;
      pause = 50ms;
      agent_log(out_mu, "host gone");
      waiting_said = false;
      continue;
    }
    if (fifo) continue;  // opening a FIFO waits for the peer by itself
    for (auto slept = 0ms; slept < pause && !g_interrupted.load(); slept += 50ms) std::this_thread::sleep_for(50ms);
    pause = std::min<std::chrono::milliseconds>(pause * 2, 2000ms);
  }
  return failures.load() == 0 ? 0 : 1;
}

int run_agent(const std::vector<std::string>& args) {
  agent_args a;
  if (auto rc = parse_agent_args(args, a)) return *rc;
  install_signal_handlers();
  std::mutex out_mu;
  std::atomic<int> failures{0};
  if (!a.spec.connection_oriented()) return serve_channel(a, out_mu, failures);

  // Connection-oriented transports: one accept loop, a bounded pool of workers
  // (transport/server.hpp), handshakes on the workers.
  auto l = tr::listener::listen(a.spec);
  if (!l) return tsync::cli::fail("agent: cannot listen on " + a.spec_text + ": " + l.error().message());
  if (a.verbose) std::cerr << "tsync agent: listening on " << a.spec_text << '\n';
  tr::server_options so;
  so.max_connections = a.max_connections;
  so.max_accepted = a.connections;
  so.log = [&out_mu](const std::string& line) {
    std::lock_guard lk(out_mu);
    std::cerr << "tsync agent: " << line << '\n';
  };
  tr::server srv(std::move(*l),
                 [&](tr::stream_transport& t, std::stop_token st) {
                   serve_one(t, a, st, out_mu, failures);
                 },
                 so);
  std::stop_source stop;
  std::jthread watcher([&](std::stop_token st) {
    while (!st.stop_requested()) {
      if (g_interrupted.load()) {
        stop.request_stop();
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  const auto stats = srv.run(stop.get_token());
  if (a.verbose) {
    std::lock_guard lk(out_mu);
    std::cerr << "tsync agent: " << stats.accepted << " connections served, " << stats.refused << " refused at the cap, "
              << stats.handshake_failed << " failed handshakes, " << stats.threads << " worker threads\n";
  }
  return failures.load() == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- sync

/// Commit `f`; on failure say so naming the file and the errno text.
bool commit_or_report(sy::atomic_file& f) {
  auto r = f.commit();
  if (r) return true;
  std::cerr << "tsync sync: " << r.error().what() << '\n';
  return false;
}

/// KVM protocol: the VM's per-vCPU step tables (sync/kvm_tables.hpp), one file each.
int write_kvm_tables(const tsync::kvm::debugfs_query& q, const std::string& prefix, bool quiet) {
  auto vm = tsync::kvm::read_vm_detailed(q);
  if (!vm) return tsync::cli::fail("sync: KVM debugfs: " + vm.error().what());
  auto tables = sy::kvm_tables(*vm);
  if (!tables) return tsync::cli::fail("sync: " + tables.error().message);
  for (const auto& v : *tables) {
    const std::string file = prefix + ".vcpu" + std::to_string(v.vcpu) + ".csv";
    std::ostringstream text;
    tsync::io::write_output_header(text, "TSC cycles", "x86-tsc (host)", "x86-tsc (guest)",
                                   std::vector<std::string>{"segments: 1 (id 0); exact, no bounds needed"});
    tsync::io::write_table_csv(text, std::span<const tsync::sync_sample>(&v.sample, 1),
                               "tsync sync table of vCPU " + std::to_string(v.vcpu) + " (KVM debugfs " + vm->ref.path +
                                   ", exact): host = ceil((guest + offset) * 2^frac_bits / ratio); use --mode step");
    auto f = sy::atomic_file::create(file);
    f << text.str();
    if (!commit_or_report(f)) return 1;
    if (!quiet)
      std::cout << "vcpu " << v.vcpu << ": tsc-offset " << v.tsc_offset << ", ratio " << v.sample.ratio << "/2^"
                << static_cast<unsigned>(v.sample.frac_bits) << " -> " << file << '\n';
  }
  return 0;
}

/// The options of `tsync sync`.
struct sync_args {
  std::optional<tr::spec> spec;
  std::string spec_text;
  std::vector<std::uint32_t> vcpus;
  sy::session_config cfg;
  std::optional<std::uint32_t> count;
  std::optional<std::chrono::nanoseconds> duration;
  std::string est_name, clock_name, prefix;
  std::string model_est = sy::default_model_estimator;  ///< whole-trace estimator; empty: none
  std::optional<clk::any_clock> clock;
  std::chrono::nanoseconds connect_timeout = 10s;
  pr::series_config base;
  pr::peer_identity id;  ///< this side's identity, sent in every hello
  std::optional<pr::peer_identity> peer;  ///< the peer's identity from the first hello (after connecting)
  bool quiet = false, serial = false;
  std::optional<tsync::kvm::debugfs_query> kvm_query;
};

/// Timing options (--probes, --interval, --count, --duration, timeouts).
std::optional<int> parse_sync_timing(const tsync::cli::options& o, sync_args& a) {
  const std::string cmd = "sync";
  if (auto p = o.get("probes")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*p);
    if (!v || *v == 0 || *v > pr::max_probes_per_series)
      return tsync::cli::usage_error(cmd, "bad --probes '" + *p + "' (1.." + std::to_string(pr::max_probes_per_series) + ")");
    a.cfg.probes = *v;
  }
  if (auto p = o.get("interval")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --interval '" + *p + "' (e.g. 500ms, 1s, 0)");
    a.cfg.interval = *d;
  }
  if (auto p = o.get("count")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*p);
    if (!v || *v < 2) return tsync::cli::usage_error(cmd, "bad --count '" + *p + "' (series per vCPU, at least 2)");
    a.count = *v;
  }
  if (auto p = o.get("duration")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --duration '" + *p + "'");
    a.duration = *d;
  }
  if (a.count && a.duration) return tsync::cli::usage_error(cmd, "give --count or --duration, not both");
  if (!a.count && !a.duration) a.count = 2;
  if (a.count && *a.count > 2 && a.cfg.interval.count() == 0)
    return tsync::cli::usage_error(cmd, "--count above 2 needs a non-zero --interval");
  if (auto p = o.get("connect-timeout")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --connect-timeout '" + *p + "'");
    a.connect_timeout = *d;
  }
  if (auto p = o.get("probe-timeout")) {
    auto d = parse_duration(*p);
    if (!d || d->count() <= 0) return tsync::cli::usage_error(cmd, "bad --probe-timeout '" + *p + "'");
    a.base.per_probe_timeout = *d;
  }
  return std::nullopt;
}

/// --kvm-pid, --kvm-fd, --kvm-root.
std::optional<int> parse_sync_kvm(const tsync::cli::options& o, sync_args& a) {
  const std::string cmd = "sync";
  auto p = o.get("kvm-pid");
  if (!p) return std::nullopt;
  auto pid = tsync::cli::parse_int<std::int64_t>(*p);
  if (!pid || *pid <= 0) return tsync::cli::usage_error(cmd, "bad --kvm-pid '" + *p + "'");
  tsync::kvm::debugfs_query q;
  q.pid = *pid;
  if (auto f = o.get("kvm-fd")) {
    auto fd = tsync::cli::parse_int<std::int64_t>(*f);
    if (!fd || *fd < 0) return tsync::cli::usage_error(cmd, "bad --kvm-fd '" + *f + "'");
    q.fd = *fd;
  }
  if (auto r = o.get("kvm-root")) q.root = *r;
  a.kvm_query = q;
  return std::nullopt;
}

/// The kind ("per-burst" or "whole-trace") of a registered estimator, or empty.
std::string estimator_kind(const std::string& name) {
  for (const auto& e : tsync::estimate::estimators())
    if (e.name == name) return std::string(e.kind);
  return {};
}

/// The registered estimators of one kind, comma-separated.
std::string estimators_of_kind(std::string_view kind) {
  std::string avail;
  for (const auto& e : tsync::estimate::estimators())
    if (e.kind == kind) avail += (avail.empty() ? "" : ", ") + std::string(e.name);
  return avail;
}

/// --estimator (per series: per-burst estimators only), --model-estimator
/// (whole trace: whole-trace estimators, or none) and --no-breaks.
std::optional<int> parse_sync_estimators(const tsync::cli::options& o, sync_args& a) {
  const std::string cmd = "sync";
  a.est_name = o.get("estimator").value_or("split_envelope");
  const std::string kind = estimator_kind(a.est_name);
  if (kind.empty())
    return tsync::cli::usage_error(cmd, "unknown --estimator '" + a.est_name + "' (per-series estimators: " +
                                            estimators_of_kind("per-burst") + ")");
  if (kind != "per-burst")
    return tsync::cli::usage_error(cmd, "--estimator " + a.est_name + " is a whole-trace estimator: fitted on one series "
                                        "alone it has no trace to fit; use --model-estimator " + a.est_name +
                                        " (per-series estimators: " + estimators_of_kind("per-burst") + ")");
  auto est = sy::named_estimator(a.est_name);
  if (!est) return tsync::cli::usage_error(cmd, "bad --estimator '" + a.est_name + "'");
  a.cfg.estimator = *est;
  a.model_est = o.get("model-estimator").value_or(sy::default_model_estimator);
  if (a.model_est == "none") a.model_est.clear();
  if (!a.model_est.empty() && estimator_kind(a.model_est) != "whole-trace")
    return tsync::cli::usage_error(cmd, "--model-estimator " + a.model_est +
                                            (estimator_kind(a.model_est).empty() ? " is unknown" : " is a per-series estimator (use --estimator)") +
                                            " (whole-trace estimators: " + estimators_of_kind("whole-trace") + ", or none)");
  a.cfg.whole_trace.estimator = a.model_est;
  a.cfg.track_segments = !o.has("no-breaks");
  return std::nullopt;
}

/// Parse the options of `tsync sync`; a non-empty optional is the exit status of an error.
std::optional<int> parse_sync_args(const std::vector<std::string>& args, sync_args& a) {
  const std::string cmd = "sync";
  tsync::cli::options o(args, {"serial", "quiet", "no-breaks"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"transport", "vcpus", "probes", "interval", "count", "duration", "estimator", "clock",
                          "output", "role", "serial", "quiet", "connect-timeout", "probe-timeout", "kvm-pid",
                          "kvm-fd", "kvm-root", "model-estimator", "no-breaks"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  auto spec_s = o.get("transport");
  if (!spec_s && !o.has("kvm-pid")) return tsync::cli::usage_error(cmd, "--transport (or --kvm-pid) is required");
  if (spec_s) {
    auto spec = tr::parse_spec(*spec_s);
    if (!spec) return tsync::cli::usage_error(cmd, "bad --transport '" + *spec_s + "': " + spec.error().what());
    a.spec = *spec;
    a.spec_text = *spec_s;
  }
  auto vcpus = parse_vcpus(o.get("vcpus").value_or("1"));
  if (!vcpus) return tsync::cli::usage_error(cmd, "bad --vcpus (a count, or a comma-separated list of distinct ids)");
  a.vcpus = *vcpus;
  if (auto rc = parse_sync_timing(o, a)) return rc;
  if (auto rc = parse_sync_estimators(o, a)) return rc;
  a.clock_name = o.get("clock").value_or("mono_raw");
  auto clock = clk::open_clock(a.clock_name, clk::kernel_clock_policy::trace_marker);
  if (!clock) return tsync::cli::fail("sync: cannot use clock '" + a.clock_name + "': " + clock.error().message());
  a.clock = *clock;
  a.id = pr::local_identity(a.clock_name, a.clock->counts_cycles(), pr::make_nonce());
  const std::string role = o.get("role").value_or("host");
  if (role != "host" && role != "guest") return tsync::cli::usage_error(cmd, "bad --role '" + role + "' (host or guest)");
  a.cfg.initiator_is_host = role == "host";
  a.prefix = o.get("output").value_or("tsync-sync");
  a.quiet = o.has("quiet");
  a.serial = o.has("serial");
  return parse_sync_kvm(o, a);
}

/// Protocol choice, said out loud. KVM (exact, from debugfs) is considered when a
/// VM is named with --kvm-pid; otherwise the probe exchange runs.
sy::protocol choose_protocol(const sync_args& a) {
  sy::protocol chosen = sy::protocol::probe;
  auto id = clk::parse_trace_clock(a.clock_name);
  if (!id) return chosen;
  sy::selection_input in;
  in.host_clock = in.guest_clock = *id;
  in.have_transport = a.spec.has_value();
  if (a.kvm_query) in.kvm_check = [&] { return sy::check_kvm_debugfs(*a.kvm_query); };
  auto sel = sy::select_protocol(in);
  for (const auto& d : sel.decisions) {
    if (!a.quiet)
      std::cout << "protocol " << sy::to_string(d.proto) << ": " << (d.chosen ? "chosen" : "refused") << " ("
                << d.reason << ")\n";
    if (d.chosen) chosen = d.proto;
  }
  return chosen;
}

/// The labels every output file carries (docs/outputs.md).
tsync::io::output_labels labels_of(const sync_args& a) {
  tsync::io::output_labels l;
  // The peer's clock as its hello said (the handshake refused a mismatch).
  const std::string peer_clock = a.peer ? a.peer->clock : a.clock_name;
  l.host_clock = a.cfg.initiator_is_host ? a.clock_name : peer_clock;
  l.guest_clock = a.cfg.initiator_is_host ? peer_clock : a.clock_name;
  l.unit = pr::to_string(a.id.unit);
  return l;
}

/// The `# ...` header lines of a CSV output (sign, unit, clocks, then `extra`).
std::string csv_header(const sync_args& a, const std::vector<std::string>& extra) {
  std::ostringstream h;
  const auto l = labels_of(a);
  tsync::io::write_output_header(h, l.unit, l.host_clock, l.guest_clock, extra);
  return h.str();
}

/// One line of PREFIX.series.csv: the series' estimate in the contract's
/// terms (offset = host − guest at a guest time, absolute hard bounds).
std::string series_line(const sy::series_record& rec, bool initiator_is_host) {
  std::ostringstream line;
  line << rec.vcpu << ',' << rec.series_id << ',' << rec.segment << ',' << rec.round << ',' << (rec.final ? 1 : 0)
       << ',' << rec.probes_requested << ',' << rec.probes_received << ',' << '"'
       << (rec.error ? rec.error.message() : "") << '"';
  if (rec.estimate) {
    const auto& e = *rec.estimate;
    const auto smp = sy::to_sync_sample(e, initiator_is_host);
    const std::int64_t off = smp.offset.count();
    line << ',' << tsync::raw_ns(smp.guest_time) << ',' << off << ',' << off + smp.bounds->lo << ','
         << off + smp.bounds->hi << ',' << e.min_rtt << ',' << e.median_rtt << ',' << e.estimator;
  } else {
    line << ",,,,,,,";
  }
  line << ',' << rec.duration.count() << '\n';
  return line.str();
}

const char* const series_columns =
    "vcpu,series_id,segment,round,final,probes_requested,probes_received,error,guest_time,offset,offset_lo,offset_hi,"
    "min_rtt,median_rtt,estimator,duration_ns\n";

/// Epoch of each segment id from a vCPU's breaks (a backward or reboot break starts a new epoch).
std::vector<std::uint32_t> epochs_of(const std::vector<tsync::estimate::clock_break>& breaks, std::uint32_t segments) {
  std::vector<std::uint32_t> ep(segments + 1, 0);
  for (std::uint32_t s = 1; s <= segments; ++s) {
    ep[s] = ep[s - 1];
    for (const auto& b : breaks)
      if (b.segment == s && (b.kind == tsync::estimate::break_kind::backward || b.kind == tsync::estimate::break_kind::reboot))
        ++ep[s];
  }
  return ep;
}

/// The per-series model of a vCPU, one part per segment (the polyline through
/// its series estimates); used when no whole-trace model is fitted.
tsync::expected<tsync::estimate::session_model, tsync::errc> per_series_model(const sy::vcpu_result& r,
                                                                              const std::string& est) {
  tsync::estimate::session_model sm;
  sm.estimator = est;
  sm.breaks = r.breaks;
  std::uint32_t max_seg = 0;
  for (auto s : r.table_segments) max_seg = std::max(max_seg, s);
  const auto ep = epochs_of(r.breaks, max_seg);
  for (std::uint32_t seg = 0; seg <= max_seg; ++seg) {
    sy::vcpu_result sub;
    sub.vcpu = r.vcpu;
    for (std::size_t i = 0; i < r.table.size(); ++i) {
      if (r.table_segments.size() == r.table.size() && r.table_segments[i] != seg) continue;
      for (const auto& rec : r.series) {
        if (rec.table_index != i) continue;
        auto c = rec;
        c.table_index = sub.table.size();
        sub.series.push_back(c);
      }
      sub.table.push_back(r.table[i]);
    }
    sub.table.resize(sy::sorted_prefix(sub.table));
    if (sub.table.empty()) continue;
    auto m = sy::to_model(sub, est);
    if (!m) return tsync::unexpected(m.error());
    sm.parts.push_back({seg, ep[seg], tsync::raw_ns(sub.table.front().guest_time), tsync::raw_ns(sub.table.back().guest_time),
                        std::move(*m)});
  }
  if (sm.parts.empty()) return tsync::unexpected(tsync::errc::empty_input);
  return sm;
}

/// What one vCPU's outputs are made of.
struct vcpu_outputs {
  std::vector<tsync::sync_sample> table;
  std::vector<std::uint32_t> segments, epochs;
  std::optional<tsync::estimate::session_model> model;
  std::string table_estimator, model_estimator;
  std::vector<std::pair<std::uint32_t, tsync::errc>> failures;  // segments whose whole-trace fit failed
};

/// The table and model of one vCPU: from the whole-trace model when it was
/// fitted, else from the per-series estimates.
vcpu_outputs outputs_of(const sync_args& a, const sy::vcpu_result& r, const sy::vcpu_model* wm) {
  vcpu_outputs o;
  if (wm != nullptr && wm->model) {
    o.model = *wm->model;
    o.failures = wm->failures;
    o.model_estimator = o.table_estimator = a.model_est + " (whole trace, per segment)";
    for (const auto& p : o.model->parts) {
      for (const auto& smp : p.model.to_sync_table()) {
        o.table.push_back(smp);
        o.segments.push_back(p.segment);
        o.epochs.push_back(p.epoch);
      }
    }
    return o;
  }
  if (wm != nullptr) o.failures = wm->failures;
  o.model_estimator = o.table_estimator = a.est_name + " (per series)";
  auto m = per_series_model(r, a.est_name);
  if (!m) return o;
  o.model = std::move(*m);
  std::uint32_t max_seg = 0;
  for (auto s : r.table_segments) max_seg = std::max(max_seg, s);
  const auto ep = epochs_of(r.breaks, max_seg);
  for (const auto& p : o.model->parts) {
    for (std::size_t i = 0; i < r.table.size(); ++i) {
      const std::uint32_t seg = r.table_segments.size() == r.table.size() ? r.table_segments[i] : 0;
      if (seg != p.segment) continue;
      const auto t = tsync::raw_ns(r.table[i].guest_time);
      if (t < p.first_guest || t > p.last_guest) continue;
      if (!o.table.empty() && o.segments.back() == seg && !(tsync::raw_ns(o.table.back().guest_time) < t)) continue;
      o.table.push_back(r.table[i]);
      o.segments.push_back(seg);
      o.epochs.push_back(ep[seg]);
    }
  }
  return o;
}

/// Lines describing the breaks and segments, for CSV headers.
std::vector<std::string> segment_lines(const std::vector<tsync::estimate::clock_break>& breaks) {
  std::vector<std::string> out;
  out.push_back("segments: " + std::to_string(breaks.size() + 1) + " (ids 0.." + std::to_string(breaks.size()) +
                "; nothing is interpolated across a break)");
  for (const auto& b : breaks)
    out.push_back("break " + std::string(tsync::estimate::to_string(b.kind)) + " before segment " +
                  std::to_string(b.segment) + ": guest " + std::to_string(b.guest_before) + " -> " +
                  std::to_string(b.guest_after) + ", host " + std::to_string(b.host_before) + " -> " +
                  std::to_string(b.host_after));
  return out;
}

/// The per-vCPU outputs: the table, the model; appends the vCPU to the summary. False on a write error.
bool write_vcpu_outputs(const sync_args& a, const sy::vcpu_result& r, const sy::vcpu_model* wm, std::ostringstream& summary) {
  const std::string file = a.prefix + ".vcpu" + std::to_string(r.vcpu) + ".csv";
  const std::string mfile = a.prefix + ".vcpu" + std::to_string(r.vcpu) + ".model.json";
  const vcpu_outputs o = outputs_of(a, r, wm);
  bool ok = true;
  std::vector<std::string> hdr{"tsync sync table of vCPU " + std::to_string(r.vcpu) + ", estimator " + o.table_estimator,
                               "sign: host = guest + offset", "unit: " + labels_of(a).unit,
                               "host_clock: " + labels_of(a).host_clock, "guest_clock: " + labels_of(a).guest_clock,
                               "offset_lo, offset_hi: hard bounds of host - guest (absolute, " + labels_of(a).unit +
                                   "); outside a segment's samples they widen by max_drift (1000 ppm) of the distance"};
  for (auto& l : segment_lines(r.breaks)) hdr.push_back(std::move(l));
  if (!o.table.empty()) {
    std::ostringstream text;
    tsync::io::write_segmented_table_csv(text, o.table, o.segments, o.epochs, hdr);
    auto f = sy::atomic_file::create(file);
    f << text.str();
    ok = commit_or_report(f);
  }
  if (o.model) {
    auto mf = sy::atomic_file::create(mfile);
    mf << tsync::io::session_model_to_json(*o.model, labels_of(a), r.vcpu);
    ok = commit_or_report(mf) && ok;
  } else if (!r.table.empty()) {
    std::cerr << "tsync sync: cannot build the model of vCPU " << r.vcpu << '\n';
    ok = false;
  }
  auto q = [](const std::string& v) {
    std::string s;
    tsync::io::json::write_string(s, v);
    return s;
  };
  summary << "    {\"vcpu\": " << r.vcpu << ", \"table\": " << (o.table.empty() ? "null" : q(file))
          << ", \"table_estimator\": " << q(o.table_estimator) << ", \"model\": " << (o.model ? q(mfile) : "null")
          << ", \"model_estimator\": " << q(o.model_estimator) << ", \"peer_lost\": " << (r.peer_lost ? "true" : "false")
          << ", \"dropped_probes\": " << r.dropped_probes << ",\n     \"breaks\": [";
  for (std::size_t i = 0; i < r.breaks.size(); ++i) {
    std::string b;
    tsync::io::write_break_json(b, r.breaks[i]);
    summary << (i ? ",\n       " : "\n       ") << b;
  }
  summary << "],\n     \"failures\": [";
  bool first = true;
  for (const auto& rec : r.series) {
    if (rec.ok()) continue;
    summary << (first ? "" : ", ") << "{\"series\": " << rec.series_id << ", \"error\": " << q(rec.error.message()) << '}';
    first = false;
  }
  for (const auto& [seg, e] : o.failures) {
    summary << (first ? "" : ", ") << "{\"segment\": " << seg << ", \"error\": "
            << q("whole-trace fit failed: " + std::string(tsync::to_string(e))) << '}';
    first = false;
  }
  summary << "],\n     \"samples\": [";
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    const auto& t = r.table[i];
    summary << (i ? ", " : "") << "{\"time\": " << tsync::raw_ns(t.guest_time) << ", \"offset\": " << t.offset.count();
    if (t.bounds) summary << ", \"lo\": " << t.offset.count() + t.bounds->lo << ", \"hi\": " << t.offset.count() + t.bounds->hi;
    if (i < r.table_segments.size()) summary << ", \"segment\": " << r.table_segments[i];
    summary << '}';
  }
  summary << "]}";
  return ok;
}

/// An identity as a JSON object (the nonce as 16 hex digits: it does not fit a double).
std::string identity_json(const pr::peer_identity& id) {
  std::string clock, nonce;
  tsync::io::json::write_string(clock, id.clock);
  for (int i = 60; i >= 0; i -= 4) nonce += "0123456789abcdef"[(id.nonce >> i) & 0xFu];
  return "{\"clock\": " + clock + ", \"unit\": \"" + pr::to_string(id.unit) + "\", \"tsc_hz\": " +
         std::to_string(id.tsc_hz) + ", \"boot_id\": \"" + pr::format_boot_id(id.boot_id) + "\", \"nonce\": \"" + nonce +
         "\"}";
}

/// Write every output of a finished session (temp name, fsync, rename); the exit status.
/// `peer` is the identity of the peer's first answer (the handshake at connect time).
int write_session_outputs(const sync_args& a, const std::vector<sy::vcpu_result>& results,
                          const std::vector<sy::vcpu_model>& models, const std::optional<pr::peer_identity>& peer) {
  int rc = 0;
  std::ostringstream summary;
  auto q = [](const std::string& v) {
    std::string s;
    tsync::io::json::write_string(s, v);
    return s;
  };
  const std::string unit = pr::to_string(a.id.unit);
  const std::string peer_clock = peer ? peer->clock : a.clock_name;
  const bool host = a.cfg.initiator_is_host;
  summary << "{\n  \"format\": \"tsync-sync-tables\",\n  \"version\": 2,\n  \"sign\": \"host = guest + offset\""
          << ",\n  \"unit\": \"" << unit << "\",\n  \"host_clock\": " << q(host ? a.clock_name : peer_clock)
          << ",\n  \"guest_clock\": " << q(host ? peer_clock : a.clock_name) << ",\n  \"self\": " << identity_json(a.id)
          << ",\n  \"peer\": " << (peer ? identity_json(*peer) : std::string("null"))
          << ",\n  \"clock\": " << q(a.clock_name) << ",\n  \"estimator\": " << q(a.est_name)
          << ",\n  \"series_estimator\": " << q(a.est_name) << ",\n  \"model_estimator\": " << q(a.model_est)
          << ",\n  \"files\": {\"series\": " << q(a.prefix + ".series.csv") << ", \"probes\": " << q(a.prefix + ".probes.csv")
          << "},\n  \"offset\": \"host - guest (" << unit << ") at guest time\",\n  \"vcpus\": [";
  bool first_v = true;
  for (const auto& r : results) {
    summary << (first_v ? "\n" : ",\n");
    first_v = false;
    const sy::vcpu_model* wm = nullptr;
    for (const auto& m : models)
      if (m.vcpu == r.vcpu) wm = &m;
    if (!write_vcpu_outputs(a, r, wm, summary)) rc = 1;
    std::size_t failed = 0;
    for (const auto& rec : r.series) failed += rec.ok() ? 0u : 1u;
    if (!a.quiet) {
      std::cout << "vcpu " << r.vcpu << ": " << r.table.size() << " samples from " << r.series.size() << " series ("
                << failed << " failed)";
      if (!r.breaks.empty()) std::cout << ", " << r.breaks.size() << " break(s), " << r.breaks.size() + 1 << " segments";
      if (!r.table.empty()) std::cout << ", last offset " << r.table.back().offset.count() << " ns";
      if (r.peer_lost) std::cout << ", peer lost: " << r.end_error.message();
      std::cout << " -> " << a.prefix << ".vcpu" << r.vcpu << ".csv\n";
    }
    if (wm != nullptr && !wm->model)
      std::cerr << "tsync sync: vCPU " << r.vcpu << ": the whole-trace model (" << a.model_est
                << ") could not be fitted: " << tsync::to_string(wm->model.error()) << "; the model is per series\n";
    if (r.table.empty()) rc = 1;
    if (r.peer_lost) {
      std::cerr << "tsync sync: vCPU " << r.vcpu << ": the peer went away: " << r.end_error.message()
                << " (samples so far kept)\n";
      rc = 1;
    }
  }
  summary << "\n  ]\n}\n";
  auto f = sy::atomic_file::create(a.prefix + ".session.json");
  f << summary.str();
  if (!commit_or_report(f)) rc = 1;
  return rc;
}

/// One line for people about a break, on stderr as it is found.
std::string break_message(const tsync::estimate::clock_break& b) {
  std::ostringstream m;
  m << "tsync sync: vCPU " << b.vcpu << ": break (" << tsync::estimate::to_string(b.kind) << ") in series " << b.series
    << ": " << b.reason;
  if (b.step) m << "; the offset moved by " << *b.step << " ns";
  m << "; segment " << b.segment << " starts at guest time " << b.guest_after << " (the last sample before: guest "
    << b.guest_before << ")\n";
  return m.str();
}

/// One probe line of PREFIX.probes.csv (t1,g,t2,burst,id,vcpu,segment).
void append_probes(std::string& out, std::span<const tsync::probe_sample> probes, std::span<const std::uint32_t> seg) {
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    if (i < seg.size() && seg[i] == sy::whole_trace_tracker::npos) continue;  // a glitch the detector dropped
    out += std::to_string(p.t1) + ',' + std::to_string(p.g) + ',' + std::to_string(p.t2) + ',' +
           std::to_string(p.burst) + ',' + std::to_string(p.id) + ',' + std::to_string(p.vcpu) + ',' +
           std::to_string(i < seg.size() ? seg[i] : 0u) + '\n';
  }
}

/// Connect one transport per channel and build the channels.
struct connections {
  std::vector<std::unique_ptr<tr::stream_transport>> conns;
  std::vector<std::unique_ptr<clk::any_clock>> clocks;
  std::vector<sy::channel> channels;
  std::optional<pr::peer_identity> peer;  ///< who answered the first hello
  std::mutex log_mu;
};

/// The first hello on a new connection: the peer's identity, or the exit status
/// of a refusal (no answer, another protocol version, a clock mismatch) said on stderr.
std::variant<pr::peer_identity, int> first_hello(const sync_args& a, tr::stream_transport& t, tr::deadline until) {
  auto h = pr::exchange_hello(t, a.id, until);
  if (!h.ok()) {
    if (h.error == tsync::make_error_code(tsync::errc::timed_out))
      return tsync::cli::fail("sync: connected to " + a.spec_text + ", but nobody answered within the --connect-timeout (" +
                              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(a.connect_timeout).count()) +
                              " ms): is 'tsync agent' running on the other side? (a QEMU chardev socket accepts before "
                              "the guest's agent opens its port)");
    return tsync::cli::fail("sync: " + a.spec_text + ": " + h.message);
  }
  const bool host = a.cfg.initiator_is_host;
  if (auto why = pr::clock_mismatch(host ? a.id : *h.peer, host ? *h.peer : a.id)) {
    (void)pr::send_bye(t, tr::after(200ms));
    return tsync::cli::fail("sync: refused before any probe: " + *why);
  }
  return *h.peer;
}

/// One connection per vCPU (connection-oriented, not --serial) or one for all.
/// Extra connections nobody answers (a QEMU chardev socket serves one client)
/// are dropped and their vCPUs multiplexed over the first connection.
std::optional<int> connect_channels(const sync_args& a, connections& c) {
  const bool parallel = a.spec->connection_oriented() && !a.serial;
  const std::size_t nconn = parallel ? a.vcpus.size() : 1;
  const auto until = tr::after(a.connect_timeout);
  std::vector<std::vector<std::uint32_t>> served;
  for (std::size_t i = 0; i < nconn; ++i) {
    auto t = tr::open_with_retry(*a.spec, until, [] { return g_interrupted.load(); });
    if (!t) return tsync::cli::fail("sync: cannot connect to " + a.spec_text + ": " + t.error().message());
    // The first connection may wait the whole --connect-timeout; the others only a little.
    const auto hello_until = i == 0 ? until : std::min(until, tr::after(3s));
    if (i > 0) {
      auto h = pr::exchange_hello(*t, a.id, hello_until);
      if (!h.ok()) {
        if (!a.quiet)
          std::cerr << "tsync sync: connection " << (i + 1) << " to " << a.spec_text << ": " << h.message
                    << "; the peer serves one client (a QEMU chardev?): vCPUs are multiplexed over the first "
                       "connection (--serial does this at once)\n";
        for (std::size_t j = i; j < nconn; ++j) served[0].push_back(a.vcpus[j]);
        break;
      }
    } else {
      auto h = first_hello(a, *t, hello_until);
      if (auto* rc = std::get_if<int>(&h)) return *rc;
      c.peer = std::get<pr::peer_identity>(h);
    }
    c.conns.push_back(std::make_unique<tr::stream_transport>(std::move(*t)));
    c.clocks.push_back(std::make_unique<clk::any_clock>(*a.clock));
    served.push_back(parallel ? std::vector<std::uint32_t>{a.vcpus[i]} : a.vcpus);
  }
  for (std::size_t i = 0; i < c.conns.size(); ++i) {
    sy::identified_runner_options o;
    o.mine = a.id;
    o.initiator_is_host = a.cfg.initiator_is_host;
    o.hello_timeout = std::max<std::chrono::nanoseconds>(1s, std::min<std::chrono::nanoseconds>(a.connect_timeout, 5s));
    tr::stream_transport* conn = c.conns[i].get();
    // A peer that went away (agent restart, guest reboot) is reconnected within --connect-timeout;
    // the next hello tells whether it is another boot or process (a "reboot" break).
    o.reconnect = [&a, conn] {
      auto t = tr::open_with_retry(*a.spec, tr::after(a.connect_timeout), [] { return g_interrupted.load(); });
      if (!t) return false;
      *conn = std::move(*t);
      return true;
    };
    o.report = [&a, &c](const std::string& text) {
      std::lock_guard lk(c.log_mu);
      if (!a.quiet) std::cerr << "tsync sync: " << text << '\n';
    };
    c.channels.push_back(sy::channel{served[i], sy::make_identified_series_runner(*conn, *c.clocks[i], a.base, o)});
  }
  return std::nullopt;
}

/// Run the probe session; every series is appended to PREFIX.series.csv.partial
/// as it completes (renamed to PREFIX.series.csv at the end).
int run_probe_session(sync_args& a) {
  connections c;
  if (auto rc = connect_channels(a, c)) return *rc;
  a.peer = c.peer;
  if (!a.quiet && c.peer)
    std::cout << "peer: clock " << pr::describe_clock(*c.peer) << ", boot id " << pr::format_boot_id(c.peer->boot_id)
              << '\n';
  const std::string series_path = a.prefix + ".series.csv";
  const std::string probes_path = a.prefix + ".probes.csv";
  auto log = sy::append_log::create(series_path + ".partial");
  if (log.error()) return tsync::cli::fail("sync: cannot write " + log.path() + ": " + log.error().message());
  auto plog = sy::append_log::create(probes_path + ".partial");
  if (plog.error()) return tsync::cli::fail("sync: cannot write " + plog.path() + ": " + plog.error().message());
  const std::string role = a.cfg.initiator_is_host ? "host" : "guest";
  (void)log.append(csv_header(a, {"tsync sync series log: one line per series, appended as it completes",
                                  "offset, offset_lo, offset_hi: host - guest at guest_time (absolute bounds); "
                                  "estimator: the per-series estimator",
                                  "segment: the segment of the series' estimate (see the session summary's breaks)"}) +
                   series_columns);
  (void)plog.append(csv_header(a, {"tsync sync probes: every probe, appended per series (tsync estimate reads it)",
                                   "initiator: " + role,
                                   "t1, t2: stamps of this side (" + role + "), g: the agent's stamp; segment: see breaks",
                                   "glitched probes dropped by the break detector are not written"}) +
                    "t1,g,t2,burst,id,vcpu,segment\n");
  std::mutex log_mu;
  a.cfg.on_series = [&](const sy::series_record& rec) {
    std::lock_guard lk(log_mu);
    (void)log.append(series_line(rec, a.cfg.initiator_is_host));
  };
  a.cfg.on_probes = [&](const sy::series_record&, std::span<const tsync::probe_sample> p,
                        std::span<const std::uint32_t> seg) {
    std::string text;
    append_probes(text, p, seg);
    std::lock_guard lk(log_mu);
    (void)plog.append(text);
  };
  a.cfg.on_break = [&](const tsync::estimate::clock_break& b) {
    std::lock_guard lk(log_mu);
    std::cerr << break_message(b) << std::flush;
  };
  if (a.count) a.cfg.max_rounds = *a.count - 1;
  auto s = sy::make_session(std::move(c.channels), a.cfg);
  if (!s) return tsync::cli::fail("sync: " + s.error().message());
  auto ready = (*s)->start();
  if (!ready) {
    for (auto& t : c.conns) (void)pr::send_bye(*t, tr::after(200ms));
    return tsync::cli::fail("sync: the first series failed: " + ready.error().message());
  }
  if (!a.quiet) std::cout << "ready: " << ready->synchronized << " of " << ready->vcpus << " vCPUs synchronized\n";
  if (a.count) {
    while (!g_interrupted.load() && (*s)->running() && !(*s)->wait_for_rounds(*a.count - 1, 100ms)) {
    }
  } else {
    const auto end = std::chrono::steady_clock::now() + *a.duration;
    while (!g_interrupted.load() && (*s)->running() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(50ms, end - std::chrono::steady_clock::now()));
  }
  (*s)->stop();
  for (auto& t : c.conns) (void)pr::send_bye(*t, tr::after(500ms));
  int rc = write_session_outputs(a, (*s)->results(), (*s)->models(), c.peer);
  std::lock_guard lk(log_mu);
  for (auto [l, path] : {std::pair{&log, &series_path}, std::pair{&plog, &probes_path}})
    if (auto r = l->finish(*path); !r) {
      std::cerr << "tsync sync: " << r.error().what() << '\n';
      rc = 1;
    }
  return rc;
}

int run_sync(const std::vector<std::string>& args) {
  sync_args a;
  if (auto rc = parse_sync_args(args, a)) return *rc;
  install_signal_handlers();
  const sy::protocol chosen = choose_protocol(a);
  if (chosen == sy::protocol::kvm && a.kvm_query) return write_kvm_tables(*a.kvm_query, a.prefix, a.quiet);
  if (!a.spec) return tsync::cli::fail("sync: KVM sync is not possible here (see above) and no --transport was given");
  return run_probe_session(a);
}

const char* const transport_help =
    "  --transport SPEC     unix:/path | tcp:HOST:PORT | vsock:CID:PORT (CID 'any' for the agent)\n"
    "                       | hybrid:/path/to/uds:PORT (Firecracker / Cloud Hypervisor host socket)\n"
    "                       | fifo:/path/prefix (PREFIX.in carries probes to the agent, PREFIX.out replies)\n"
    "                       | chardev:/dev/vport0p1 (a virtio-serial port)\n";

const tsync::cli::command_registrar agent_cmd{{
    "agent",
    "answer probe series (the responder of a sync session)",
    std::string("--transport SPEC [options]\n\n"
                "Listens on SPEC and answers probe series with its clock until the peer says goodbye.\n"
                "Connections are served by a bounded pool of threads, each pinned to the vCPU a series\n"
                "is for (a failure to pin is reported with --verbose and the series runs unpinned).\n"
                "A stale socket file nobody listens on (left by a killed agent) is replaced.\n"
                "On a chardev or FIFO it says once that it waits for the host, and backs off\n"
                "(up to 2 s) while the port reads end-of-file. It refuses a sync side whose clock\n"
                "does not match its own (exit status 1), naming both.\n"
                "Limits and their defaults: docs/security.md.\n\n") +
        transport_help +
        "  --clock NAME         mono_raw (default), mono, boot, tai, realtime, x86-tsc; local, global,\n"
        "                       perf, counter, uptime through a tracefs instance (root)\n"
        "  --connections N      exit after N connections (0: until SIGINT/SIGTERM; default 0)\n"
        "  --no-pin             do not pin to the series' vCPU\n"
        "  --idle-timeout DUR   end a connection silent for this long (default 120s; 0: never)\n"
        "  --max-connections N  serve at most N connections at once; more are closed at once (default 64)\n"
        "  --shift NS           add NS to every stamp (testing: a known offset)\n"
        "  --drift-ppb PPB      and a known drift, in parts per billion\n"
        "  --step-per-series NS and a jump of NS at every series start (testing: a clock that\n"
        "                       steps, e.g. backwards, between series)\n"
        "  --verbose            report connections and pinning on stderr\n"
        "For a hybrid SPEC the agent stands in for the VMM's Unix socket (handshake, then probes);\n"
        "inside a real Firecracker / Cloud Hypervisor guest use vsock:any:PORT.",
    run_agent}};

const tsync::cli::command_registrar sync_cmd{{
    "sync",
    "run a sync session against an agent and write per-vCPU sync tables",
    std::string("--transport SPEC [options]  |  --clock x86-tsc --kvm-pid PID [--kvm-fd FD] [options]\n\n"
                "Runs probe series against `tsync agent`: a first one per vCPU, then one every\n"
                "--interval, and a last one at the end. Every probe is checked for breaks as it\n"
                "arrives (a clock step or pause, time going backwards after a reboot, a frequency\n"
                "step: reported on stderr), and the whole trace of each segment between breaks is\n"
                "fitted by --model-estimator. Writes (docs/outputs.md; host = guest + offset, ns):\n"
                "PREFIX.vcpuN.model.json (the model 'tsync correct --model' reads, per segment),\n"
                "PREFIX.vcpuN.csv (time,offset,offset_lo,offset_hi,segment,epoch: the table\n"
                "'tsync correct --table' reads, with hard bounds), PREFIX.probes.csv (every probe,\n"
                "as 'tsync estimate' reads them), PREFIX.series.csv (every series with its estimate,\n"
                "hard interval, round trips and error) and PREFIX.session.json (breaks, failures and\n"
                "which estimator made each file). The two logs are appended as the session runs.\n"
                "Before any probe both sides exchange their clock, its unit and their boot identity:\n"
                "a clock mismatch or another protocol version is refused with a message naming both.\n"
                "A peer that went away is reconnected within --connect-timeout; another boot or agent\n"
                "process answering is a 'reboot' break. Guests (QEMU, Firecracker, Cloud Hypervisor):\n"
                "docs/guests.md.\n"
                "Exit status 1 when a vCPU got no sample or the peer went away (tables are still written).\n\n") +
        transport_help +
        "  --vcpus N|LIST       4 (vCPUs 0..3) or 0,2,5 (default 1)\n"
        "  --probes N           probes per series (default 339)\n"
        "  --interval DUR       pause between series (default 1s; 0: first and last only)\n"
        "  --count N            series per vCPU, first and last included (default 2)\n"
        "  --duration DUR       or: keep sampling this long\n"
        "  --estimator NAME     per-series estimator (the series log; the model with\n"
        "                       --model-estimator none): split_envelope (default: per-direction\n"
        "                       minima), fastest_response (trace-cmd's), histogram_peak, median.\n"
        "                       A whole-trace estimator is refused here: use --model-estimator\n"
        "  --model-estimator NAME  whole-trace estimator of the model and table, fitted per\n"
        "                       segment: convex_hull (default), segmented, kalman (regression\n"
        "                       with Eigen), or none (the model is the per-series polyline)\n"
        "  --no-breaks          no break detection (one segment; not recommended)\n"
        "  --clock NAME         mono_raw (default), mono, boot, tai, realtime, x86-tsc; local, global,\n"
        "                       perf, counter, uptime through a tracefs instance (root)\n"
        "  --role host|guest    which side this command runs on (default host)\n"
        "  --serial             one connection for all vCPUs (default: one per vCPU; when the peer\n"
        "                       serves one client, e.g. a QEMU chardev, they share the first)\n"
        "  --output PREFIX      output file prefix (default tsync-sync)\n"
        "  --connect-timeout D  wait this long for the agent to accept and answer the handshake, and\n"
        "                       to come back after it went away (default 10s)\n"
        "  --probe-timeout D    a reply later than this is lost (default 100ms)\n"
        "  --quiet              print nothing on success\n"
        "  --kvm-pid PID        consider the KVM protocol for the VM that process PID created:\n"
        "                       with --clock x86-tsc on both sides and readable debugfs, the exact\n"
        "                       tsc-offset and scaling of each vCPU are written as step-mode tables\n"
        "                       (PREFIX.vcpuN.csv, 'time,offset,ratio,frac_bits'; use\n"
        "                       'tsync correct --mode step') and no probes are sent. Otherwise the\n"
        "                       probe exchange runs (it needs --transport). Every protocol's choice\n"
        "                       or refusal is printed with its reason.\n"
        "  --kvm-fd FD          the VM's fd, when the process has several VMs\n"
        "  --kvm-root DIR       KVM's debugfs directory (default /sys/kernel/debug/kvm)",
    run_sync}};

}  // namespace
