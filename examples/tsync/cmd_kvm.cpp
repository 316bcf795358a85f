// `tsync kvm ...`: KVM debugfs parameters and exact guest/host TSC conversion.
#include <cstdint>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "tsync/io/json.hpp"
#include "tsync/kvm.hpp"
#include "tsync/kvm/debugfs.hpp"

namespace {

using namespace tsync;
using namespace tsync::kvm;

// JSON string literals through the library's one JSON writer.
std::string json_string(std::string_view s) {
  std::string o;
  tsync::io::json::write_string(o, s);
  return o;
}

// -(int64) without overflow, as decimal text (for host - guest = -tsc-offset).
std::string negated(std::int64_t v) {
  if (v == INT64_MIN) return "9223372036854775808";
  return std::to_string(-v);
}

const char* const params_source_help =
    "Parameters (one level):\n"
    "  --offset O       KVM tsc-offset as debugfs prints it (signed decimal; the unsigned\n"
    "                   form of the kvm_write_tsc_offset tracepoint is accepted too)\n"
    "  --ratio R        tsc-scaling-ratio (unsigned decimal); give with --frac-bits\n"
    "  --frac-bits F    tsc-scaling-ratio-frac-bits (48 Intel, 32 AMD); without both the\n"
    "                   guest is unscaled\n"
    "or read them from debugfs:\n"
    "  --pid PID        VMM process id (directory <root>/<PID>-<FD>)\n"
    "  --fd FD          VM file descriptor, needed when the process has several VMs\n"
    "  --root DIR       debugfs KVM directory (default /sys/kernel/debug/kvm)\n"
    "  --vcpu N         vCPU id (directory vcpuN); may be omitted when all vCPUs share\n"
    "                   the same parameters\n"
    "Nested guests (L2 inside the L1 guest above):\n"
    "  --nested         convert L2 timestamps: compose the L1 parameters above with the\n"
    "                   L2 parameters below exactly as KVM does (m02 = m01*m12 >> f,\n"
    "                   o02 = o01*m12 >> f rounded toward zero, + o12)\n"
    "  --offset2 O2     the offset L1 programs for L2 (signed decimal)\n"
    "  --ratio2 R2      the ratio L1 programs for L2 (default: unscaled)\n"
    "  --frac-bits2 F2  frac bits of R2; must equal L1's when L1 is scaled\n"
    "  Note: while a vCPU runs L2, debugfs already shows the combined values; use\n"
    "  --nested only with L1's own values (e.g. from the kvm_write_tsc_offset tracepoint).\n";

const std::vector<std::string> param_options = {"offset", "ratio", "frac-bits", "pid", "fd", "root", "vcpu",
                                                "nested", "offset2", "ratio2", "frac-bits2"};

// An offset: signed decimal, or the unsigned (tracepoint) form for values >= 2^63.
std::optional<std::uint64_t> parse_offset(const std::string& s) {
  if (auto v = parse_decimal_i64(s)) return static_cast<std::uint64_t>(*v);
  if (auto u = parse_decimal_u64(s)) return *u;
  return std::nullopt;
}

struct param_result {
  std::optional<tsc_params> params;
  int rc = 0;
};

// Parameters of one level from --offset/--ratio/--frac-bits (with suffix).
param_result explicit_params(const cli::options& o, const std::string& cmd, const std::string& sfx) {
  param_result r;
  auto off = o.get("offset" + sfx);
  if (!off) {
    r.rc = cli::usage_error(cmd, "--offset" + sfx + " is required");
    return r;
  }
  auto ov = parse_offset(*off);
  if (!ov) {
    r.rc = cli::usage_error(cmd, "--offset" + sfx + " is not a 64-bit decimal number: '" + *off + "'");
    return r;
  }
  tsc_params p{*ov, 1, 0};
  auto ratio = o.get("ratio" + sfx);
  auto frac = o.get("frac-bits" + sfx);
  if (ratio.has_value() != frac.has_value() && sfx.empty()) {
    r.rc = cli::usage_error(cmd, "--ratio and --frac-bits go together");
    return r;
  }
  if (frac) {
    auto f = parse_decimal_u64(*frac);
    if (!f || *f > 63) {
      r.rc = cli::usage_error(cmd, "--frac-bits" + sfx + " must be a decimal number 0..63: '" + *frac + "'");
      return r;
    }
    p.frac_bits = static_cast<std::uint8_t>(*f);
    p.ratio = std::uint64_t{1} << p.frac_bits;
  }
  if (ratio) {
    auto rv = parse_decimal_u64(*ratio);
    if (!rv || *rv == 0) {
      r.rc = cli::usage_error(cmd, "--ratio" + sfx + " must be a positive unsigned decimal number: '" + *ratio + "'");
      return r;
    }
    p.ratio = *rv;
  }
  r.params = p;
  return r;
}

// Parameters from debugfs.
param_result debugfs_params(const cli::options& o, const std::string& cmd) {
  param_result r;
  auto pid = parse_decimal_u64(o.get("pid").value_or(""));
  if (!pid || *pid > 0x7fffffffu) {
    r.rc = cli::usage_error(cmd, "--pid must be a process id");
    return r;
  }
  debugfs_query q;
  q.pid = static_cast<std::int64_t>(*pid);
  if (auto fd = o.get("fd")) {
    auto f = parse_decimal_u64(*fd);
    if (!f || *f > 0x7fffffffu) {
      r.rc = cli::usage_error(cmd, "--fd must be a file descriptor number");
      return r;
    }
    q.fd = static_cast<std::int64_t>(*f);
  }
  if (auto root = o.get("root")) q.root = *root;
  auto vm = read_vm_detailed(q);
  if (!vm) {
    r.rc = cli::fail(vm.error().what());
    return r;
  }
  if (vm->vcpus.empty()) {
    r.rc = cli::fail(vm->ref.path + ": the VM has no vCPU directories");
    return r;
  }
  if (auto v = o.get("vcpu")) {
    auto id = parse_decimal_u64(*v);
    const vcpu_info* found = id && *id <= 0xffffffffu ? vm->find(static_cast<std::uint32_t>(*id)) : nullptr;
    if (found == nullptr) {
      r.rc = cli::fail(vm->ref.path + ": no vCPU with id '" + *v + "'");
      return r;
    }
    r.params = found->params;
    return r;
  }
  for (auto& c : vm->vcpus) {
    if (!(c.params == vm->vcpus.front().params)) {
      r.rc = cli::fail(vm->ref.path + ": the vCPUs have different TSC parameters; choose one with --vcpu");
      return r;
    }
  }
  r.params = vm->vcpus.front().params;
  return r;
}

// All parameter options resolved to the parameters of the level whose stamps we convert.
param_result resolve_params(const cli::options& o, const std::string& cmd) {
  const bool from_debugfs = o.has("pid");
  if (from_debugfs && (o.has("offset") || o.has("ratio") || o.has("frac-bits")))
    return {std::nullopt, cli::usage_error(cmd, "give either --offset/--ratio/--frac-bits or --pid, not both")};
  if (!from_debugfs && (o.has("fd") || o.has("root") || o.has("vcpu")))
    return {std::nullopt, cli::usage_error(cmd, "--fd, --root and --vcpu need --pid")};
  param_result l1 = from_debugfs ? debugfs_params(o, cmd) : explicit_params(o, cmd, "");
  if (!l1.params) return l1;
  if (auto v = validate(*l1.params); !v)
    return {std::nullopt, cli::usage_error(cmd, std::string("invalid parameters: ") + to_string(v.error()))};
  const bool nested = o.has("nested");
  if (!nested) {
    if (o.has("offset2") || o.has("ratio2") || o.has("frac-bits2"))
      return {std::nullopt, cli::usage_error(cmd, "--offset2, --ratio2 and --frac-bits2 need --nested")};
    return l1;
  }
  param_result l2 = explicit_params(o, cmd, "2");
  if (!l2.params) return l2;
  tsc_params a = *l1.params, b = *l2.params;
  const bool b_has_frac = o.has("frac-bits2");
  if (!b_has_frac) {
    // L2 in L1's format: an unscaled L2 is 1.0 there; a ratio needs frac bits.
    if (o.has("ratio2") && a.is_unscaled() && a.frac_bits == 0)
      return {std::nullopt, cli::usage_error(cmd, "--ratio2 needs --frac-bits2 when L1 is unscaled")};
    b.frac_bits = a.frac_bits;
    if (!o.has("ratio2")) b.ratio = std::uint64_t{1} << b.frac_bits;
  }
  if (a.frac_bits != b.frac_bits) {
    if (a.is_unscaled()) a = tsc_params{a.offset, std::uint64_t{1} << b.frac_bits, b.frac_bits};
    else if (b.is_unscaled()) b = tsc_params{b.offset, std::uint64_t{1} << a.frac_bits, a.frac_bits};
    else return {std::nullopt, cli::usage_error(cmd, "the two levels must use the same frac bits")};
  }
  auto c = compose_nested(a, b);
  if (!c) return {std::nullopt, cli::usage_error(cmd, std::string("cannot compose the levels: ") + to_string(c.error()))};
  return {*c, 0};
}

int run_convert(const std::vector<std::string>& args, bool to_host_dir) {
  const std::string cmd = to_host_dir ? "kvm to-host" : "kvm to-guest";
  cli::options o(args, {"nested", "bucket"});
  if (!o.error().empty()) return cli::usage_error(cmd, o.error());
  auto known = param_options;
  if (to_host_dir) known.push_back("bucket");
  if (auto u = o.unknown(known)) return cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return cli::usage_error(cmd, "unexpected argument '" + o.positional().front() + "'");
  auto pr = resolve_params(o, cmd);
  if (!pr.params) return pr.rc;
  const tsc_params p = *pr.params;
  const bool bucket = o.has("bucket");
  auto plan = inverse_plan::make(p);
  if (!plan) return cli::usage_error(cmd, std::string("invalid parameters: ") + to_string(plan.error()));
  std::ostringstream out;
  std::size_t pending = 0;
  int rc = cli::for_each_number_line<std::uint64_t>(std::cin, cmd, [&](std::uint64_t v, std::size_t line) {
    if (!to_host_dir) {
      out << to_guest(v, p) << '\n';
    } else {
      auto h = (*plan)(v);
      if (!h) {
        std::cerr << "tsync " << cmd << ": line " << line << ": guest TSC " << v
                  << " has no 64-bit host value with these parameters (wrong offset epoch?)\n";
        return 1;
      }
      out << *h;
      if (bucket) out << ' ' << *to_host_last(v, p);
      out << '\n';
    }
    if (++pending == 4096) {
      std::cout << out.str();
      out.str({});
      pending = 0;
    }
    return 0;
  });
  std::cout << out.str() << std::flush;
  return rc;
}

void print_vcpu_json(std::ostream& os, const vcpu_info& v) {
  os << "    {\"id\": " << v.id << ", \"tsc_offset\": " << v.tsc_offset() << ", \"tsc_offset_u64\": " << v.params.offset
     << ", \"scaling_files\": " << (v.has_scaling_files ? "true" : "false") << ", \"ratio\": " << v.params.ratio
     << ", \"frac_bits\": " << int(v.params.frac_bits) << ", \"unscaled\": " << (v.params.is_unscaled() ? "true" : "false")
     << ", \"host_minus_guest\": " << (v.params.is_unscaled() ? negated(v.tsc_offset()) : std::string("null"))
     << ", \"thread_pid\": " << (v.thread_pid ? std::to_string(*v.thread_pid) : std::string("null"))
     << ", \"guest_mode\": " << (v.guest_mode ? (*v.guest_mode ? "true" : "false") : "null") << "}";
}

int run_params(const std::vector<std::string>& args) {
  const std::string cmd = "kvm params";
  cli::options o(args, {});
  if (!o.error().empty()) return cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"pid", "fd", "root"})) return cli::usage_error(cmd, "unknown option --" + *u);
  if (!o.positional().empty()) return cli::usage_error(cmd, "unexpected argument '" + o.positional().front() + "'");
  if (!o.has("pid")) return cli::usage_error(cmd, "--pid is required");
  auto pid = parse_decimal_u64(o.get("pid").value_or(""));
  if (!pid || *pid > 0x7fffffffu) return cli::usage_error(cmd, "--pid must be a process id");
  debugfs_query q;
  q.pid = static_cast<std::int64_t>(*pid);
  if (auto fd = o.get("fd")) {
    auto f = parse_decimal_u64(*fd);
    if (!f || *f > 0x7fffffffu) return cli::usage_error(cmd, "--fd must be a file descriptor number");
    q.fd = static_cast<std::int64_t>(*f);
  }
  if (auto root = o.get("root")) q.root = *root;
  auto vm = read_vm_detailed(q);
  if (!vm) return cli::fail(vm.error().what());
  std::cout << "{\n  \"pid\": " << vm->ref.pid << ",\n  \"fd\": " << vm->ref.fd << ",\n  \"path\": "
            << json_string(vm->ref.path) << ",\n  \"vcpus\": [";
  for (std::size_t i = 0; i < vm->vcpus.size(); ++i) {
    std::cout << (i ? ",\n" : "\n");
    print_vcpu_json(std::cout, vm->vcpus[i]);
  }
  std::cout << (vm->vcpus.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return 0;
}

