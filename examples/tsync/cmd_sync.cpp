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
#include "tsync/clock.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/probe.hpp"
#include "tsync/transport.hpp"
#include "tsync/sync.hpp"

namespace {

using namespace std::chrono_literals;
namespace tr = tsync::transport;
namespace pr = tsync::probe;
namespace sy = tsync::sync;
namespace clk = tsync::clock;

// ---------------------------------------------------------------- parsing

/// `<int>ns|us|ms|s|m`, or "0".
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  if (s == "0") return std::chrono::nanoseconds(0);
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i > 12) return std::nullopt;
  auto n = tsync::cli::parse_int<std::int64_t>(s.substr(0, i));
  if (!n) return std::nullopt;
  const auto unit = s.substr(i);
  if (unit == "ns") return std::chrono::nanoseconds(*n);
  if (unit == "us") return std::chrono::microseconds(*n);
  if (unit == "ms") return std::chrono::milliseconds(*n);
  if (unit == "s") return std::chrono::seconds(*n);
  if (unit == "m") return std::chrono::minutes(*n);
  return std::nullopt;
}

/// A transport address from `--transport`.
struct transport_spec {
  enum class kind { unix_socket, tcp, vsock, fifo, chardev, hybrid } k = kind::unix_socket;
  std::string path;       // unix, fifo prefix, chardev, hybrid uds
  std::string host;       // tcp
  std::uint32_t port = 0; // tcp, vsock, hybrid
  std::uint32_t cid = 0;  // vsock
  [[nodiscard]] bool connection_oriented() const { return k != kind::fifo && k != kind::chardev; }
};

std::optional<transport_spec> parse_transport(const std::string& s, std::string& why) {
  transport_spec t;
  const auto colon = s.find(':');
  if (colon == std::string::npos) {
    why = "expected KIND:ADDRESS";
    return std::nullopt;
  }
  const std::string kind = s.substr(0, colon), rest = s.substr(colon + 1);
  auto split_last = [&](std::string& left, std::uint32_t& port) -> bool {
    const auto c = rest.rfind(':');
    if (c == std::string::npos || c == 0) return false;
    left = rest.substr(0, c);
    auto p = tsync::cli::parse_int<std::uint32_t>(rest.substr(c + 1));
    if (!p) return false;
    port = *p;
    return true;
  };
  if (kind == "unix" || kind == "fifo" || kind == "chardev") {
    if (rest.empty()) {
      why = "empty path";
      return std::nullopt;
    }
    t.k = kind == "unix" ? transport_spec::kind::unix_socket
                         : kind == "fifo" ? transport_spec::kind::fifo : transport_spec::kind::chardev;
    t.path = rest;
    return t;
  }
  if (kind == "tcp") {
    t.k = transport_spec::kind::tcp;
    if (!split_last(t.host, t.port) || t.port > 65535) {
      why = "expected tcp:HOST:PORT";
      return std::nullopt;
    }
    return t;
  }
  if (kind == "hybrid") {
    t.k = transport_spec::kind::hybrid;
    if (!split_last(t.path, t.port)) {
      why = "expected hybrid:/path/to/uds:PORT";
      return std::nullopt;
    }
    return t;
  }
  if (kind == "vsock") {
    t.k = transport_spec::kind::vsock;
    std::string cid;
    if (!split_last(cid, t.port)) {
      why = "expected vsock:CID:PORT";
      return std::nullopt;
    }
    if (cid == "any") {
      t.cid = tr::vsock_cid_any;
    } else if (auto c = tsync::cli::parse_int<std::uint32_t>(cid)) {
      t.cid = *c;
    } else {
      why = "expected vsock:CID:PORT (CID a number or 'any')";
      return std::nullopt;
    }
    return t;
  }
  why = "unknown transport kind '" + kind + "' (unix, tcp, vsock, hybrid, fifo, chardev)";
  return std::nullopt;
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
  agent_clock(clk::any_clock c, clk::offset_drift od) : c_(c, od) {}
  [[nodiscard]] std::int64_t now() noexcept { return c_.now(); }
  [[nodiscard]] std::string_view name() const noexcept { return "agent"; }

 private:
  clk::adjusted_clock<clk::any_clock> c_;
};

