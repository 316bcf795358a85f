// The compiled print formats (io/tracecmd_info.hpp) against libtraceevent's
// own printing, on crafted event formats and records: every conversion the
// compiled path takes, edge values, both byte orders, short records and broken
// dynamic strings; and the formats it must leave to libtraceevent. The real
// files are covered by tracecmd_events_test.cpp (its differential against
// `trace-cmd report` goes through the compiled path) and by the test below
// that compares both paths on every event of the committed files.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tsync/io/tracecmd_events.hpp"
#include "tsync/io/tracecmd_info.hpp"

namespace {

using tsync::io::detail::info_program;

// Common fields as the kernel writes them, then the event's own.
const char* const common =
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";

const char* const fields =
    "\tfield:int a;\toffset:8;\tsize:4;\tsigned:1;\n"
    "\tfield:unsigned char b;\toffset:12;\tsize:1;\tsigned:0;\n"
    "\tfield:short c;\toffset:14;\tsize:2;\tsigned:1;\n"
    "\tfield:long d;\toffset:16;\tsize:8;\tsigned:1;\n"
    "\tfield:unsigned long args[3];\toffset:24;\tsize:24;\tsigned:0;\n"
    "\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;\n"
    "\tfield:__data_loc char[] name;\toffset:64;\tsize:4;\tsigned:0;\n\n";

constexpr int fixed_size = 68;  // the fields above; a dynamic string follows

std::string event_text(int id, const std::string& name, const std::string& print) {
  return "name: " + name + "\nID: " + std::to_string(id) + "\n" + common + fields + "print fmt: " + print + "\n";
}

struct parser {
  tep_handle* tep = tep_alloc();
  explicit parser(bool big_endian) {
    tep_set_long_size(tep, 8);
    tep_set_file_bigendian(tep, big_endian ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
    tep_set_local_bigendian(tep, TEP_LITTLE_ENDIAN);
  }
  ~parser() { tep_free(tep); }
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;
  tep_event* parse(int id, const std::string& name, const std::string& print) {
    const std::string text = event_text(id, name, print);
    tep_event* ev = nullptr;
    if (tep_parse_format(tep, &ev, text.c_str(), text.size(), "tsx") != 0) return nullptr;
    return ev;
  }
};

std::uint64_t next(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void put(std::vector<unsigned char>& d, std::size_t off, std::uint64_t v, int n, bool big) {
  for (int i = 0; i < n; ++i) {
    const int shift = 8 * (big ? n - 1 - i : i);
    d[off + static_cast<std::size_t>(i)] = static_cast<unsigned char>((v >> shift) & 0xffu);
  }
}

std::string reference(tep_handle* tep, std::vector<unsigned char>& d, int size) {
  tep_record r{};
  r.data = d.data();
  r.size = size;
  trace_seq s;
  trace_seq_init(&s);
  tep_print_event(tep, &s, &r, "%s", TEP_PRINT_INFO);
  std::string out(s.buffer != nullptr ? s.buffer : "", s.buffer != nullptr ? s.len : 0);
  trace_seq_destroy(&s);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

const std::uint64_t edges[] = {0,
                               1,
                               0x7f,
                               0x80,
                               0xff,
                               0x7fff,
                               0x8000,
                               0xffff,
                               0x7fffffff,
                               0x80000000,
                               0xffffffff,
                               0x100000000,
                               0x7fffffffffffffff,
                               0x8000000000000000,
                               0xffffffffffffffff};

// A record of event `id` with every field drawn from `seed` (edge values half the time).
std::vector<unsigned char> record(int id, std::uint64_t& seed, bool big, const std::string& dyn) {
  std::vector<unsigned char> d(static_cast<std::size_t>(fixed_size) + dyn.size() + 1, 0);
  put(d, 0, static_cast<std::uint64_t>(id), 2, big);
  put(d, 4, 4242, 4, big);
  const auto value = [&]() { return (next(seed) & 1) != 0 ? edges[next(seed) % std::size(edges)] : next(seed); };
  put(d, 8, value(), 4, big);
  put(d, 12, value(), 1, big);
  put(d, 14, value(), 2, big);
  put(d, 16, value(), 8, big);
  for (std::size_t k = 0; k < 3; ++k) put(d, 24 + 8 * k, value(), 8, big);
  const std::size_t comm_len = next(seed) % 17;  // 16: no NUL in the array
  for (std::size_t k = 0; k < comm_len; ++k) d[48 + k] = static_cast<unsigned char>('a' + next(seed) % 26);
  std::memcpy(d.data() + fixed_size, dyn.data(), dyn.size());
  put(d, 64, static_cast<std::uint64_t>(fixed_size) | (static_cast<std::uint64_t>(dyn.size() + 1) << 16), 4, big);
  return d;
}

const char* const all_conversions =
    "\"a=%d a5=%5d a0=%05d al=%-6d| au=%u ax=%x aX=%X ao=%o a#=%#x ai=%i b=%hhd bu=%hhu bx=%hhx c=%hd cu=%hu "
    "d=%ld du=%lu dx=%lx dz=%zd dL=%Ld dll=%lld dllu=%llu dllx=%llx d#=%#lx dw=%20lu dp=%.3ld | args=%lx,%lx,%lu "
    "comm=%s c8=%-8s c20=%20s cp=%.3s | name=%s n9=%9s %% tab\\t nl\\\\n\", REC->a, REC->a, REC->a, REC->a, "
    "REC->a, REC->a, REC->a, REC->a, REC->a, REC->a, REC->b, REC->b, REC->b, REC->c, REC->c, REC->d, REC->d, "
    "REC->d, REC->d, REC->d, REC->d, REC->d, REC->d, REC->d, REC->d, REC->d, REC->args[0], REC->args[1], REC->args[2], "
    "REC->comm, REC->comm, REC->comm, REC->comm, __get_str(name), __get_str(name)";

void check_random_records(bool big) {
  parser p(big);
  tep_event* ev = p.parse(700, "all", all_conversions);
  REQUIRE(ev != nullptr);
  const info_program prog = info_program::compile(p.tep, ev);
  REQUIRE(prog.ok());
  std::uint64_t seed = big ? 0x9e3779b97f4a7c15u : 0x2545f4914f6cdd1du;
  for (int i = 0; i < 3000; ++i) {
    std::string dyn;
    const std::size_t n = next(seed) % 24;
    for (std::size_t k = 0; k < n; ++k) dyn += static_cast<char>('A' + next(seed) % 26);
    auto d = record(700, seed, big, dyn);
    std::string mine;
    REQUIRE(prog.print(d.data(), static_cast<int>(d.size()), mine));
    const std::string ref = reference(p.tep, d, static_cast<int>(d.size()));
    INFO("record " << i);
    REQUIRE(mine == ref);
  }
}

}  // namespace

TEST_CASE("compiled print formats print what libtraceevent prints, conversion by conversion (little-endian file)",
          "[tracecmd]") {
  check_random_records(false);
}

TEST_CASE("compiled print formats read big-endian files as libtraceevent does", "[tracecmd]") {
  check_random_records(true);
}

TEST_CASE("a record too short for a field, or a dynamic string without NUL, goes back to libtraceevent",
          "[tracecmd]") {
  parser p(false);
  tep_event* ev = p.parse(701, "short", "\"d=%ld name=%s\", REC->d, __get_str(name)");
  REQUIRE(ev != nullptr);
  const info_program prog = info_program::compile(p.tep, ev);
  REQUIRE(prog.ok());
  std::uint64_t seed = 7;
  auto d = record(701, seed, false, "xyz");
  std::string out;
  CHECK(prog.print(d.data(), static_cast<int>(d.size()), out));
  CHECK(out == reference(p.tep, d, static_cast<int>(d.size())));
  out.clear();
  CHECK_FALSE(prog.print(d.data(), 20, out));  // d (offset 16, 8 bytes) runs past a 20-byte record
  // a length that fits but no NUL before the record's end (libtraceevent would read on)
  put(d, 64, static_cast<std::uint64_t>(fixed_size) | (3u << 16), 4, false);
  out.clear();
  CHECK_FALSE(prog.print(d.data(), fixed_size + 3, out));
  // a length running past the record prints nothing, as libtraceevent does
  put(d, 64, static_cast<std::uint64_t>(fixed_size) | (200u << 16), 4, false);
  out.clear();
  CHECK(prog.print(d.data(), static_cast<int>(d.size()), out));
  CHECK(out == reference(p.tep, d, static_cast<int>(d.size())));
  CHECK(out == "d=" + std::to_string(static_cast<long>(d[16]) | (static_cast<long>(d[17]) << 8) |
                                     (static_cast<long>(d[18]) << 16) | (static_cast<long>(d[19]) << 24) |
                                     (static_cast<long>(d[20]) << 32) | (static_cast<long>(d[21]) << 40) |
                                     (static_cast<long>(d[22]) << 48) | (static_cast<long>(d[23]) << 56)) +
                   " name=");
  // an offset beyond the record: libtraceevent reads at offset 0; the compiled path declines
  put(d, 64, 5000u | (4u << 16), 4, false);
  out.clear();
  CHECK_FALSE(prog.print(d.data(), static_cast<int>(d.size()), out));
}

TEST_CASE("__print_symbolic with numeric values prints the matching entry, or the value in hex", "[tracecmd]") {
  parser p(false);
  tep_event* ev = p.parse(702, "sym",
                          "\"vec=%u [action=%s] w=%-6s|\", REC->b, __print_symbolic(REC->b, { 0, \"HI\" }, "
                          "{ 1, \"TIMER\" }, { 0x10, \"SIXTEEN\" }, { 010, \"EIGHT\" }, "
                          "{ 1, \"SHADOWED\" }), __print_symbolic(REC->c, { 255, \"FF\" })");
  REQUIRE(ev != nullptr);
  const info_program prog = info_program::compile(p.tep, ev);
  REQUIRE(prog.ok());
  std::uint64_t seed = 99;
  int named = 0;
  for (int i = 0; i < 2000; ++i) {
    auto d = record(702, seed, false, "x");
    d[12] = static_cast<unsigned char>(i % 20);  // b: 0..19, some with names
    if (i % 3 == 0) put(d, 14, 255, 2, false);
    std::string mine;
    REQUIRE(prog.print(d.data(), static_cast<int>(d.size()), mine));
    INFO("record " << i);
    REQUIRE(mine == reference(p.tep, d, static_cast<int>(d.size())));
    named += mine.find("action=EIGHT") != std::string::npos ? 1 : 0;
  }
  CHECK(named == 100);  // 010 is octal (eight), as libtraceevent reads it
}

TEST_CASE("formats the compiled path does not reproduce are left to libtraceevent", "[tracecmd]") {
  parser p(false);
  int id = 710;
  for (const char* fmt : {"\"p=%p\", REC->d", "\"ps=%pS\", REC->d", "\"c=%c\", REC->a", "\"plus=%+d\", REC->a", "\"w=%*d\", REC->a, REC->a",
                          "\"s=%s\", __print_symbolic(REC->a, { NOT_A_NUMBER, \"zero\" }, { 1, \"one\" })",
                          "\"f=%s\", __print_flags(REC->a, \"|\", { 1, \"A\" })", "\"cast=%d\", (int)REC->d",
                          "\"sum=%d\", REC->a + 1", "\"ptr=%s\", REC->d", "\"idx=%lx\", REC->args[REC->a]",
                          "\"few=%d %d\", REC->a", "\"nofield=%d\", REC->nosuch"}) {
    INFO(fmt);
    tep_event* ev = p.parse(id, "ev" + std::to_string(id), fmt);
    ++id;
    REQUIRE(ev != nullptr);  // libtraceevent reads every one of them
    CHECK_FALSE(info_program::compile(p.tep, ev).ok());
  }
  // and a plain format compiles
  tep_event* ok = p.parse(id, "plain", "\"NR %ld (%lx, %lx)\", REC->d, REC->args[0], REC->args[1]");
  REQUIRE(ok != nullptr);
  CHECK(info_program::compile(p.tep, ok).ok());
}

TEST_CASE("both paths print the same text for every event of the committed trace-cmd files", "[tracecmd]") {
  const std::string dir = std::string(TSYNC_TEST_SOURCE_DIR) + "/io/tracecmd/data";
  std::uint64_t events = 0;
  std::uint64_t compiled = 0;
  for (const char* name : {"host.dat", "guest.dat", "local_v6.dat", "b7_host.dat", "b7_guest.dat"}) {
    auto f = tsync::io::tracecmd_file::open(dir + "/" + name);
    REQUIRE(f.has_value());
    for (std::size_t b = 0; b < f->buffer_count(); ++b) {
      tsync::io::tracecmd_buffer& buf = f->buffer(b);
      for (std::uint32_t cpu = 0; cpu < buf.cpu_count(); ++cpu)
        for (const tsync::io::tracecmd_event* e = buf.peek(cpu); e != nullptr; buf.pop(cpu), e = buf.peek(cpu)) {
          const std::string mine(buf.info(*e));
          const std::string ref(buf.info_libtraceevent(*e));
          INFO(name << " cpu " << cpu << " " << e->system << ":" << e->name << " ts " << e->ts);
          REQUIRE(mine == ref);
          ++events;
        }
      compiled += buf.compiled_infos();
    }
  }
  INFO(events << " events, " << compiled << " printed by the compiled formats");
  CHECK(events > 1000);
  CHECK(compiled > 100);  // sched_switch (most of these files) has a plugin handler: libtraceevent prints it
}