int run_list(const std::vector<std::string>& args) {
  const std::string cmd = "kvm list";
  cli::options o(args, {});
  if (!o.error().empty()) return cli::usage_error(cmd, o.error());
  if (auto u = o.unknown({"root"})) return cli::usage_error(cmd, "unknown option --" + *u);
  const std::string root = o.get("root").value_or(std::string(default_debugfs_root));
  auto vms = list_vms_detailed(root);
  if (!vms) return cli::fail(vms.error().what());
  std::cout << "[";
  for (std::size_t i = 0; i < vms->size(); ++i) {
    const auto& v = (*vms)[i];
    std::cout << (i ? ",\n " : "\n ") << "{\"pid\": " << v.pid << ", \"fd\": " << v.fd << ", \"path\": "
              << json_string(v.path) << "}";
  }
  std::cout << (vms->empty() ? "]\n" : "\n]\n");
  return 0;
}

const cli::command_registrar reg_list{cli::command{
    "kvm list", "list the VMs in KVM's debugfs directory (JSON)",
    "[--root DIR]\n\n"
    "Lists every <pid>-<fd> VM directory under DIR (default /sys/kernel/debug/kvm) as a JSON\n"
    "array of {pid, fd, path}, sorted by pid and fd. Needs debugfs mounted and readable\n"
    "(usually root).\n",
    run_list}};