int serve_one(tr::stream_transport& t, const clk::any_clock& base, clk::offset_drift od, bool pin, bool verbose,
              std::chrono::nanoseconds idle, std::stop_token stop, std::mutex& out_mu, std::uint32_t& started) {
  agent_clock c(base, od);
  pr::responder_options opt;
  opt.idle_timeout = idle;
  if (pin) {
    opt.on_series_start = sy::pin_on_series_start([&out_mu, verbose](std::uint32_t vcpu, std::error_code ec) {
      if (!verbose) return;
      std::lock_guard lk(out_mu);
      std::cerr << "tsync agent: could not pin to CPU " << vcpu << ": " << ec.message() << " (continuing unpinned)\n";
    });
  }
  auto r = pr::serve(t, c, opt, tr::deadline::max(), stop);
  std::lock_guard lk(out_mu);
  if (!r) {
    std::cerr << "tsync agent: connection ended with an error: " << r.error().message() << '\n';
    return 1;
  }
  started = r->series_started;
  if (verbose)
    std::cerr << "tsync agent: connection done: " << r->series_completed << " series, " << r->probes_answered
              << " probes answered\n";
  return 0;
}

int run_agent(const std::vector<std::string>& args) {
  const std::string cmd = "agent";
  tsync::cli::options o(args, {"no-pin", "verbose"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"transport", "clock", "connections", "no-pin", "verbose", "shift", "drift-ppb", "idle-timeout"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  auto spec_s = o.get("transport");
  if (!spec_s) return tsync::cli::usage_error(cmd, "--transport is required");
  std::string why;
  auto spec = parse_transport(*spec_s, why);
  if (!spec) return tsync::cli::usage_error(cmd, "bad --transport '" + *spec_s + "': " + why);
  const std::string clock_name = o.get("clock").value_or("mono_raw");
  auto base = clk::open_clock(clock_name, clk::kernel_clock_policy::trace_marker);
  if (!base) return tsync::cli::fail("agent: cannot use clock '" + clock_name + "': " + base.error().message());
  std::uint32_t connections = 0;
  if (auto c = o.get("connections")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*c);
    if (!v) return tsync::cli::usage_error(cmd, "bad --connections '" + *c + "'");
    connections = *v;
  }
  clk::offset_drift od{};
  if (auto s = o.get("shift")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v) return tsync::cli::usage_error(cmd, "bad --shift '" + *s + "' (nanoseconds)");
    od.offset_ns = *v;
  }
  if (auto s = o.get("drift-ppb")) {
    auto v = tsync::cli::parse_int<std::int64_t>(*s);
    if (!v || *v < -1'000'000'000 || *v > 1'000'000'000) return tsync::cli::usage_error(cmd, "bad --drift-ppb '" + *s + "'");
    od.drift_ppb = *v;
    od.anchor = base->now();
  }
  std::chrono::nanoseconds idle = 0ns;
  if (auto s = o.get("idle-timeout")) {
    auto d = parse_duration(*s);
    if (!d) return tsync::cli::usage_error(cmd, "bad --idle-timeout '" + *s + "'");
    idle = *d;
  }
  const bool pin = !o.has("no-pin");
  const bool verbose = o.has("verbose");
  install_signal_handlers();

  std::mutex out_mu;
  std::stop_source stop;
  std::atomic<int> failures{0};

  // Single-channel transports: serve until the peer is done, reopening when it
  // went away before any series (a FIFO reads as closed until the peer opens it).
  if (!spec->connection_oriented()) {
    const bool fifo = spec->k == transport_spec::kind::fifo;
    const std::string in = spec->path + ".in", out = spec->path + ".out";
    if (fifo) {
      for (const auto& p : {in, out}) {
        if (auto ec = tr::make_fifo(p)) return tsync::cli::fail("agent: cannot create FIFO " + p + ": " + ec.message());
      }
    }
    std::uint32_t served = 0;
    while (!g_interrupted.load() && (connections == 0 || served < connections)) {
      auto t = fifo ? tr::open_fifo_pair(in, out, tr::after(500ms)) : tr::open_chardev(spec->path);
      if (!t) {
        if (t.error() == tsync::make_error_code(tsync::errc::timed_out)) continue;
        return tsync::cli::fail("agent: cannot open " + spec->path + ": " + t.error().message());
      }
      std::uint32_t started = 0;
      if (serve_one(*t, *base, od, pin, verbose, idle, stop.get_token(), out_mu, started) != 0) ++failures;
      if (started > 0) ++served;
      if (!fifo && started == 0) std::this_thread::sleep_for(50ms);
    }
    return failures.load() == 0 ? 0 : 1;
  }

  // Connection-oriented transports: one thread per connection.
  std::variant<std::monostate, tr::unix_listener, tr::tcp_listener, tr::vsock_listener, tr::hybrid_vsock_acceptor> l;
  std::error_code lerr;
  switch (spec->k) {
    case transport_spec::kind::unix_socket: {
      auto x = tr::unix_listener::listen(spec->path);
      if (x) l = std::move(*x); else lerr = x.error();
      break;
    }
    case transport_spec::kind::tcp: {
      auto x = tr::tcp_listener::listen(spec->host, static_cast<std::uint16_t>(spec->port));
      if (x) l = std::move(*x); else lerr = x.error();
      break;
    }
    case transport_spec::kind::vsock: {
      auto x = tr::vsock_listener::listen(spec->port, spec->cid);
      if (x) l = std::move(*x); else lerr = x.error();
      break;
    }
    case transport_spec::kind::hybrid: {
      // Stands in for the VMM side of hybrid vsock (handshake then probes).
      auto x = tr::hybrid_vsock_acceptor::listen(spec->path);
      if (x) l = std::move(*x); else lerr = x.error();
      break;
    }
    default: break;
  }
  if (lerr) return tsync::cli::fail("agent: cannot listen on " + *spec_s + ": " + lerr.message());
  if (verbose) std::cerr << "tsync agent: listening on " << *spec_s << '\n';
  std::vector<std::jthread> workers;
  std::vector<std::unique_ptr<std::uint32_t>> started;
  std::uint32_t accepted = 0;
  while (!g_interrupted.load() && (connections == 0 || accepted < connections)) {
    const auto d = tr::after(200ms);
    tsync::expected<tr::stream_transport, std::error_code> t = tsync::unexpected(std::error_code{});
    std::visit(
        [&](auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, tr::hybrid_vsock_acceptor>) {
            auto a = x.accept(d);
            if (a) t = std::move(a->transport); else t = tsync::unexpected(a.error());
          } else if constexpr (!std::is_same_v<X, std::monostate>) {
            t = x.accept(d);
          }
        },
        l);
    if (!t) {
      if (t.error() == tsync::make_error_code(tsync::errc::timed_out)) continue;
      std::lock_guard lk(out_mu);
      std::cerr << "tsync agent: accept failed: " << t.error().message() << '\n';
      ++failures;
      continue;
    }
    ++accepted;
    started.push_back(std::make_unique<std::uint32_t>(0));
    auto* st = started.back().get();
    workers.emplace_back([&, st, tt = std::make_shared<tr::stream_transport>(std::move(*t))](std::stop_token) {
      if (serve_one(*tt, *base, od, pin, verbose, idle, stop.get_token(), out_mu, *st) != 0) ++failures;
    });
  }
  // Wait for the connections; an interrupt stops them.
  {
    std::jthread watcher([&](std::stop_token st) {
      while (!st.stop_requested()) {
        if (g_interrupted.load()) {
          stop.request_stop();
          return;
        }
        std::this_thread::sleep_for(100ms);
      }
    });
    for (auto& w : workers) w.join();
  }
  return failures.load() == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- sync

