#pragma once
/// \file
/// The `kvm_write_tsc_offset` pipeline (what `tsync correct --tsc-writes` runs):
/// records read from a host trace (io/tsc_offset_records.hpp) → ordered by host
/// time → truncated at the trace start (`--start`) → one vCPU's offset periods,
/// with a missing record named by its line → a guest stream resolved against
/// them → host times, ambiguous events listed with a bounded number of
/// candidates (the output grows with the events, never with records × events).
///
/// Each stage is a function tested on its own; `tsc_write_pipeline` chains them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/io/text.hpp"
#include "tsync/kvm/tsc.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// Records with the 1-based line each came from (`lines[i]` for `writes[i]`).
struct tsc_write_records {
  std::vector<correct::tsc_offset_write> writes;
  std::vector<std::size_t> lines;
};

/// Stage 1: order by host time (stable: equal times keep file order). A merged
/// trace is in order already; per-CPU files put one after the other are not.
[[nodiscard]] inline tsc_write_records sort_by_host_time(tsc_write_records r) {
  std::vector<std::size_t> order(r.writes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return r.writes[a].host_tsc < r.writes[b].host_tsc; });
  tsc_write_records out;
  out.writes.reserve(order.size());
  out.lines.reserve(order.size());
  for (auto i : order) {
    out.writes.push_back(r.writes[i]);
    out.lines.push_back(i < r.lines.size() ? r.lines[i] : 0);
  }
  return out;
}

/// Where the records of `vcpu` stop chaining (sorted records): the message names
/// the line of the first record whose previous offset is not the next offset of
/// the record of that vCPU before it.
[[nodiscard]] inline text_error chain_break(const tsc_write_records& r, std::uint32_t vcpu) {
  std::optional<std::size_t> last;
  for (std::size_t i = 0; i < r.writes.size(); ++i) {
    if (r.writes[i].vcpu != vcpu) continue;
    if (last && r.writes[i].previous_offset != r.writes[*last].next_offset)
      return text_error{errc::invalid_argument, r.lines[i],
                        "prev=" + std::to_string(r.writes[i].previous_offset) + " but the record of vCPU " +
                            std::to_string(vcpu) + " before it (line " + std::to_string(r.lines[*last]) +
                            ") has next=" + std::to_string(r.writes[*last].next_offset) + ": a record is missing"};
    last = i;
  }
  return text_error{errc::invalid_argument, 0, "the records do not chain"};
}

/// Stage 2 (sorted records): no event is before `start`, so the records of `vcpu`
/// at or before it only say which offset is in force there. They are replaced by
/// one record at `start` that does not change that offset, so the period before
/// it (which small guest times would also fit) cannot be chosen. Records of other
/// vCPUs are kept. Error: the records before `start` do not chain.
[[nodiscard]] inline expected<tsc_write_records, text_error> truncate_at_start(tsc_write_records r,
                                                                               std::uint32_t vcpu,
                                                                               std::uint64_t start) {
  tsc_write_records kept;
  std::optional<std::size_t> last_before;
  for (std::size_t i = 0; i < r.writes.size(); ++i) {
    if (r.writes[i].vcpu == vcpu && r.writes[i].host_tsc <= start) {
      if (last_before && r.writes[i].previous_offset != r.writes[*last_before].next_offset)
        return unexpected(chain_break(r, vcpu));
      last_before = i;
      continue;
    }
    kept.writes.push_back(r.writes[i]);
    kept.lines.push_back(r.lines[i]);
  }
  if (last_before) {
    const auto& w = r.writes[*last_before];
    kept.writes.insert(kept.writes.begin(), {start, vcpu, w.next_offset, w.next_offset});
    kept.lines.insert(kept.lines.begin(), r.lines[*last_before]);
  }
  return kept;
}