const cli::command_registrar reg_params{cli::command{
    "kvm params", "print each vCPU's TSC offset and scaling from debugfs (JSON)",
    "--pid PID [--fd FD] [--root DIR]\n\n"
    "Reads <root>/<PID>-<FD>/vcpu<N>/{tsc-offset, tsc-scaling-ratio,\n"
    "tsc-scaling-ratio-frac-bits, pid, guest_mode} and prints one JSON object with the\n"
    "VM's pid, fd, path and its vCPUs sorted by id (ids can be sparse). Per vCPU:\n"
    "  tsc_offset        signed, as debugfs prints it (guest = scaled host + offset)\n"
    "  tsc_offset_u64    the same bits unsigned (the tracepoint's form)\n"
    "  scaling_files     whether the ratio files exist (TSC scaling supported)\n"
    "  ratio, frac_bits  the scaling ratio (1 and 0 without scaling files)\n"
    "  unscaled          ratio == 2^frac_bits\n"
    "  host_minus_guest  -tsc_offset when unscaled (tsync's sync-table offset), else null\n"
    "  thread_pid        the vCPU thread (0 before it first ran), null without the file\n"
    "  guest_mode        true while the vCPU runs a nested guest: the values are then the\n"
    "                    combined L2 values, not L1's; null without the file\n"
    "--fd is needed when the process has several VMs. --root defaults to\n"
    "/sys/kernel/debug/kvm. Errors (exit 1): no such VM, several VMs and no --fd,\n"
    "permission denied, malformed or out-of-range numbers (the file is named), one scaling\n"
    "file without the other.\n\n"
    "example: tsync kvm params --pid $(pidof qemu-system-x86_64)\n",
    run_params}};