tsync::expected<tr::stream_transport, std::error_code> connect_with_retry(const transport_spec& s,
                                                                          tr::deadline until) {
  for (;;) {
    tsync::expected<tr::stream_transport, std::error_code> t = tsync::unexpected(std::error_code{});
    const auto d = std::min(until, tr::after(1s));
    switch (s.k) {
      case transport_spec::kind::unix_socket: t = tr::connect_unix(s.path, d); break;
      case transport_spec::kind::tcp: t = tr::connect_tcp(s.host, static_cast<std::uint16_t>(s.port), d); break;
      case transport_spec::kind::vsock: t = tr::connect_vsock(s.cid, s.port, d); break;
      case transport_spec::kind::hybrid: {
        auto h = tr::connect_hybrid_vsock(s.path, s.port, d);
        if (h) t = std::move(h->transport); else t = tsync::unexpected(h.error());
        break;
      }
      case transport_spec::kind::fifo: t = tr::open_fifo_pair(s.path + ".out", s.path + ".in", d); break;
      case transport_spec::kind::chardev: t = tr::open_chardev(s.path); break;
    }
    if (t || std::chrono::steady_clock::now() >= until || g_interrupted.load()) return t;
    const auto& ec = t.error();
    // The agent may not be listening yet: retry the errors that mean "not there yet".
    if (ec != std::errc::no_such_file_or_directory && ec != std::errc::connection_refused &&
        ec != tsync::make_error_code(tsync::errc::timed_out) && ec != std::errc::no_such_device_or_address)
      return t;
    std::this_thread::sleep_for(20ms);
  }
}

