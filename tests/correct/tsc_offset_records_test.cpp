// kvm_write_tsc_offset records read from host trace text (tracefs and
// trace-cmd report, x86-tsc clock), and fed to the offset-step resolver.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/io/tsc_offset_records.hpp"
#include "tsync/kvm/tsc.hpp"

using tsync::errc;
using namespace tsync::correct;
using namespace tsync::io;

namespace {

std::uint64_t off(std::int64_t v) { return static_cast<std::uint64_t>(v); }

// One line as tracefs prints it for a clock that is not in nanoseconds:
// "%16s-%-5d " "[%03d] " [latency flags] " %12llu: " "name: " TP_printk.
std::string tracefs_line(const std::string& comm, int pid, int cpu, std::uint64_t ts, const std::string& body,
                         const std::string& flags = "d..1.") {
  char head[96];
  std::snprintf(head, sizeof head, "%16s-%-5d [%03d] %s %12llu: ", comm.c_str(), pid, cpu, flags.c_str(),
                static_cast<unsigned long long>(ts));
  return head + body;
}

// One line as `trace-cmd report` prints it for a raw clock:
// "%16s-%-5d [%03d]" "%12d:" " name: " (padded to 20) info.
std::string tracecmd_line(const std::string& comm, int pid, int cpu, std::uint64_t ts, const std::string& body) {
  char head[96];
  std::snprintf(head, sizeof head, "%16s-%-5d [%03d]%12llu: ", comm.c_str(), pid, cpu,
                static_cast<unsigned long long>(ts));
  return head + body;
}

std::string tsc_body(std::uint32_t vcpu, std::uint64_t prev, std::uint64_t next) {
  return "kvm_write_tsc_offset: vcpu=" + std::to_string(vcpu) + " prev=" + std::to_string(prev) +
         " next=" + std::to_string(next);
}

tsync::text_error error_of(std::string_view line, std::size_t line_no = 7) {
  auto r = parse_tsc_offset_line(line, line_no);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("A tracefs line recorded with the x86-tsc clock gives its record field by field") {
  const auto line = tracefs_line("CPU 0/KVM", 41234, 3, 27951088470225859ULL,
                                 tsc_body(1, 18446744073709551516ULL, 18446744073709551486ULL));
  INFO(line);
  auto r = parse_tsc_offset_line(line, 1);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  const tsc_offset_write& w = **r;
  CHECK(w.host_tsc == 27951088470225859ULL);
  CHECK(w.vcpu == 1);
  CHECK(w.previous_offset == off(-100));
  CHECK(w.next_offset == off(-130));
  // without the irq-info column, with a tgid column, as trace_pipe prints it
  const std::string piped = "       CPU 1/KVM-41235   (41200) [000]  123456789012345: " + tsc_body(4294967295u, 0, 7);
  auto p = parse_tsc_offset_line(piped);
  REQUIRE(p.has_value());
  REQUIRE(p->has_value());
  CHECK(**p == tsc_offset_write{123456789012345ULL, 4294967295u, 0, 7});
}

TEST_CASE("A trace-cmd report line gives its record even when the timestamp touches the CPU column") {
  const auto glued = tracecmd_line("CPU 0/KVM", 5120, 1, 27951088470225859ULL, tsc_body(0, 11, 22));
  CHECK(glued.find("[001]27951088470225859:") != std::string::npos);
  auto g = parse_tsc_offset_line(glued);
  REQUIRE(g.has_value());
  REQUIRE(g->has_value());
  CHECK(**g == tsc_offset_write{27951088470225859ULL, 0, 11, 22});
  const auto padded = tracecmd_line("qemu-system-x86", 5120, 12, 4242, tsc_body(2, 33, 44));
  CHECK(padded.find("[012]        4242:") != std::string::npos);
  auto p = parse_tsc_offset_line(padded);
  REQUIRE(p.has_value());
  REQUIRE(p->has_value());
  CHECK(**p == tsc_offset_write{4242, 2, 33, 44});
  // a file or instance name before the line, --ts-diff after the timestamp,
  // the system name before the event, a CR line end, tabs between fields
  auto x = parse_tsc_offset_line("tsc: CPU 0/KVM-5120 [001] 999: (+12)    kvm:kvm_write_tsc_offset: vcpu=3\tprev=1  next=2\r");
  REQUIRE(x.has_value());
  REQUIRE(x->has_value());
  CHECK(**x == tsc_offset_write{999, 3, 1, 2});
}

TEST_CASE("Lines of other events and header comments are skipped") {
  const std::vector<std::string> skipped{
      "# tracer: nop",
      "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
      "# kvm_write_tsc_offset: vcpu=0 prev=1 next=2",
      "",
      "   \t  ",
      "cpus=4",
      "CPU:2 [EVENTS DROPPED]",
      tracefs_line("CPU 0/KVM", 1, 0, 1000, "kvm_entry: vcpu 0, rip 0xffffffff81000000"),
      tracefs_line("CPU 0/KVM", 1, 0, 1001, "kvm_exit: reason MSR_WRITE rip 0xffffffff8106b2a4 info 0 0"),
      tracefs_line("CPU 0/KVM", 1, 0, 1002, "kvm_vcpu_write_tsc_offset <-kvm_synchronize_tsc", "...."),
      tracefs_line("CPU 0/KVM", 1, 0, 1003, "kvm_write_tsc_offset_extra: vcpu=0 prev=1 next=2"),
      tracefs_line("bash", 2, 1, 1004, "tracing_mark_write: kvm_write_tsc_offset: vcpu=0 prev=1 next=2"),
      tracefs_line("bash", 2, 1, 1005, "print: kvm:kvm_write_tsc_offset: vcpu=0 prev=1 next=2"),
      tracefs_line("bash", 2, 1, 1006, "my_kvm_write_tsc_offset: vcpu=0"),
  };
  for (const auto& s : skipped) {
    INFO(s);
    auto r = parse_tsc_offset_line(s, 1);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_value());
  }
  std::string text;
  for (const auto& s : skipped) text += s + "\n";
  text += tracefs_line("CPU 1/KVM", 3, 2, 2000, tsc_body(1, 5, 6)) + "\n";
  text += skipped[7];  // last line without a line break
  auto all = parse_tsc_offset_records(text);
  REQUIRE(all.has_value());
  CHECK(all->lines_read == skipped.size() + 2);
  REQUIRE(all->writes.size() == 1);
  CHECK(all->writes[0] == tsc_offset_write{2000, 1, 5, 6});
  CHECK(all->lines[0] == skipped.size() + 1);
}

TEST_CASE("Every malformed kvm_write_tsc_offset line is an error naming its line and the problem") {
  const auto line = [](const std::string& body) { return tracefs_line("CPU 0/KVM", 9, 0, 5000, body); };
  SECTION("a missing field") {
    const auto e = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=5"));
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.line == 7);
    CHECK(e.what().rfind("line 7: ", 0) == 0);
    CHECK(e.message.find("missing field 'next='") != std::string::npos);
    const auto f = error_of(line("kvm_write_tsc_offset: prev=5 next=6"));
    CHECK(f.message.find("missing field 'vcpu='") != std::string::npos);
  }
  SECTION("a vCPU id above 32 bits") {
    const auto e = error_of(line("kvm_write_tsc_offset: vcpu=4294967296 prev=1 next=2"));
    CHECK(e.code == errc::number_out_of_range);
    CHECK(e.line == 7);
    CHECK(e.message.find("'vcpu'") != std::string::npos);
  }
  SECTION("an offset above 64 bits") {
    const auto e = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=18446744073709551616 next=2"));
    CHECK(e.code == errc::number_out_of_range);
    CHECK(e.message.find("'prev'") != std::string::npos);
    const auto huge = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=1 next=" + std::string(5000, '9')));
    CHECK(huge.code == errc::number_out_of_range);
    CHECK(huge.message.find("'next'") != std::string::npos);
  }
  SECTION("trailing characters in a field") {
    const auto e = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=12x next=2"));
    CHECK(e.code == errc::malformed_number);
    CHECK(e.message.find("'prev' has trailing characters") != std::string::npos);
    const auto neg = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=-12 next=2"));
    CHECK(neg.code == errc::malformed_number);
    CHECK(neg.message.find("'prev' has no decimal number") != std::string::npos);
  }
  SECTION("text after the last field") {
    const auto e = error_of(line("kvm_write_tsc_offset: vcpu=0 prev=1 next=2 extra"));
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message.find("after the 'next' field") != std::string::npos);
  }
  SECTION("a timestamp in seconds from a nanosecond clock") {
    const auto e = error_of("  CPU 0/KVM-9     [000] d..1.  2345.678901: kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(e.code == errc::unsupported);
    CHECK(e.line == 7);
    CHECK(e.message.find("x86-tsc") != std::string::npos);
    CHECK(e.message.find("trace-cmd record -C x86-tsc") != std::string::npos);
    const auto ns = error_of("  CPU 0/KVM-9     [000]  2345.678901234: kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(ns.code == errc::unsupported);
  }
  SECTION("a missing or malformed timestamp") {
    const auto e = error_of("kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(e.code == errc::invalid_argument);
    CHECK(e.message.find("no timestamp") != std::string::npos);
    const auto f = error_of("  CPU 0/KVM-9     [000] kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(f.message.find("no timestamp") != std::string::npos);
    const auto g = error_of("  CPU 0/KVM-9     [000] 12a4: kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(g.code == errc::malformed_number);
    CHECK(g.message.find("malformed timestamp '12a4'") != std::string::npos);
    const auto h = error_of("  CPU 0/KVM-9     [000] 99999999999999999999: kvm_write_tsc_offset: vcpu=0 prev=1 next=2");
    CHECK(h.code == errc::number_out_of_range);
  }
  SECTION("a line longer than the limit") {
    std::string longline = line(tsc_body(0, 1, 2)) + std::string(max_trace_line, ' ');
    const auto e = error_of(longline);
    CHECK(e.code == errc::oversized);
    std::istringstream in("ok\n" + longline + "\n");
    auto r = read_tsc_offset_records(in);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::oversized);
    CHECK(r.error().line == 2);
  }
  SECTION("the line number counts every line of the text") {
    const std::string text = "# tracer: nop\n\n" + line(tsc_body(0, 1, 2)) + "\n" + line("kvm_write_tsc_offset: vcpu=0") + "\n";
    auto r = parse_tsc_offset_records(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().line == 4);
    std::istringstream in(text);
    auto s = read_tsc_offset_records(in);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().line == 4);
    CHECK(s.error().message == r.error().message);
  }
}

TEST_CASE("The stream reader and the string reader give the same records") {
  std::string text = "# tracer: nop\r\n";
  for (std::uint32_t i = 0; i < 5000; ++i) {
    text += tracecmd_line("CPU 0/KVM", 77, static_cast<int>(i % 4), 1'000'000'000'000ULL + i * 1000ULL,
                          tsc_body(i % 3, i, i + 1)) + (i % 2 ? "\r\n" : "\n");
    text += tracecmd_line("CPU 0/KVM", 77, 0, 1'000'000'000'000ULL + i * 1000ULL + 1, "kvm_entry: vcpu 0") + "\n";
  }
  auto a = parse_tsc_offset_records(text);
  REQUIRE(a.has_value());
  std::istringstream in(text);  // longer than one read chunk: lines cross chunk borders
  auto b = read_tsc_offset_records(in);
  REQUIRE(b.has_value());
  CHECK(a->writes.size() == 5000);
  CHECK(a->writes == b->writes);
  CHECK(a->lines == b->lines);
  CHECK(a->lines_read == b->lines_read);
  CHECK(a->lines_read == 10001);
  CHECK(a->writes[4999] == tsc_offset_write{1'000'000'000'000ULL + 4999ULL * 1000ULL, 4999 % 3, 4999, 5000});
  CHECK(a->lines[4999] == 2 + 2 * 4999);
}

TEST_CASE("Records from a generated host trace locate a guest TSC write and give back the true host times") {
  const std::uint64_t seed = tsync_test::seed_for(20240611);
  INFO("seed " << seed);
  std::mt19937_64 g(seed);
  // A 3 GHz guest on a 2 GHz Intel host: ratio 1.5 * 2^48 (guest faster, so
  // host -> guest -> host is exact).
  const std::uint64_t ratio = (std::uint64_t{3} << 47);
  const std::uint8_t frac = 48;
  const tsync::kvm::tsc_params unit{0, ratio, frac};
  auto scaled = [&](std::uint64_t h) { return tsync::kvm::to_guest(h, unit); };
  // vCPU 0 was created at host T0 (guest TSC 0 there), before the trace
  // started. At T1 the guest writes its TSC back to 1000, at T2 back to 500.
  // vCPU 1 is created during the trace; its records are interleaved.
  const std::uint64_t base = 40'000'000'000ULL + (g() % 1'000'000);
  const std::uint64_t t0 = base + 1'000, t1 = base + 5'000'000, t2 = t1 + 3'000'000;
  const std::uint64_t o0 = 0 - scaled(t0), o1 = 1000 - scaled(t1), o2 = 500 - scaled(t2);
  const std::uint64_t v1 = 0 - scaled(t1 + 7);
  std::string trace = "# tracer: nop\n#\n";
  trace += tracefs_line("CPU 0/KVM", 4001, 2, t1 - 5, "kvm_entry: vcpu 0, rip 0xfff0") + "\n";
  trace += tracefs_line("CPU 0/KVM", 4001, 2, t1, tsc_body(0, o0, o1)) + "\n";
  trace += tracefs_line("CPU 1/KVM", 4002, 3, t1 + 7, tsc_body(1, 0, v1)) + "\n";
  trace += tracefs_line("CPU 0/KVM", 4001, 2, t2 - 3, "kvm_exit: reason MSR_WRITE rip 0x1 info 0 0") + "\n";
  trace += tracefs_line("CPU 0/KVM", 4001, 2, t2, tsc_body(0, o1, o2)) + "\n";
  trace += tracefs_line("CPU 1/KVM", 4002, 3, t2 + 50, tsc_body(1, v1, 77)) + "\n";
  std::istringstream in(trace);
  auto recs = read_tsc_offset_records(in);
  REQUIRE(recs.has_value());
  REQUIRE(recs->writes.size() == 4);
  CHECK(recs->lines == std::vector<std::size_t>{4, 5, 7, 8});
  auto periods = offset_periods::make(recs->writes, 0, ratio, frac);
  REQUIRE(periods.has_value());
  REQUIRE(periods->size() == 3);
  // A per-CPU guest stream: events at random host times after T0, in order.
  std::vector<std::uint64_t> host_truth;
  for (std::uint64_t h = t0 + 1 + g() % 100; h < t2 + 2'000'000; h += 1 + g() % 20'000) host_truth.push_back(h);
  std::vector<std::uint64_t> guest;
  for (auto h : host_truth) guest.push_back(periods->to_guest(h));
  auto res = resolve_offset_steps(*periods, guest);
  REQUIRE(res.has_value());
  CHECK(res->ambiguous_events() == 0);
  std::vector<std::uint64_t> out(guest.size());
  const auto st = steps_to_host(*periods, *res, guest, out);
  REQUIRE(st.has_value());
  CHECK(out == host_truth);
  // the writes are located at the first events after T1 and T2
  std::vector<std::size_t> firsts;
  for (std::uint64_t t : {t1, t2}) {
    std::size_t i = 0;
    while (host_truth[i] < t) ++i;
    firsts.push_back(i);
  }
  CHECK(res->switch_points() == firsts);
}

TEST_CASE("Random and truncated lines return cleanly") {
  const std::uint64_t seed = tsync_test::seed_for(987654321);
  INFO("seed " << seed);
  std::mt19937_64 g(seed);
  const std::vector<std::string> valid{
      tracefs_line("CPU 0/KVM", 41234, 3, 27951088470225859ULL, tsc_body(1, 18446744073709551516ULL, 77)),
      tracecmd_line("CPU 0/KVM", 5120, 1, 27951088470225859ULL, tsc_body(0, 11, 22)),
      "tsc: CPU 0/KVM-5120 [001] 999: (+12)    kvm:kvm_write_tsc_offset: vcpu=3 prev=1 next=2",
  };
  static constexpr char symbols[] = "0123456789 :.[]()+-=#\t\r\n\0xyz";
  const std::string alphabet = std::string(symbols, sizeof symbols - 1) + "vcpuprevnext_kvm";
  std::size_t records = 0, errors = 0, skipped = 0;
  auto feed = [&](const std::string& s) {
    auto r = parse_tsc_offset_line(s, 1);
    if (!r) {
      ++errors;
      CHECK(r.error().line == 1);
      CHECK_FALSE(r.error().message.empty());
    } else if (*r) {
      ++records;
    } else {
      ++skipped;
    }
    // the whole-text readers agree with each other on any text
    auto a = parse_tsc_offset_records(s);
    std::istringstream in(s);
    auto b = read_tsc_offset_records(in);
    REQUIRE(a.has_value() == b.has_value());
    if (a) {
      CHECK(a->writes == b->writes);
    } else {
      CHECK(a.error().line == b.error().line);
    }
  };
  for (const auto& v : valid)
    for (std::size_t n = 0; n <= v.size(); ++n) feed(v.substr(0, n));
  for (int i = 0; i < 3000; ++i) {
    std::string s = valid[g() % valid.size()];
    const int edits = 1 + static_cast<int>(g() % 4);
    for (int k = 0; k < edits; ++k) {
      const std::size_t at = g() % (s.size() + 1);
      switch (g() % 4) {
        case 0: if (at < s.size()) s[at] = alphabet[g() % alphabet.size()]; break;
        case 1: s.insert(at, 1, alphabet[g() % alphabet.size()]); break;
        case 2: if (at < s.size()) s.erase(at, 1 + g() % 8); break;
        default: s.insert(at, std::string(g() % 64, static_cast<char>('0' + g() % 10))); break;
      }
    }
    feed(s);
  }
  for (int i = 0; i < 500; ++i) {
    std::string s(g() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(g() & 0xff);
    if (g() % 2) s.insert(g() % (s.size() + 1), " kvm_write_tsc_offset: ");
    feed(s);
  }
  INFO("records " << records << " errors " << errors << " skipped " << skipped);
  CHECK(records > 0);
  CHECK(errors > 0);
  CHECK(skipped > 0);
}
