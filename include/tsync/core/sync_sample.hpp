#pragma once
/// \file
/// Plain data exchanged between the stages of the pipeline: probe samples (from
/// the probe exchange or the simulator, into the estimators) and sync samples
/// (from estimators, KVM debugfs or trace-cmd files, into the correction engine).

#include <cstdint>
#include <optional>
#include "tsync/core/config.hpp"
#include "tsync/core/time.hpp"

namespace tsync::inline TSYNC_ABI {

/// One two-way probe. `t1` and `t2` are the initiator's send and receive
/// stamps, `g` the responder's stamp, all integers (ns or ticks of each side's
/// clock). The offset of one probe is `g − (t1 + t2) / 2` (responder − initiator).
///
/// The stamps stay raw integers on purpose: which side is the host depends on
/// the session's direction (`session_config::initiator_is_host`), known only at
/// run time, and the stamps are taken on the probe exchange's hot path. Typed
/// time starts where the direction is fixed: the session's `sync_sample`s and
/// the estimators' models (guest → host).
struct probe_sample {
  std::int64_t t1 = 0;     ///< initiator send stamp (initiator clock)
  std::int64_t g = 0;      ///< responder stamp (responder clock)
  std::int64_t t2 = 0;     ///< initiator receive stamp (initiator clock)
  std::uint64_t id = 0;    ///< probe id, unique within a burst
  std::uint32_t burst = 0; ///< burst (series) number
  std::uint32_t vcpu = 0;  ///< vCPU (or channel) the probe ran on
  friend constexpr bool operator==(const probe_sample&, const probe_sample&) = default;
};

/// An uncertainty interval around a sample's offset, in the same units:
/// the true offset lies in `[offset + lo, offset + hi]` (lo <= 0 <= hi).
struct offset_interval {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  friend constexpr bool operator==(const offset_interval&, const offset_interval&) = default;
};

/// One entry of a per-vCPU sync table.
///
/// Sign convention (one direction everywhere): `offset` is host − guest, so
/// unscaled, `host = guest + offset`. With KVM scaling the guest counter is
/// `guest = ((host * ratio) >> frac_bits) + kvm_offset`; the sample stores
/// `offset = −kvm_offset` and the host time is `ceil((guest + offset) * 2^frac_bits / ratio)`.
/// `ratio == 1 << frac_bits` means unscaled.
///
/// Types: `guest_time` is a `domain_time<guest>` and `offset` an
/// `offset<guest, host>` (host − guest), so that a host time cannot be stored as
/// a guest time. Their count is nanoseconds for probe-based tables and guest
/// TSC ticks for KVM (step) tables; the table's mode says which. The bounds are
/// relative to `offset`, in the same unit. An aggregate:
/// `sync_sample{at_ns<guest>(t), guest_to_host(o)}`.
struct sync_sample {
  domain_time<guest> guest_time{};         ///< guest time at which this sample holds
  guest_to_host offset{};                  ///< host − guest (unscaled units, see above)
  std::uint64_t ratio = 1;                 ///< scaling ratio (fixed point, frac_bits)
  std::uint8_t frac_bits = 0;              ///< fraction bits of `ratio`
  std::optional<offset_interval> bounds{}; ///< optional uncertainty of `offset`
  friend constexpr bool operator==(const sync_sample&, const sync_sample&) = default;
};

}  // namespace tsync