/// Write one vCPU's series estimates as an estimator model (the format
/// `tsync correct --model` and `tsync::estimate::model::from_json` read):
/// piecewise linear through the series' offsets, each with its hard interval.
bool write_vcpu_model(const std::string& path, const tsync::sync::vcpu_result& r, const std::string& est_name) {
  namespace est = tsync::estimate;
  std::vector<est::burst_estimate> bursts;
  bursts.reserve(r.table.size());
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    const auto& t = r.table[i];
    est::burst_estimate b;
    b.ref = t.guest_time;
    b.offset = t.offset;
    b.hard = t.bounds ? est::interval{t.offset + t.bounds->lo, t.offset + t.bounds->hi} : est::interval{t.offset, t.offset};
    b.burst = static_cast<std::uint32_t>(i);
    for (const auto& rec : r.series) {
      if (rec.table_index == i && rec.estimate) {
        b.stats.probes_used = rec.estimate->used;
        b.stats.probes_rejected = rec.estimate->rejected;
        b.stats.min_rtt = rec.estimate->min_rtt;
        b.stats.bursts = 1;
      }
    }
    bursts.push_back(b);
  }
  auto m = est::interpolate_bursts(std::move(bursts), est_name, est::fit_options{});
  if (!m) return false;
  std::ofstream out(path);
  out << m->to_json();
  return static_cast<bool>(out);
}

