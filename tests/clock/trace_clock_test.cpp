#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "tsync/clock/trace_clock.hpp"

using namespace tsync;
using namespace tsync::clock;

TEST_CASE("every registered trace clock parses back from its exact name") {
  for (const auto& c : trace_clocks) {
    auto r = parse_trace_clock(c.name);
    REQUIRE(r.has_value());
    CHECK(*r == c.id);
    CHECK(info(c.id).name == c.name);
  }
  CHECK(trace_clocks.size() == 10);
}

TEST_CASE("trace clock names are matched exactly and never by prefix") {
  // trace-cmd's prefix match classified mono_raw as mono
  CHECK(*parse_trace_clock("mono_raw") == trace_clock_id::mono_raw);
  CHECK(*parse_trace_clock("mono") == trace_clock_id::mono);
  for (auto bad : {"mon", "mono_", "mono_rawx", "Mono", "x86", "x86-tsc ", " local", "", "tsc", "ppc-tb"}) {
    INFO(bad);
    CHECK(parse_trace_clock(bad).error() == errc::not_found);
  }
}

TEST_CASE("the registry records scope rate unit and userspace source") {
  CHECK(info(trace_clock_id::local).scope == clock_scope::per_cpu);
  CHECK(info(trace_clock_id::perf).scope == clock_scope::per_cpu);
  CHECK(info(trace_clock_id::global).scope == clock_scope::global);
  CHECK(info(trace_clock_id::mono).rate == clock_rate::ntp_slewed);
  CHECK(info(trace_clock_id::boot).rate == clock_rate::ntp_slewed);
  CHECK(info(trace_clock_id::mono_raw).rate == clock_rate::raw);
  CHECK(info(trace_clock_id::x86_tsc).rate == clock_rate::raw);
  CHECK(info(trace_clock_id::x86_tsc).unit == clock_unit::cycles);
  CHECK(info(trace_clock_id::counter).unit == clock_unit::events);
  CHECK(info(trace_clock_id::uptime).unit == clock_unit::jiffies);
  CHECK_FALSE(info(trace_clock_id::tai).monotonic);
  CHECK(posix_source(trace_clock_id::mono) == posix_clock_id::monotonic);
  CHECK(posix_source(trace_clock_id::mono_raw) == posix_clock_id::monotonic_raw);
  CHECK(posix_source(trace_clock_id::boot) == posix_clock_id::boottime);
  CHECK(posix_source(trace_clock_id::tai) == posix_clock_id::tai);
  CHECK_FALSE(posix_source(trace_clock_id::x86_tsc).has_value());
  CHECK(info(trace_clock_id::x86_tsc).source == userspace_source::tsc);
  for (auto id : {trace_clock_id::local, trace_clock_id::global, trace_clock_id::perf}) {
    CHECK(info(id).source == userspace_source::sched_clock_approx);
    CHECK_FALSE(has_userspace_source(id));
  }
  CHECK_FALSE(has_userspace_source(trace_clock_id::counter));
  CHECK_FALSE(has_userspace_source(trace_clock_id::uptime));
  CHECK(has_userspace_source(trace_clock_id::x86_tsc));
}

TEST_CASE("clock pairings say which protocol can synchronize them") {
  auto r = check_pairing(trace_clock_id::x86_tsc, trace_clock_id::x86_tsc);
  CHECK(r.probe.possible);
  CHECK(r.kvm.possible);

  r = check_pairing(trace_clock_id::mono_raw, trace_clock_id::mono_raw);
  CHECK(r.probe.possible);
  CHECK_FALSE(r.kvm.possible);
  CHECK(r.kvm.reason.find("x86-tsc") != std::string::npos);

  r = check_pairing(trace_clock_id::mono_raw, trace_clock_id::boot);
  CHECK(r.probe.possible);  // same unit: the offset absorbs the epoch difference

  r = check_pairing(trace_clock_id::mono_raw, trace_clock_id::x86_tsc);
  CHECK_FALSE(r.probe.possible);
  CHECK(r.probe.reason.find("units differ") != std::string::npos);
  CHECK_FALSE(r.kvm.possible);
  CHECK_FALSE(r.any());

  r = check_pairing(trace_clock_id::local, trace_clock_id::local);
  CHECK_FALSE(r.probe.possible);
  CHECK(r.probe.reason.find("sched_clock") != std::string::npos);

  r = check_pairing(trace_clock_id::mono, trace_clock_id::counter);
  CHECK_FALSE(r.probe.possible);
  CHECK(r.probe.reason.find("guest clock 'counter'") != std::string::npos);

  r = check_pairing(trace_clock_id::uptime, trace_clock_id::mono);
  CHECK(r.probe.reason.find("host clock 'uptime'") != std::string::npos);
}

TEST_CASE("a trace_clock file yields the bracketed clock and the list") {
  auto s = parse_trace_clock_file("local global counter uptime perf mono [mono_raw] boot tai x86-tsc\n");
  REQUIRE(s.has_value());
  CHECK(s->current == "mono_raw");
  CHECK(s->id() == trace_clock_id::mono_raw);
  CHECK(s->available.size() == 10);
  CHECK(s->available[6] == "mono_raw");

  s = parse_trace_clock_file("[ppc-tb] local global");
  REQUIRE(s.has_value());
  CHECK(s->current == "ppc-tb");
  CHECK_FALSE(s->id().has_value());
}

TEST_CASE("malformed trace_clock files are errors") {
  CHECK(parse_trace_clock_file("").error() == errc::empty_input);
  CHECK(parse_trace_clock_file("  \n").error() == errc::empty_input);
  CHECK(parse_trace_clock_file("local global").error() == errc::protocol_error);
  CHECK(parse_trace_clock_file("[local] [global]").error() == errc::protocol_error);
  CHECK(parse_trace_clock_file("[local global]").error() == errc::protocol_error);
  CHECK(parse_trace_clock_file("[] local").error() == errc::protocol_error);
  CHECK(parse_trace_clock_file("[lo]cal]").error() == errc::protocol_error);
  CHECK(parse_trace_clock_file("local] [mono").error() == errc::protocol_error);
}

TEST_CASE("read_trace_clock reads a fake tracefs root") {
  const auto root = std::filesystem::path(TSYNC_TEST_BINARY_DIR) / "fake_tracefs_clock";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "instances" / "sync");
  {
    std::ofstream(root / "trace_clock") << "[local] global counter uptime perf mono mono_raw boot x86-tsc\n";
    std::ofstream(root / "instances" / "sync" / "trace_clock") << "local global [x86-tsc]\n";
  }
  auto top = read_trace_clock(root);
  REQUIRE(top.has_value());
  CHECK(top->id() == trace_clock_id::local);
  auto inst = read_trace_clock(root / "instances" / "sync");
  REQUIRE(inst.has_value());
  CHECK(inst->id() == trace_clock_id::x86_tsc);

  CHECK(read_trace_clock(root / "missing").error() == make_error_code(errc::not_found));
  { std::ofstream(root / "instances" / "trace_clock") << "garbage without brackets\n"; }
  CHECK(read_trace_clock(root / "instances").error() == make_error_code(errc::protocol_error));
  std::filesystem::remove_all(root);
}
