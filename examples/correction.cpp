// The correction engine on its own (see docs/correction.md): a tracer that
// already has sync samples corrects guest per-CPU streams onto the host
// timeline.
//
//  1. A probe-based table (interpolate mode): one guest stream corrected three
//     ways (binary search, streaming cursor, batch), bit for bit the same, then
//     checked for monotonicity, and a few host times mapped back to guest time.
//  2. A KVM offset change in the middle of a trace (the guest writes its TSC):
//     the host's kvm_write_tsc_offset record and the guest stream locate the
//     switch, and every event gets the right offset.
//  3. Several writes to the same guest time: the data cannot decide, and the
//     engine says so with the candidate offsets instead of guessing.
//
// Exit status 0 only if every check passes.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "tsync/correct.hpp"

namespace {

namespace corr = tsync::correct;

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "correction: FAILED: %s\n", what);
    ++failures;
  }
}

const char* kernel_name(corr::cursor_kernel k) {
  switch (k) {
    case corr::cursor_kernel::bits64: return "64-bit";
    case corr::cursor_kernel::bits128: return "128-bit";
    case corr::cursor_kernel::bits128_checked: return "checked 128-bit";
    case corr::cursor_kernel::table: return "table";
    case corr::cursor_kernel::slow: return "slow path";
  }
  return "?";
}