/// KVM protocol: read the VM's per-vCPU TSC parameters from debugfs and write
/// step-mode sync tables (`PREFIX.vcpuN.csv`: `time,offset,ratio,frac_bits`, one
/// sample from guest TSC 0; offset = −tsc-offset) that `tsync correct --mode step` reads.
int write_kvm_tables(const tsync::kvm::debugfs_query& q, const std::string& prefix, bool quiet) {
  auto vm = tsync::kvm::read_vm_detailed(q);
  if (!vm) return tsync::cli::fail("sync: KVM debugfs: " + vm.error().message());
  for (const auto& v : vm->vcpus) {
    const std::int64_t kvm_offset = v.tsc_offset();
    if (kvm_offset == std::numeric_limits<std::int64_t>::min())
      return tsync::cli::fail("sync: vCPU " + std::to_string(v.id) + ": tsc-offset -2^63 has no negation in int64");
    const std::string file = prefix + ".vcpu" + std::to_string(v.id) + ".csv";
    std::ofstream out(file);
    const tsync::sync_sample sample{0, -kvm_offset, v.params.ratio, v.params.frac_bits, std::nullopt};
    tsync::io::write_table_csv(out, std::span<const tsync::sync_sample>(&sample, 1),
                                    "tsync sync table of vCPU " + std::to_string(v.id) + " (KVM debugfs " +
                                        vm->ref.path + ", exact): host = ceil((guest + offset) * 2^frac_bits / "
                                        "ratio); use --mode step");
    if (!out) return tsync::cli::fail("sync: cannot write " + file);
    if (!quiet)
      std::cout << "vcpu " << v.id << ": tsc-offset " << kvm_offset << ", ratio " << v.params.ratio << "/2^"
                << static_cast<unsigned>(v.params.frac_bits) << " -> " << file << '\n';
  }
  return 0;
}

