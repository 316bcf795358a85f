#pragma once
/// \file
/// The KVM protocol's output: a VM's per-vCPU TSC parameters read from debugfs
/// as step-mode sync tables (one sample from guest TSC 0, offset = −tsc-offset,
/// with the scaling ratio), the tables `tsync correct --mode step` reads.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/kvm/debugfs.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// One vCPU's step table.
struct kvm_vcpu_table {
  std::uint32_t vcpu = 0;
  std::int64_t tsc_offset = 0;  ///< as debugfs prints it
  sync_sample sample{};         ///< host = ceil((guest + offset) * 2^frac_bits / ratio)
};

/// Deprecated (one release): `kvm_tables` returns a `tsync::text_error`
/// naming the vCPU's debugfs file (`field`).
using kvm_tables_error [[deprecated("use tsync::text_error")]] = text_error;

/// The step table of every vCPU of `vm`. A tsc-offset of −2^63 has no negation
/// in int64: `errc::number_out_of_range` with the vCPU's `tsc-offset` file as
/// `field` and a message naming the file and the vCPU.
[[nodiscard]] inline expected<std::vector<kvm_vcpu_table>, text_error> kvm_tables(const kvm::vm_info& vm) {
  std::vector<kvm_vcpu_table> out;
  out.reserve(vm.vcpus.size());
  for (const auto& v : vm.vcpus) {
    const std::int64_t off = v.tsc_offset();
    if (off == std::numeric_limits<std::int64_t>::min()) {
      const std::string file = vm.ref.path + "/vcpu" + std::to_string(v.id) + "/tsc-offset";
      return unexpected(text_error{errc::number_out_of_range, 0, file,
                                   file + ": vCPU " + std::to_string(v.id) + ": tsc-offset -2^63 has no negation in int64"});
    }
    out.push_back(kvm_vcpu_table{v.id, off, sync_sample{at_ns<guest>(0), guest_to_host(-off), v.params.ratio, v.params.frac_bits, std::nullopt}});
  }
  return out;
}

}  // namespace tsync::sync