const cli::command_registrar reg_to_host{cli::command{
    "kvm to-host", "convert guest TSC values (stdin) to host TSC, exactly",
    std::string("[parameters] [--bucket] < guest-tsc-values\n\n"
                "Reads unsigned decimal guest TSC values, one per line (blank lines and lines\n"
                "starting with '#' are skipped), and prints the host TSC of each:\n"
                "  host = ceil(((guest - offset) mod 2^64) * 2^frac_bits / ratio)\n"
                "the smallest host tick whose guest value is `guest`; it is exact when the guest\n"
                "TSC is at least as fast as the host's, and otherwise at most\n"
                "ceil(2^frac_bits / ratio) - 1 ticks before the true host tick.\n"
                "  --bucket         print two numbers per line: the first and the last host tick\n"
                "                   that map to the guest value\n") +
        params_source_help +
        "A malformed line, or a value with no 64-bit host tick, stops with its line number\n"
        "and exit status 1. Usage errors exit with 2.\n\n"
        "examples:\n"
        "  echo 1234567890123 | tsync kvm to-host --offset -27950965013436847\n"
        "  echo 82304553443 | tsync kvm to-host --offset -18633982886952159 \\\n"
        "      --ratio 187650047023786 --frac-bits 48\n"
        "  tsync kvm to-host --pid 4242 --vcpu 0 < guest-stamps.txt\n"
        "  tsync kvm to-host --offset O1 --ratio R1 --frac-bits 48 --nested --offset2 O2 \\\n"
        "      --ratio2 R2 < l2-stamps.txt\n",
    [](const std::vector<std::string>& a) { return run_convert(a, true); }}};

const cli::command_registrar reg_to_guest{cli::command{
    "kvm to-guest", "convert host TSC values (stdin) to guest TSC, as KVM does",
    std::string("[parameters] < host-tsc-values\n\n"
                "Reads unsigned decimal host TSC values, one per line (blank lines and lines\n"
                "starting with '#' are skipped), and prints what the guest reads at each:\n"
                "  guest = ((host * ratio) >> frac_bits) + offset    (mod 2^64, 128-bit product)\n") +
        params_source_help +
        "A malformed line stops with its line number and exit status 1.\n\n"
        "example:\n"
        "  echo 27951088470225859 | tsync kvm to-guest --offset -18633982886952159 \\\n"
        "      --ratio 187650047023786 --frac-bits 48\n",
    [](const std::vector<std::string>& a) { return run_convert(a, false); }}};

}  // namespace