int run_sync(const std::vector<std::string>& args) {
  const std::string cmd = "sync";
  tsync::cli::options o(args, {"serial", "quiet"});
  if (!o.error().empty()) return tsync::cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"transport", "vcpus", "probes", "interval", "count", "duration", "estimator", "clock",
                          "output", "role", "serial", "quiet", "connect-timeout", "probe-timeout", "kvm-pid",
                          "kvm-fd", "kvm-root"}))
    return tsync::cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return tsync::cli::usage_error(cmd, "unexpected argument '" + o.positional()[0] + "'");
  auto spec_s = o.get("transport");
  if (!spec_s && !o.has("kvm-pid")) return tsync::cli::usage_error(cmd, "--transport (or --kvm-pid) is required");
  std::string why;
  std::optional<transport_spec> spec;
  if (spec_s) {
    spec = parse_transport(*spec_s, why);
    if (!spec) return tsync::cli::usage_error(cmd, "bad --transport '" + *spec_s + "': " + why);
  }
  auto vcpus = parse_vcpus(o.get("vcpus").value_or("1"));
  if (!vcpus) return tsync::cli::usage_error(cmd, "bad --vcpus (a count, or a comma-separated list of distinct ids)");
  sy::session_config cfg;
  if (auto p = o.get("probes")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*p);
    if (!v || *v == 0 || *v > pr::max_probes_per_series)
      return tsync::cli::usage_error(cmd, "bad --probes '" + *p + "' (1.." + std::to_string(pr::max_probes_per_series) + ")");
    cfg.probes = *v;
  }
  if (auto p = o.get("interval")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --interval '" + *p + "' (e.g. 500ms, 1s, 0)");
    cfg.interval = *d;
  }
  std::optional<std::uint32_t> count;
  std::optional<std::chrono::nanoseconds> duration;
  if (auto p = o.get("count")) {
    auto v = tsync::cli::parse_int<std::uint32_t>(*p);
    if (!v || *v < 2) return tsync::cli::usage_error(cmd, "bad --count '" + *p + "' (series per vCPU, at least 2)");
    count = *v;
  }
  if (auto p = o.get("duration")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --duration '" + *p + "'");
    duration = *d;
  }
  if (count && duration) return tsync::cli::usage_error(cmd, "give --count or --duration, not both");
  if (!count && !duration) count = 2;
  if (count && *count > 2 && cfg.interval.count() == 0)
    return tsync::cli::usage_error(cmd, "--count above 2 needs a non-zero --interval");
  const std::string est_name = o.get("estimator").value_or("split_envelope");
  auto est = sy::named_estimator(est_name);
  if (!est) {
    std::string avail;
    for (auto n : tsync::estimate::names()) avail += (avail.empty() ? "" : ", ") + std::string(n);
    return tsync::cli::usage_error(cmd, "unknown --estimator '" + est_name + "' (available: " + avail + ")");
  }
  cfg.estimator = *est;
  const std::string clock_name = o.get("clock").value_or("mono_raw");
  auto clock = clk::open_clock(clock_name, clk::kernel_clock_policy::trace_marker);
  if (!clock) return tsync::cli::fail("sync: cannot use clock '" + clock_name + "': " + clock.error().message());
  const std::string role = o.get("role").value_or("host");
  if (role != "host" && role != "guest") return tsync::cli::usage_error(cmd, "bad --role '" + role + "' (host or guest)");
  cfg.initiator_is_host = role == "host";
  std::chrono::nanoseconds connect_timeout = 10s;
  if (auto p = o.get("connect-timeout")) {
    auto d = parse_duration(*p);
    if (!d) return tsync::cli::usage_error(cmd, "bad --connect-timeout '" + *p + "'");
    connect_timeout = *d;
  }
  pr::series_config base;
  if (auto p = o.get("probe-timeout")) {
    auto d = parse_duration(*p);
    if (!d || d->count() <= 0) return tsync::cli::usage_error(cmd, "bad --probe-timeout '" + *p + "'");
    base.per_probe_timeout = *d;
  }
  const std::string prefix = o.get("output").value_or("tsync-sync");
  const bool quiet = o.has("quiet");
  install_signal_handlers();

  // Protocol choice, said out loud. KVM (exact, from debugfs) is considered
  // when a VM is named with --kvm-pid; otherwise the probe exchange runs.
  std::optional<tsync::kvm::debugfs_query> kvm_query;
  if (auto p = o.get("kvm-pid")) {
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
    kvm_query = q;
  }
  sy::protocol chosen = sy::protocol::probe;
  if (auto id = clk::parse_trace_clock(clock_name)) {
    sy::selection_input in;
    in.host_clock = in.guest_clock = *id;
    in.have_transport = spec.has_value();
    if (kvm_query) in.kvm_check = [&] { return sy::check_kvm_debugfs(*kvm_query); };
    auto sel = sy::select_protocol(in);
    for (const auto& d : sel.decisions) {
      if (!quiet)
        std::cout << "protocol " << sy::to_string(d.proto) << ": " << (d.chosen ? "chosen" : "refused") << " ("
                  << d.reason << ")\n";
      if (d.chosen) chosen = d.proto;
    }
  }
  if (chosen == sy::protocol::kvm && kvm_query) return write_kvm_tables(*kvm_query, prefix, quiet);
  if (!spec) return tsync::cli::fail("sync: KVM sync is not possible here (see above) and no --transport was given");

  // One connection per vCPU where the transport has connections, else one channel.
  const bool parallel = spec->connection_oriented() && !o.has("serial");
  const std::size_t nconn = parallel ? vcpus->size() : 1;
  std::vector<std::unique_ptr<tr::stream_transport>> conns;
  std::vector<std::unique_ptr<clk::any_clock>> clocks;
  const auto until = tr::after(connect_timeout);
  for (std::size_t i = 0; i < nconn; ++i) {
    auto t = connect_with_retry(*spec, until);
    if (!t) return tsync::cli::fail("sync: cannot connect to " + *spec_s + ": " + t.error().message());
    conns.push_back(std::make_unique<tr::stream_transport>(std::move(*t)));
    clocks.push_back(std::make_unique<clk::any_clock>(*clock));
  }
  std::vector<sy::channel> channels;
  if (parallel) {
    for (std::size_t i = 0; i < nconn; ++i)
      channels.push_back(sy::channel{{(*vcpus)[i]}, sy::make_series_runner(*conns[i], *clocks[i], base)});
  } else {
    channels.push_back(sy::channel{*vcpus, sy::make_series_runner(*conns[0], *clocks[0], base)});
  }
  if (count) cfg.max_rounds = *count - 1;
  auto s = sy::make_session(std::move(channels), cfg);
  if (!s) return tsync::cli::fail("sync: " + s.error().message());
  auto ready = (*s)->start();
  if (!ready) {
    for (auto& c : conns) (void)pr::send_bye(*c, tr::after(200ms));
    return tsync::cli::fail("sync: the first series failed: " + ready.error().message());
  }
  if (!quiet) std::cout << "ready: " << ready->synchronized << " of " << ready->vcpus << " vCPUs synchronized\n";
  if (count) {
    while (!g_interrupted.load() && (*s)->running() && !(*s)->wait_for_rounds(*count - 1, 100ms)) {
    }
  } else {
    const auto end = std::chrono::steady_clock::now() + *duration;
    while (!g_interrupted.load() && (*s)->running() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(50ms, end - std::chrono::steady_clock::now()));
  }
  (*s)->stop();
  for (auto& c : conns) (void)pr::send_bye(*c, tr::after(500ms));

  // Output: one sync table per vCPU (time,offset), a series log, a model summary.
  const auto results = (*s)->results();
  int rc = 0;
  std::ofstream series(prefix + ".series.csv");
  series << "vcpu,series_id,round,final,probes_requested,probes_received,error,at,offset,lo,hi,min_rtt,median_rtt,duration_ns\n";
  std::ofstream model(prefix + ".session.json");
  model << "{\n  \"format\": \"tsync-sync-tables\",\n  \"version\": 1,\n  \"clock\": \"" << clock_name
        << "\",\n  \"estimator\": \"" << est_name << "\",\n  \"offset\": \"host - guest (ns) at guest time\",\n  \"vcpus\": [";
  bool first_v = true;
  for (const auto& r : results) {
    const std::string file = prefix + ".vcpu" + std::to_string(r.vcpu) + ".csv";
    std::ofstream out(file);
    tsync::io::write_table_csv(out, r.table,
                                    "tsync sync table of vCPU " + std::to_string(r.vcpu) + " (clock " + clock_name +
                                        ", estimator " + est_name + "): host = guest + offset",
                                    /*with_scaling=*/false);
    for (const auto& rec : r.series) {
      series << rec.vcpu << ',' << rec.series_id << ',' << rec.round << ',' << (rec.final ? 1 : 0) << ','
             << rec.probes_requested << ',' << rec.probes_received << ',' << '"'
             << (rec.error ? rec.error.message() : "") << '"';
      if (rec.estimate) {
        const auto& e = *rec.estimate;
        series << ',' << e.at << ',' << e.offset << ',' << e.lo << ',' << e.hi << ',' << e.min_rtt << ','
               << e.median_rtt;
      } else {
        series << ",,,,,,";
      }
      series << ',' << rec.duration.count() << '\n';
    }
    model << (first_v ? "\n" : ",\n") << "    {\"vcpu\": " << r.vcpu << ", \"table\": \"" << file
          << "\", \"peer_lost\": " << (r.peer_lost ? "true" : "false") << ", \"samples\": [";
    first_v = false;
    for (std::size_t i = 0; i < r.table.size(); ++i) {
      const auto& t = r.table[i];
      model << (i ? ", " : "") << "{\"time\": " << t.guest_time << ", \"offset\": " << t.offset;
      if (t.bounds) model << ", \"lo\": " << t.bounds->lo << ", \"hi\": " << t.bounds->hi;
      model << '}';
    }
    model << "]}";
    if (!r.table.empty() && !write_vcpu_model(prefix + ".vcpu" + std::to_string(r.vcpu) + ".model.json", r, est_name)) {
      std::cerr << "tsync sync: cannot write the model of vCPU " << r.vcpu << '\n';
      rc = 1;
    }
    if (!out) {
      std::cerr << "tsync sync: cannot write " << file << '\n';
      rc = 1;
    }
    std::size_t failed = 0;
    for (const auto& rec : r.series) failed += rec.ok() ? 0u : 1u;
    if (!quiet) {
      std::cout << "vcpu " << r.vcpu << ": " << r.table.size() << " samples from " << r.series.size() << " series ("
                << failed << " failed)";
      if (!r.table.empty()) std::cout << ", last offset " << r.table.back().offset << " ns";
      if (r.peer_lost) std::cout << ", peer lost: " << r.end_error.message();
      std::cout << " -> " << file << '\n';
    }
    if (r.table.empty()) rc = 1;
    if (r.peer_lost) {
      std::cerr << "tsync sync: vCPU " << r.vcpu << ": the peer went away: " << r.end_error.message()
                << " (samples so far kept)\n";
      rc = 1;
    }
  }
  model << "\n  ]\n}\n";
  if (!series || !model) {
    std::cerr << "tsync sync: cannot write " << prefix << ".series.csv / .session.json\n";
    rc = 1;
  }
  return rc;
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
                "Each connection is served in its own thread, pinned to the vCPU a series is for\n"
                "(a failure to pin is reported with --verbose and the series runs unpinned).\n\n") +
        transport_help +
        "  --clock NAME         mono_raw (default), mono, boot, tai, realtime, x86-tsc; local, global,\n"
        "                       perf, counter, uptime through a tracefs instance (root)\n"
        "  --connections N      exit after N connections (0: until SIGINT/SIGTERM; default 0)\n"
        "  --no-pin             do not pin to the series' vCPU\n"
        "  --idle-timeout DUR   end a connection silent for this long (e.g. 30s; default: never)\n"
        "  --shift NS           add NS to every stamp (testing: a known offset)\n"
        "  --drift-ppb PPB      and a known drift, in parts per billion\n"
        "  --verbose            report connections and pinning on stderr\n"
        "For a hybrid SPEC the agent stands in for the VMM's Unix socket (handshake, then probes);\n"
        "inside a real Firecracker / Cloud Hypervisor guest use vsock:any:PORT.",
    run_agent}};