/// Stage 3: the offset periods of `vcpu`, errors as text naming the record.
[[nodiscard]] inline expected<correct::offset_periods, text_error> periods_of(const tsc_write_records& r,
                                                                              std::uint32_t vcpu, std::uint64_t ratio,
                                                                              std::uint8_t frac_bits) {
  auto p = correct::offset_periods::make(r.writes, vcpu, ratio, frac_bits);
  if (p) return std::move(*p);
  if (p.error() == errc::empty_input)
    return unexpected(text_error{errc::empty_input, 0, "has no kvm_write_tsc_offset record of vCPU " + std::to_string(vcpu)});
  if (p.error() == errc::invalid_argument) return unexpected(chain_break(r, vcpu));
  return unexpected(text_error{p.error(), 0, to_string(p.error())});
}

/// One converted event.
struct tsc_write_event {
  std::optional<std::uint64_t> host;         ///< the host time, when the data decide
  std::vector<std::uint64_t> shown;          ///< ambiguous: the first candidates' host times, and the last
  std::size_t candidates = 0;                ///< ambiguous: how many periods fit in all
};

/// The pipeline for one vCPU of one trace.
class tsc_write_pipeline {
 public:
  struct options {
    std::uint32_t vcpu = 0;
    std::uint64_t ratio = 1;
    std::uint8_t frac_bits = 0;
    std::optional<std::uint64_t> start;  ///< host TSC at which the guest stream starts
    std::size_t max_listed = 4;          ///< host times listed for an ambiguous event (>= 2)
  };

  /// Stages 1-3 on `records`. Errors name the record's line where there is one.
  [[nodiscard]] static expected<tsc_write_pipeline, text_error> make(tsc_write_records records, const options& o) {
    auto sorted = sort_by_host_time(std::move(records));
    if (o.start) {
      auto t = truncate_at_start(std::move(sorted), o.vcpu, *o.start);
      if (!t) return unexpected(t.error());
      sorted = std::move(*t);
    }
    auto p = periods_of(sorted, o.vcpu, o.ratio, o.frac_bits);
    if (!p) return unexpected(p.error());
    tsc_write_pipeline out(std::move(*p), o);
    out.records_ = std::move(sorted);
    return out;
  }

  [[nodiscard]] const correct::offset_periods& periods() const noexcept { return periods_; }
  [[nodiscard]] const tsc_write_records& records() const noexcept { return records_; }

  /// Stage 4: assign the guest stream's events to periods. Errors as
  /// `correct::resolve_offset_steps` (the stream fits no sequence of offsets).
  [[nodiscard]] expected<correct::step_resolution, errc> resolve(std::span<const std::uint64_t> guest) const {
    return correct::resolve_offset_steps(periods_, guest);
  }

  /// Stage 5: the host time of event `i`, or its candidates (at most `max_listed`
  /// host times: the first ones and the last; `candidates` counts them all).
  /// Error: the conversion of a decided event overflows.
  [[nodiscard]] expected<tsc_write_event, errc> event(const correct::step_resolution& res,
                                                      std::span<const std::uint64_t> guest, std::size_t i) const {
    const auto& run = res.run_of(i);
    tsc_write_event e;
    if (run.decided()) {
      auto h = kvm::to_host(guest[i], periods_.params(run.first_period));
      if (!h) return unexpected(h.error());
      e.host = *h;
      return e;
    }
    const std::size_t keep = std::max<std::size_t>(opt_.max_listed, 2);
    std::optional<std::uint64_t> last;
    for (std::size_t p = run.first_period; p <= run.last_period; ++p) {
      auto h = periods_.host_in_period(p, guest[i]);
      if (!h) continue;
      ++e.candidates;
      if (e.shown.size() + 1 < keep) e.shown.push_back(*h);
      else last = *h;
    }
    if (last) e.shown.push_back(*last);
    return e;
  }

 private:
  tsc_write_pipeline(correct::offset_periods p, const options& o) : periods_(std::move(p)), opt_(o) {}
  correct::offset_periods periods_;
  options opt_;
  tsc_write_records records_;
};

}  // namespace tsync::sync
