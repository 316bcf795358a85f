#pragma once
/// \file
/// The protocol registry: which synchronization protocol a session uses for a
/// given (host clock, guest clock) pairing, and why every other one was refused.
///
/// Two protocols are known:
/// * `kvm`: exact. The host reads KVM's per-vCPU `tsc-offset` (and scaling) from
///   debugfs. It applies only when both sides trace in x86-tsc, and only when
///   debugfs is really readable for the VM: the check reads the files instead of
///   assuming (trace-cmd advertised kvm when `opendir` failed, won the
///   negotiation, then failed and went on unsynchronized).
/// * `probe`: probe exchange (PTP-like) over a transport. It needs a userspace
///   source for both clocks in a common unit (see `tsync::clock::check_pairing`)
///   and a transport to the peer.
///
/// `select_protocol` walks the preference list (kvm first by default, being
/// exact), records for each protocol whether it was chosen or refused and the
/// reason, and picks the first that works: a caller can print the whole list
/// and a user learns why the exact protocol was not used.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/clock/trace_clock.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/kvm/debugfs.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// The synchronization protocols.
enum class protocol : std::uint8_t { kvm, probe };

[[nodiscard]] constexpr std::string_view to_string(protocol p) noexcept {
  return p == protocol::kvm ? "kvm" : "probe";
}
/// Parse "kvm" or "probe" (exact match).
[[nodiscard]] constexpr std::optional<protocol> parse_protocol(std::string_view s) noexcept {
  if (s == "kvm") return protocol::kvm;
  if (s == "probe") return protocol::probe;
  return std::nullopt;
}

/// One line of the selection report.
struct protocol_decision {
  protocol proto = protocol::probe;
  bool chosen = false;
  std::string reason;
};

/// The outcome of `select_protocol`.
struct protocol_selection {
  std::optional<protocol> chosen;           ///< empty: nothing can synchronize this pairing
  std::vector<protocol_decision> decisions; ///< one per protocol considered, in preference order
};

/// Inputs of the selection.
struct selection_input {
  clock::trace_clock_id host_clock = clock::trace_clock_id::mono_raw;
  clock::trace_clock_id guest_clock = clock::trace_clock_id::mono_raw;
  /// Tries to read the VM's KVM debugfs files; empty when the caller has no VM
  /// to look at (e.g. the peer is not a local KVM guest).
  std::function<expected<void, std::error_code>()> kvm_check;
  /// Whether a probe transport to the peer exists.
  bool have_transport = true;
  /// Protocols in order of preference (each considered once).
  std::vector<protocol> preference = {protocol::kvm, protocol::probe};
};

/// Choose a protocol; see the file comment.
[[nodiscard]] inline protocol_selection select_protocol(const selection_input& in) {
  protocol_selection out;
  const auto pairing = clock::check_pairing(in.host_clock, in.guest_clock);
  std::vector<protocol> seen;
  for (auto p : in.preference) {
    bool dup = false;
    for (auto q : seen) dup = dup || q == p;
    if (dup) continue;
    seen.push_back(p);
    protocol_decision d;
    d.proto = p;
    bool ok = false;
    if (p == protocol::kvm) {
      if (!pairing.kvm.possible) {
        d.reason = pairing.kvm.reason;
      } else if (!in.kvm_check) {
        d.reason = "no KVM VM to read offsets from (no debugfs check given)";
      } else if (auto r = in.kvm_check(); !r) {
        d.reason = "KVM debugfs is not readable: " + r.error().message();
      } else {
        ok = true;
        d.reason = pairing.kvm.reason + "; debugfs files read successfully";
      }
    } else {
      if (!pairing.probe.possible) {
        d.reason = pairing.probe.reason;
      } else if (!in.have_transport) {
        d.reason = "no transport to the peer";
      } else {
        ok = true;
        d.reason = pairing.probe.reason;
      }
    }
    if (ok && !out.chosen) {
      out.chosen = p;
      d.chosen = true;
    } else if (ok) {
      d.reason = "usable, but '" + std::string(to_string(*out.chosen)) + "' is preferred";
    }
    out.decisions.push_back(std::move(d));
  }
  return out;
}

/// A readability check of a VM's KVM debugfs directory, done by really reading
/// it (`tsync::kvm::read_vm`): every `vcpuN/tsc-offset` (and the scaling files
/// when present) must be read and parse, and the VM must have at least one vCPU.
/// `q.root` is the kvm directory (default `/sys/kernel/debug/kvm`). Errors: those
/// of `read_vm` (`errc::not_found`, `errc::ambiguous_vm`, `errc::permission_denied`,
/// `errc::malformed_number`, ...), and `errc::not_found` for a VM without vCPUs.
[[nodiscard]] inline expected<void, std::error_code> check_kvm_debugfs(const kvm::debugfs_query& q) {
  auto vm = kvm::read_vm(q);
  if (!vm) return unexpected(vm.error());
  if (vm->vcpus.empty()) return unexpected(make_error_code(errc::not_found));
  return {};
}

}  // namespace tsync::sync
