// Offset changes mid-trace located from kvm_write_tsc_offset records.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "test_util.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/kvm/tsc.hpp"

using tsync::errc;
using namespace tsync::correct;

namespace {
std::uint64_t off(std::int64_t v) { return static_cast<std::uint64_t>(v); }
}  // namespace

TEST_CASE("Offset periods are built from one vCPU's records and validated") {
  const std::vector<tsc_offset_write> w{{1000, 0, off(-10), off(-500)}, {1500, 1, off(-7), off(-8)},
                                        {2000, 0, off(-500), off(-900)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  REQUIRE(p->size() == 3);
  CHECK(p->period(0) == offset_period{0, off(-10)});
  CHECK(p->period(1) == offset_period{1000, off(-500)});
  CHECK(p->period(2) == offset_period{2000, off(-900)});
  CHECK(p->period_at_host(999) == 0);
  CHECK(p->period_at_host(1000) == 1);
  CHECK(p->period_at_host(5000) == 2);
  CHECK(p->to_guest(1200) == 700);
  CHECK(offset_periods::make(w, 7).error() == errc::empty_input);
  const std::vector<tsc_offset_write> broken{{1000, 0, off(-10), off(-500)}, {2000, 0, off(-501), off(-900)}};
  CHECK(offset_periods::make(broken, 0).error() == errc::invalid_argument);
  const std::vector<tsc_offset_write> unsorted{{2000, 0, off(-10), off(-500)}, {1000, 0, off(-500), off(-900)}};
  CHECK(offset_periods::make(unsorted, 0).error() == errc::unsorted_input);
  CHECK(offset_periods::make(w, 0, 0, 48).error() == errc::zero_ratio);
}

TEST_CASE("A guest TSC write backward is located where the guest time goes backward") {
  // Guest TSC = host - 1000 until host 50000, where the guest writes its TSC
  // back to 0: offset -50000 from then on.
  const std::vector<tsc_offset_write> w{{50'000, 0, off(-1000), off(-50'000)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  std::vector<std::uint64_t> host_truth;
  for (std::uint64_t h = 10'000; h < 90'000; h += 700) host_truth.push_back(h);
  std::vector<std::uint64_t> guest;
  for (auto h : host_truth) guest.push_back(p->to_guest(h));
  auto res = resolve_offset_steps(*p, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 0);
  REQUIRE(res->switch_points().size() == 1);
  std::vector<std::uint64_t> out(guest.size());
  const auto st = steps_to_host(*p, *res, guest, out);
  REQUIRE(st.has_value());
  CHECK(out == host_truth);
  // a single offset for the whole stream would be wrong for half of it
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < guest.size(); ++i) wrong += (guest[i] + 1000 != host_truth[i]) ? 1u : 0u;
  CHECK(wrong > guest.size() / 3);
}

TEST_CASE("A guest TSC write forward is located where the converted time crosses the change") {
  const std::vector<tsc_offset_write> w{{50'000, 0, off(-1000), off(1'000'000)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  std::vector<std::uint64_t> host_truth;
  for (std::uint64_t h = 10'000; h < 90'000; h += 333) host_truth.push_back(h);
  std::vector<std::uint64_t> guest;
  for (auto h : host_truth) guest.push_back(p->to_guest(h));
  auto res = resolve_offset_steps(*p, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 0);
  std::vector<std::uint64_t> out(guest.size());
  REQUIRE(steps_to_host(*p, *res, guest, out).has_value());
  CHECK(out == host_truth);
}

TEST_CASE("Several offset changes with scaling are resolved exactly") {
  const std::uint64_t ratio = (std::uint64_t{2} << 48) / 3;  // guest at 2/3 of the host rate
  const std::vector<tsc_offset_write> w{{1'000'000, 3, off(-5000), off(-300'000)},
                                        {2'000'000, 3, off(-300'000), off(-900'000)},
                                        {3'000'000, 3, off(-900'000), off(2'000'000)}};
  auto p = offset_periods::make(w, 3, ratio, 48);
  REQUIRE(p.has_value());
  std::vector<std::uint64_t> host_truth;
  for (std::uint64_t h = 100'000; h < 4'000'000; h += 1234) host_truth.push_back(h);
  std::vector<std::uint64_t> guest;
  for (auto h : host_truth) guest.push_back(p->to_guest(h));
  auto res = resolve_offset_steps(*p, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 0);
  std::vector<std::uint64_t> out(guest.size());
  REQUIRE(steps_to_host(*p, *res, guest, out).has_value());
  for (std::size_t i = 0; i < guest.size(); ++i) {
    // the exact inverse returns the first host tick of the guest tick's bucket
    REQUIRE(out[i] <= host_truth[i]);
    REQUIRE(host_truth[i] - out[i] <= 1);
    REQUIRE(p->to_guest(out[i]) == guest[i]);
  }
}

TEST_CASE("Several writes to the same guest time are reported as ambiguous with candidate offsets") {
  // The counter-example of the 2012 thread: the guest writes TSC = 0 at host
  // 100, 104 and 108, then logs 1 2 3 1 2 3. Event D (the second '1') may
  // belong to the period of offset -104 or -108 (or -100): the data cannot decide.
  const std::vector<tsc_offset_write> w{{100, 0, off(-50), off(-100)},
                                        {104, 0, off(-100), off(-104)},
                                        {108, 0, off(-104), off(-108)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  const std::vector<std::uint64_t> guest{1, 2, 3, 1, 2, 3};
  auto res = resolve_offset_steps(*p, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 6);
  const auto d = resolve_event(*p, *res, guest, 3);
  REQUIRE(d.ambiguous());
  CHECK(std::find(d.candidate_offsets.begin(), d.candidate_offsets.end(), off(-104)) != d.candidate_offsets.end());
  CHECK(std::find(d.candidate_offsets.begin(), d.candidate_offsets.end(), off(-108)) != d.candidate_offsets.end());
  CHECK(d.candidate_hosts.size() == d.candidate_offsets.size());
  std::vector<std::uint64_t> out(guest.size());
  const auto st = steps_to_host(*p, *res, guest, out);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error() == tsync::index_error{errc::ambiguous, 0});
}

TEST_CASE("One write with a backward guest step is decided even when both offsets fit some events") {
  // Offsets differ by 30 only: events just before the write fit both periods,
  // but the backward step pins the switch.
  const std::vector<tsc_offset_write> w{{1000, 0, off(-100), off(-130)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  const std::vector<std::uint64_t> guest{880, 890, 899, 871, 875, 900};
  auto res = resolve_offset_steps(*p, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 0);
  std::vector<std::uint64_t> out(guest.size());
  REQUIRE(steps_to_host(*p, *res, guest, out).has_value());
  CHECK(out == std::vector<std::uint64_t>{980, 990, 999, 1001, 1005, 1030});
}

TEST_CASE("A stream that fits no consistent assignment is infeasible") {
  const std::vector<tsc_offset_write> w{{1000, 0, off(-100), off(-130)}};
  auto p = offset_periods::make(w, 0);
  REQUIRE(p.has_value());
  // two backward steps but only one write
  const std::vector<std::uint64_t> guest{880, 870, 860};
  CHECK(resolve_offset_steps(*p, guest).error() == errc::infeasible);
}