const tsync::cli::command_registrar sync_cmd{{
    "sync",
    "run a sync session against an agent and write per-vCPU sync tables",
    std::string("--transport SPEC [options]  |  --clock x86-tsc --kvm-pid PID [--kvm-fd FD] [options]\n\n"
                "Runs probe series against `tsync agent`: a first one per vCPU, then one every\n"
                "--interval, and a last one at the end. Writes PREFIX.vcpuN.csv (time,offset: the\n"
                "table `tsync correct --table` reads; host = guest + offset), PREFIX.series.csv (every\n"
                "series with its estimate, hard interval, round trips and error), PREFIX.vcpuN.model.json\n"
                "(the estimators' model format, piecewise linear through the series estimates with\n"
                "their hard intervals: 'tsync correct --model' reads it) and PREFIX.session.json (a summary).\n"
                "Exit status 1 when a vCPU got no sample or the peer went away (tables are still written).\n\n") +
        transport_help +
        "  --vcpus N|LIST       4 (vCPUs 0..3) or 0,2,5 (default 1)\n"
        "  --probes N           probes per series (default 339)\n"
        "  --interval DUR       pause between series (default 1s; 0: first and last only)\n"
        "  --count N            series per vCPU, first and last included (default 2)\n"
        "  --duration DUR       or: keep sampling this long\n"
        "  --estimator NAME     per-series estimator: split_envelope (default: per-direction minima,\n"
        "                       error O(1/N)), fastest_response (trace-cmd's), histogram_peak,\n"
        "                       median, or any name of 'tsync estimate --list'\n"
        "  --clock NAME         mono_raw (default), mono, boot, tai, realtime, x86-tsc; local, global,\n"
        "                       perf, counter, uptime through a tracefs instance (root)\n"
        "  --role host|guest    which side this command runs on (default host)\n"
        "  --serial             one connection for all vCPUs (default: one per vCPU)\n"
        "  --output PREFIX      output file prefix (default tsync-sync)\n"
        "  --connect-timeout D  wait this long for the agent (default 10s)\n"
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