void probe_table() {
  // Sync samples every 5 ms over 2 s: the guest clock runs 40 ppm fast and
  // starts 3.2 s ahead, so offset = host − guest falls by 200 ns per sample.
  std::vector<tsync::sync_sample> samples;
  for (std::int64_t i = 0; i <= 400; ++i) {
    const std::int64_t guest = 10'000'000'000 + i * 5'000'000;
    samples.push_back(tsync::sync_sample{tsync::at_ns<tsync::guest>(guest),
                                         tsync::guest_to_host(-3'200'000'000 - i * 200), 1, 0, std::nullopt});
  }
  auto table = corr::sync_table::make(samples, corr::correction_mode::interpolate, corr::outside_policy::extrapolate);
  check(table.has_value(), "sync_table::make");
  if (!table) return;

  // One vCPU's events: in time order, 1 to 3 us apart, with one small backward
  // step (events of a per-CPU ring buffer are in order; a merge may not be).
  std::vector<std::int64_t> events;
  std::int64_t g = 10'000'000'000;
  for (int i = 0; i < 200'000; ++i) {
    g += 1000 + (i * 7919) % 2000;
    events.push_back(i == 100'000 ? g - 50'000 : g);
  }

  // 1. the reference, 2. the streaming cursor, 3. the batch
  std::vector<std::int64_t> ref(events.size());
  std::vector<std::int64_t> streamed(events.size());
  std::vector<std::int64_t> batched(events.size());
  corr::cursor cur(*table);
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto r = table->correct(tsync::at_ns<tsync::guest>(events[i]));  // typed reference
    auto c = cur.correct(events[i]);                                   // raw hot path
    check(r.has_value() && c.has_value(), "correct");
    if (!r || !c) return;
    ref[i] = tsync::raw_ns(*r);
    streamed[i] = *c;
  }
  const auto st = corr::correct_batch(*table, std::span<const std::int64_t>(events), std::span<std::int64_t>(batched));
  check(st.has_value(), "correct_batch");
  check(streamed == ref, "cursor == reference, bit for bit");
  check(batched == ref, "batch == reference, bit for bit");
  std::printf("probe table: %zu samples, %zu events; the cursor did %zu binary searches, kernel %s\n",
              table->size(), events.size(), cur.searches(), kernel_name(cur.kernel_kind()));
  std::printf("  guest %lld -> host %lld (offset %lld ns)\n", static_cast<long long>(events[0]),
              static_cast<long long>(ref[0]), static_cast<long long>(ref[0] - events[0]));

  // Monotonicity: the backward step of the input shows up as one violation.
  const auto mono = corr::check_monotonic(ref);
  std::printf("  monotonicity: %zu violation(s), first at event %zu, %llu ns back\n", mono.violations,
              mono.first_index, static_cast<unsigned long long>(mono.first_size));
  check(mono.violations == 1 && mono.first_index == 100'000, "monotonicity report");

  // Host -> guest: the smallest guest time whose host time is at least h.
  for (std::size_t i : {std::size_t{0}, std::size_t{77'777}, events.size() - 1}) {
    auto back = table->to_guest(tsync::at_ns<tsync::host>(ref[i]));
    check(back.has_value() && tsync::raw_ns(*back) <= events[i], "to_guest is at or before the event");
    if (back) check(tsync::raw_ns(*table->correct(*back)) == ref[i], "to_guest maps back to the same host time");
  }
}

// KVM offsets are `guest − host` modulo 2^64 (as the tracepoint prints them).
std::uint64_t kvm_offset(std::int64_t o) { return static_cast<std::uint64_t>(o); }

void offset_change() {
  // vCPU 0: guest TSC = host TSC − 1,000,000 until host TSC 5,000,000, where the
  // guest writes its TSC back to 100 (offset −4,999,900 from then on).
  const std::vector<corr::tsc_offset_write> records{{5'000'000, 0, kvm_offset(-1'000'000), kvm_offset(-4'999'900)}};
  auto periods = corr::offset_periods::make(records, 0);
  check(periods.has_value(), "offset_periods::make");
  if (!periods) return;
  std::vector<std::uint64_t> host_truth;
  std::vector<std::uint64_t> guest;
  for (std::uint64_t h = 1'500'000; h < 9'000'000; h += 3'001) {
    host_truth.push_back(h);
    guest.push_back(periods->to_guest(h));
  }
  auto res = corr::resolve_offset_steps(*periods, guest);
  check(res.has_value(), "resolve_offset_steps");
  if (!res) return;
  std::vector<std::uint64_t> host(guest.size());
  const auto st = corr::steps_to_host(*periods, *res, guest, host);
  check(st.has_value(), "steps_to_host");
  check(host == host_truth, "every event gets the offset of its period");
  const auto sw = res->switch_points();
  check(sw.size() == 1, "one switch point");
  if (sw.size() == 1)
    std::printf("offset change: %zu events, switch at event %zu (guest %llu -> %llu), %zu ambiguous\n", guest.size(),
                sw[0], static_cast<unsigned long long>(guest[sw[0] - 1]), static_cast<unsigned long long>(guest[sw[0]]),
                res->ambiguous_events());
}

void ambiguous_writes() {
  // The guest writes TSC = 0 at host 100, 104 and 108, then logs 1 2 3 1 2 3:
  // the second "1" may belong to either of the last two writes.
  const std::vector<corr::tsc_offset_write> records{{100, 0, kvm_offset(-50), kvm_offset(-100)},
                                                    {104, 0, kvm_offset(-100), kvm_offset(-104)},
                                                    {108, 0, kvm_offset(-104), kvm_offset(-108)}};
  auto periods = corr::offset_periods::make(records, 0);
  check(periods.has_value(), "offset_periods::make (ambiguous)");
  if (!periods) return;
  const std::vector<std::uint64_t> guest{1, 2, 3, 1, 2, 3};
  auto res = corr::resolve_offset_steps(*periods, guest);
  check(res.has_value(), "resolve_offset_steps (ambiguous)");
  if (!res) return;
  const auto ev = corr::resolve_event(*periods, *res, guest, 3);
  check(ev.ambiguous() && ev.candidate_offsets.size() >= 2, "ambiguous event with candidates");
  std::printf("same-time writes: %zu of %zu events ambiguous; event 3 candidates:", res->ambiguous_events(),
              guest.size());
  for (std::size_t i = 0; i < ev.candidate_offsets.size(); ++i)
    std::printf(" offset %lld -> host %llu", static_cast<long long>(ev.candidate_offsets[i]),
                static_cast<unsigned long long>(ev.candidate_hosts[i]));
  std::printf("\n");
}

}  // namespace

int main() {
  probe_table();
  offset_change();
  ambiguous_writes();
  if (failures != 0) return 1;
  std::printf("correction: all checks passed\n");
  return 0;
}
