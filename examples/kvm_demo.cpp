// KVM conversion demo: read a VM's TSC parameters from a (fake) debugfs tree,
// convert guest trace stamps to host TSC and nanoseconds, and check every
// result against values computed independently. Exits non-zero on a mismatch.
//
// With a real VM: pass the debugfs root and the VMM pid as arguments, e.g.
//   example_kvm_demo /sys/kernel/debug/kvm 4242
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tsync/core/int128.hpp"
#include "tsync/kvm.hpp"
#include "tsync/kvm/debugfs.hpp"

namespace {

using namespace tsync;
using namespace tsync::kvm;

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%-64s %s\n", what, ok ? "ok" : "MISMATCH");
  if (!ok) ++failures;
}

// Build <root>/4242-12/vcpu{0,2}/ as an Intel host at 2,999,999 kHz running a
// 2.0 GHz guest created at host TSC 27950965013436847 would show it.
std::string make_fake_tree() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tsync_kvm_demo_XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return {};
  for (int id : {0, 2}) {
    const auto d = std::filesystem::path(tmpl) / "4242-12" / ("vcpu" + std::to_string(id));
    std::filesystem::create_directories(d);
    std::ofstream(d / "tsc-offset") << "-18633982886952159\n";
    std::ofstream(d / "tsc-scaling-ratio") << "187650047023786\n";
    std::ofstream(d / "tsc-scaling-ratio-frac-bits") << "48\n";
    std::ofstream(d / "pid") << 4300 + id << "\n";
  }
  return tmpl;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3) {
    // Real VM: print what debugfs says and exit.
    auto pid = parse_decimal_i64(argv[2]);
    if (!pid) return std::fprintf(stderr, "bad pid\n"), 2;
    auto vm = read_vm_detailed(debugfs_query{*pid, std::nullopt, argv[1]});
    if (!vm) return std::fprintf(stderr, "%s\n", vm.error().what().c_str()), 1;
    for (auto& v : vm->vcpus)
      std::printf("vcpu%u offset %lld ratio %llu frac %u\n", v.id, static_cast<long long>(v.tsc_offset()),
                  static_cast<unsigned long long>(v.params.ratio), unsigned{v.params.frac_bits});
    return 0;
  }

  const std::string root = make_fake_tree();
  if (root.empty()) return std::fprintf(stderr, "cannot create a temporary directory\n"), 1;
  auto vm = read_vm_detailed(debugfs_query{4242, std::nullopt, root});
  std::filesystem::remove_all(root);
  if (!vm) return std::fprintf(stderr, "%s\n", vm.error().what().c_str()), 1;
  check(vm->vcpus.size() == 2 && vm->vcpus[0].id == 0 && vm->vcpus[1].id == 2, "debugfs: two vCPUs with sparse ids 0 and 2");
  const tsc_params p = vm->vcpus[0].params;
  check(p.signed_offset() == -18633982886952159LL && p.ratio == 187650047023786ULL && p.frac_bits == 48,
        "debugfs: offset, ratio and frac bits");

  // The parameters KVM would have chosen: ratio from the frequencies, offset at creation.
  check(ratio_from_khz(2000000, 2999999, intel).value_or(0) == p.ratio, "ratio = floor(2^48 * 2000000 / 2999999)");
  check(params_for_target(27950965013436847ULL, 0, p.ratio, 48) == p, "offset = -(scaled host TSC at creation)");

  // Guest stamps of events at known host ticks, converted back in one batch.
  const std::vector<std::uint64_t> truth = {27950965013436847ULL, 27951088470225859ULL, 27951088470225860ULL,
                                            27960000000000000ULL};
  std::vector<std::uint64_t> guest(truth.size()), back(truth.size());
  bool ok = to_guest(truth, guest, p).has_value();
  ok = ok && guest[1] == 82304553443ULL;  // T9
  check(ok, "to_guest: T9 guest stamp 82304553443");
  ok = to_host(guest, back, p).has_value();
  for (std::size_t i = 0; i < truth.size(); ++i) {
    // The guest runs slower (2/3): up to ceil(3/2) - 1 = 1 host tick is lost.
    ok = ok && back[i] <= truth[i] && truth[i] - back[i] <= inverse_error_bound(p) && to_guest(back[i], p) == guest[i];
    ok = ok && back[i] == to_host(guest[i], p).value_or(0);
  }
  check(ok, "to_host batch: within the 1-tick bucket and equal to the scalar");
  check(back[1] == 27951088470225859ULL, "to_host: T10 exact host tick 27951088470225859");

  // What trace-cmd computes for the same stamp (forward map on guest time, 64-bit product).
  // Its 64-bit arithmetic wraps; wrapping_* reproduces that on purpose.
  const std::uint64_t tc = tsync::wrapping_sub(tsync::wrapping_mul(guest[1], p.ratio) >> 48, p.offset);
  std::printf("trace-cmd's scaled formula would give %llu (off by %lld ticks)\n", static_cast<unsigned long long>(tc),
              static_cast<long long>(tsync::wrapping_sub(tc, truth[1])));
  check(tc != truth[1], "trace-cmd's formula is wrong with scaling (T12)");

  // Host TSC -> host ns with the kernel's cyc2ns for 2,999,999 kHz.
  auto ms = cyc2ns_from_khz(2999999);
  check(ms.has_value() && ms->mult == 715828121u && ms->shift == 31u, "cyc2ns 2999999 kHz: mult 715828121 shift 31");
  const perf_time_params clk = perf_params(ms.value_or(mult_shift{1, 0}));
  const std::uint64_t ns = tsc_to_ns(back[1], clk);
  check(ns == 9317032592159947ULL, "host ns of the event: 9317032592159947 (T16)");
  auto c = ns_to_tsc_ceil(ns, clk);
  check(c.has_value() && tsc_to_ns(*c, clk) == ns && back[1] - *c <= ns_round_trip_bound(clk),
        "ns -> cycles (ceil) round-trips");

  // Nested: an L2 guest at 1 GHz inside the 2 GHz L1, created one hour later (T14).
  const std::uint64_t h2 = 27950965013436847ULL + 2999999000ULL * 3600;
  const tsc_params l2 = params_for_target(to_guest(h2, p), 0, 140737558724107ULL, 48);
  auto l02 = compose_nested(p, l2);
  check(l02.has_value() && static_cast<std::int64_t>(to_guest(h2, *l02)) == -95,
        "nested: the hardware L2 TSC at L2 creation is -95 (T14)");

  std::printf("%s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
