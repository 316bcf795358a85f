#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tsync/sync/registry.hpp"

using namespace tsync;
using namespace tsync::sync;
using tsync::clock::trace_clock_id;

namespace {
expected<void, std::error_code> readable() { return {}; }
expected<void, std::error_code> locked_down() { return unexpected(make_error_code(errc::permission_denied)); }

std::filesystem::path fresh_dir(const char* name) {
  auto p = std::filesystem::path(TSYNC_TEST_BINARY_DIR) / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}
void write(const std::filesystem::path& p, const char* text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("x86-tsc on both sides with readable debugfs chooses kvm and explains probe") {
  selection_input in;
  in.host_clock = trace_clock_id::x86_tsc;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.kvm_check = readable;
  auto s = select_protocol(in);
  REQUIRE(s.chosen);
  CHECK(*s.chosen == protocol::kvm);
  REQUIRE(s.decisions.size() == 2);
  CHECK(s.decisions[0].proto == protocol::kvm);
  CHECK(s.decisions[0].chosen);
  CHECK(s.decisions[1].proto == protocol::probe);
  CHECK_FALSE(s.decisions[1].chosen);
  CHECK(s.decisions[1].reason.find("preferred") != std::string::npos);
}

TEST_CASE("locked-down debugfs falls back to probes and says why") {
  selection_input in;
  in.host_clock = trace_clock_id::x86_tsc;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.kvm_check = locked_down;
  auto s = select_protocol(in);
  REQUIRE(s.chosen);
  CHECK(*s.chosen == protocol::probe);
  CHECK_FALSE(s.decisions[0].chosen);
  CHECK(s.decisions[0].reason.find("not readable") != std::string::npos);
  CHECK(s.decisions[0].reason.find("permission denied") != std::string::npos);
  CHECK(s.decisions[1].chosen);
}

TEST_CASE("kvm is refused for clocks other than x86-tsc even when debugfs reads") {
  selection_input in;
  in.host_clock = trace_clock_id::mono_raw;
  in.guest_clock = trace_clock_id::mono_raw;
  bool called = false;
  in.kvm_check = [&]() -> expected<void, std::error_code> {
    called = true;
    return {};
  };
  auto s = select_protocol(in);
  REQUIRE(s.chosen);
  CHECK(*s.chosen == protocol::probe);
  CHECK_FALSE(called);  // no point reading debugfs for a pairing kvm cannot serve
  CHECK(s.decisions[0].reason.find("x86-tsc") != std::string::npos);
}

TEST_CASE("no kvm check and no transport leaves nothing chosen with reasons") {
  selection_input in;
  in.host_clock = trace_clock_id::x86_tsc;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.have_transport = false;
  auto s = select_protocol(in);
  CHECK_FALSE(s.chosen);
  REQUIRE(s.decisions.size() == 2);
  CHECK(s.decisions[0].reason.find("no KVM VM") != std::string::npos);
  CHECK(s.decisions[1].reason == "no transport to the peer");
}

TEST_CASE("an unsynchronizable pairing is refused by every protocol") {
  selection_input in;
  in.host_clock = trace_clock_id::local;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.kvm_check = readable;
  auto s = select_protocol(in);
  CHECK_FALSE(s.chosen);
  for (auto& d : s.decisions) {
    CHECK_FALSE(d.chosen);
    CHECK_FALSE(d.reason.empty());
  }
}

TEST_CASE("the preference order is honoured and duplicates are ignored") {
  selection_input in;
  in.host_clock = trace_clock_id::x86_tsc;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.kvm_check = readable;
  in.preference = {protocol::probe, protocol::kvm, protocol::probe};
  auto s = select_protocol(in);
  REQUIRE(s.chosen);
  CHECK(*s.chosen == protocol::probe);
  CHECK(s.decisions.size() == 2);
}

TEST_CASE("protocol names parse exactly") {
  CHECK(parse_protocol("kvm") == protocol::kvm);
  CHECK(parse_protocol("probe") == protocol::probe);
  CHECK_FALSE(parse_protocol("ptp").has_value());
  CHECK_FALSE(parse_protocol("KVM").has_value());
  CHECK(to_string(protocol::kvm) == "kvm");
}

TEST_CASE("check_kvm_debugfs reads every vCPU of the VM") {
  auto root = fresh_dir("fake_debugfs_ok");
  write(root / "kvm" / "1234-11" / "vcpu0" / "tsc-offset", "-123456789\n");
  write(root / "kvm" / "1234-11" / "vcpu1" / "tsc-offset", "42\n");
  write(root / "kvm" / "999-3" / "vcpu0" / "tsc-offset", "0\n");
  CHECK(check_kvm_debugfs({1234, std::nullopt, (root / "kvm").string()}).has_value());
  CHECK(check_kvm_debugfs({1234, 11, (root / "kvm").string()}).has_value());
  CHECK(check_kvm_debugfs({1234, 12, (root / "kvm").string()}).error() == make_error_code(errc::not_found));
  CHECK(check_kvm_debugfs({123, std::nullopt, (root / "kvm").string()}).error() == make_error_code(errc::not_found));  // not a prefix match
  CHECK(check_kvm_debugfs({1234, std::nullopt, (root / "nowhere").string()}).error() == make_error_code(errc::not_found));
  std::filesystem::remove_all(root);
}

TEST_CASE("check_kvm_debugfs reports ambiguity and malformed files") {
  auto root = fresh_dir("fake_debugfs_bad");
  write(root / "kvm" / "77-10" / "vcpu0" / "tsc-offset", "1\n");
  write(root / "kvm" / "77-12" / "vcpu0" / "tsc-offset", "x1\n");
  write(root / "kvm" / "88-1" / "other" / "file", "1\n");
  write(root / "kvm" / "89-1" / "vcpu0" / "tsc-scaling-ratio", "1\n");
  CHECK(check_kvm_debugfs({77, std::nullopt, (root / "kvm").string()}).error() == make_error_code(errc::ambiguous_vm));
  CHECK(check_kvm_debugfs({77, 10, (root / "kvm").string()}).has_value());
  CHECK(check_kvm_debugfs({77, 12, (root / "kvm").string()}).error() == make_error_code(errc::malformed_number));
  CHECK(check_kvm_debugfs({88, std::nullopt, (root / "kvm").string()}).error() == make_error_code(errc::not_found));
  CHECK_FALSE(check_kvm_debugfs({89, std::nullopt, (root / "kvm").string()}).has_value());
  std::filesystem::remove_all(root);
}

TEST_CASE("a real debugfs check plugs into the selection") {
  auto root = fresh_dir("fake_debugfs_sel");
  write(root / "kvm" / "5-1" / "vcpu0" / "tsc-offset", "-5\n");
  selection_input in;
  in.host_clock = trace_clock_id::x86_tsc;
  in.guest_clock = trace_clock_id::x86_tsc;
  in.kvm_check = [&] { return check_kvm_debugfs({5, std::nullopt, (root / "kvm").string()}); };
  CHECK(select_protocol(in).chosen == protocol::kvm);
  in.kvm_check = [&] { return check_kvm_debugfs({6, std::nullopt, (root / "kvm").string()}); };
  auto s = select_protocol(in);
  CHECK(s.chosen == protocol::probe);
  CHECK(s.decisions[0].reason.find("not found") != std::string::npos);
  std::filesystem::remove_all(root);
}
