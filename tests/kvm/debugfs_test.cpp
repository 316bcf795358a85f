// The debugfs reader on fake trees (every error by name) and, where possible,
// on a real VM created through /dev/kvm.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tsync/kvm.hpp"
#include "tsync/kvm/debugfs.hpp"

using namespace tsync;
using namespace tsync::kvm;
namespace fs = std::filesystem;

namespace {

// A temporary directory removed at scope exit.
class temp_tree {
 public:
  temp_tree() {
    std::string tmpl = (fs::temp_directory_path() / "tsync_kvm_debugfs_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) FAIL("mkdtemp failed");
    root_ = tmpl;
  }
  ~temp_tree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  temp_tree(const temp_tree&) = delete;
  temp_tree& operator=(const temp_tree&) = delete;
  [[nodiscard]] std::string root() const { return root_.string(); }
  void write(const std::string& rel, const std::string& content) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  void mkdir(const std::string& rel) const { fs::create_directories(root_ / rel); }
  // A vCPU with the given files ("" = omit).
  void vcpu(const std::string& vm, std::uint32_t id, const std::string& offset, const std::string& ratio = "",
            const std::string& frac = "", const std::string& pid = "") const {
    const std::string d = vm + "/vcpu" + std::to_string(id) + "/";
    mkdir(d);
    if (!offset.empty()) write(d + "tsc-offset", offset);
    if (!ratio.empty()) write(d + "tsc-scaling-ratio", ratio);
    if (!frac.empty()) write(d + "tsc-scaling-ratio-frac-bits", frac);
    if (!pid.empty()) write(d + "pid", pid);
  }

 private:
  fs::path root_;
};

errc code_of(const tsync::text_error& e) { return e.code; }

}  // namespace

TEST_CASE("strict decimal parsing accepts kernel output and rejects everything else") {
  CHECK(*parse_decimal_i64("-27950965013436847") == -27950965013436847);
  CHECK(*parse_decimal_i64("0") == 0);
  CHECK(*parse_decimal_i64("9223372036854775807") == INT64_MAX);
  CHECK(*parse_decimal_i64("-9223372036854775808") == INT64_MIN);
  CHECK(parse_decimal_i64("9223372036854775808").error() == errc::number_out_of_range);
  CHECK(parse_decimal_i64("-9223372036854775809").error() == errc::number_out_of_range);
  CHECK(*parse_decimal_u64("18446744073709551615") == ~std::uint64_t{0});
  CHECK(parse_decimal_u64("18446744073709551616").error() == errc::number_out_of_range);
  CHECK(parse_decimal_u64("99999999999999999999999").error() == errc::number_out_of_range);
  // Past the range the digits are still checked (and no longer accumulated).
  CHECK(parse_decimal_u64("99999999999999999999999x").error() == errc::malformed_number);
  for (const char* bad : {"", "-", "+5", " 5", "5 ", "1 2", "0x10", "010", "-0", "-012", "1e3", "12a", "\t7", "--1"}) {
    INFO("input '" << bad << "'");
    CHECK(parse_decimal_i64(bad).error() == errc::malformed_number);
  }
  CHECK(parse_decimal_u64("-5").error() == errc::malformed_number);
}

TEST_CASE("an unscaled VM with sparse vCPU ids is read with its ids sorted") {
  temp_tree t;
  t.vcpu("4242-12", 3, "-27950965013436847\n", "", "", "4300\n");
  t.vcpu("4242-12", 0, "-27950965013436847\n", "", "", "4299\n");
  t.vcpu("4242-12", 10, "-27950965013436800\n");
  t.write("4242-12/vcpu0/guest_mode", "0\n");
  t.write("4242-12/exits", "123\n");  // VM-level stat files are ignored
  t.mkdir("4242-12/notavcpu");
  auto vm = read_vm(4242, std::nullopt, t.root());
  REQUIRE(vm);
  CHECK(vm->ref.pid == 4242);
  CHECK(vm->ref.fd == 12);
  REQUIRE(vm->vcpus.size() == 3);
  CHECK(vm->vcpus[0].id == 0);
  CHECK(vm->vcpus[1].id == 3);
  CHECK(vm->vcpus[2].id == 10);
  CHECK(vm->vcpus[0].tsc_offset() == -27950965013436847);
  CHECK(vm->vcpus[0].params.offset == 18418793108696114769ULL);  // T1
  CHECK(vm->vcpus[0].params.is_unscaled());
  CHECK_FALSE(vm->vcpus[0].has_scaling_files);
  CHECK(vm->vcpus[0].thread_pid == std::optional<std::uint64_t>(4299));
  CHECK(vm->vcpus[0].guest_mode == std::optional<bool>(false));
  CHECK(vm->vcpus[1].thread_pid == std::optional<std::uint64_t>(4300));
  CHECK_FALSE(vm->vcpus[2].thread_pid.has_value());
  CHECK(vm->vcpus[2].tsc_offset() == -27950965013436800);
  REQUIRE(vm->find(3) != nullptr);
  CHECK(vm->find(1) == nullptr);
  // T2 through the read parameters.
  CHECK(*to_host(1234567890123ULL, vm->vcpus[0].params) == 27952199581326970ULL);
}

TEST_CASE("a scaled VM reads ratio and frac bits and converts T10") {
  temp_tree t;
  t.vcpu("77-9", 0, "-18633982886952159\n", "187650047023786\n", "48\n");
  auto vm = read_vm(77, 9, t.root());
  REQUIRE(vm);
  REQUIRE(vm->vcpus.size() == 1);
  const auto& p = vm->vcpus[0].params;
  CHECK(vm->vcpus[0].has_scaling_files);
  CHECK(p == tsc_params{static_cast<std::uint64_t>(-18633982886952159LL), 187650047023786ULL, 48});
  CHECK(*to_host(82304553443ULL, p) == 27951088470225859ULL);
}

TEST_CASE("files without a trailing newline are accepted") {
  temp_tree t;
  t.vcpu("5-6", 0, "-1", "4294967296", "32");
  auto vm = read_vm(5, std::nullopt, t.root());
  REQUIRE(vm);
  CHECK(vm->vcpus[0].tsc_offset() == -1);
  CHECK(vm->vcpus[0].params.is_unscaled());
}

TEST_CASE("list_vms lists VM directories sorted and ignores other entries") {
  temp_tree t;
  t.mkdir("300-15");
  t.mkdir("20-7");
  t.mkdir("20-5");
  t.mkdir("not-a-vm");
  t.mkdir("20-");
  t.write("vcpu_halt_poll", "0\n");
  auto vms = list_vms(t.root());
  REQUIRE(vms);
  REQUIRE(vms->size() == 3);
  CHECK((*vms)[0].pid == 20);
  CHECK((*vms)[0].fd == 5);
  CHECK((*vms)[1].fd == 7);
  CHECK((*vms)[2].pid == 300);
  CHECK((*vms)[2].path == t.root() + "/300-15");
}

TEST_CASE("error not_found for an unknown pid or fd or a missing root") {
  temp_tree t;
  t.vcpu("10-3", 0, "0\n");
  auto a = read_vm_detailed(debugfs_query{11, std::nullopt, t.root()});
  REQUIRE_FALSE(a);
  CHECK(code_of(a.error()) == errc::not_found);
  auto b = read_vm(10, 4, t.root());
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::not_found);
  auto c = read_vm(10, std::nullopt, t.root() + "/missing");
  REQUIRE_FALSE(c);
  CHECK(c.error() == errc::not_found);
  auto d = list_vms(t.root() + "/missing");
  REQUIRE_FALSE(d);
  CHECK(d.error() == errc::not_found);
}

TEST_CASE("error not_found names a vCPU directory without tsc-offset") {
  temp_tree t;
  t.mkdir("10-3/vcpu0");
  auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::not_found);
  CHECK(r.error().field == t.root() + "/10-3/vcpu0/tsc-offset");
  // the whole error: code, no line, the path as field, "path: reason" as message
  CHECK(r.error() == tsync::text_error{errc::not_found, 0, t.root() + "/10-3/vcpu0/tsc-offset",
                                       t.root() + "/10-3/vcpu0/tsc-offset: not found"});
  CHECK(r.error().what() == r.error().message);
}

TEST_CASE("error ambiguous_vm when a pid has two VMs and no fd is given") {
  temp_tree t;
  t.vcpu("10-3", 0, "0\n");
  t.vcpu("10-4", 0, "-5\n");
  auto r = read_vm(10, std::nullopt, t.root());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::ambiguous_vm);
  auto ok = read_vm(10, 4, t.root());
  REQUIRE(ok);
  CHECK(ok->vcpus[0].tsc_offset() == -5);
}

TEST_CASE("error malformed_number names the file") {
  temp_tree t;
  for (const char* bad : {"0x10\n", "010\n", " 5\n", "5 \n", "+5\n", "\n", "", "5\n\n", "1 2\n", "abc"}) {
    INFO("content '" << bad << "'");
    t.vcpu("10-3", 0, bad);
    auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::malformed_number);
    CHECK(r.error().field == t.root() + "/10-3/vcpu0/tsc-offset");
    CHECK(r.error().message.find("tsc-offset") != std::string::npos);
  }
  t.vcpu("10-3", 0, "1\n", "-4294967296\n", "32\n");
  auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::malformed_number);
  CHECK(r.error().field == t.root() + "/10-3/vcpu0/tsc-scaling-ratio");
}

TEST_CASE("error number_out_of_range for overflowing and overlong numbers") {
  temp_tree t;
  t.vcpu("10-3", 0, "-9223372036854775809\n");
  auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::number_out_of_range);
  CHECK(r.error().field == t.root() + "/10-3/vcpu0/tsc-offset");
  t.vcpu("10-3", 0, "5\n", "18446744073709551616\n", "48\n");
  auto r2 = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r2);
  CHECK(code_of(r2.error()) == errc::number_out_of_range);
  CHECK(r2.error().field == t.root() + "/10-3/vcpu0/tsc-scaling-ratio");
  // A huge file is not read to its end.
  t.vcpu("10-3", 0, std::string(1 << 20, '7'));
  auto r3 = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r3);
  CHECK(code_of(r3.error()) == errc::number_out_of_range);
  t.vcpu("10-3", 0, std::string(100, 'x'));
  auto r4 = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r4);
  CHECK(code_of(r4.error()) == errc::malformed_number);
}

TEST_CASE("error incomplete_scaling when one scaling file is missing") {
  temp_tree t;
  t.vcpu("10-3", 0, "5\n", "187650047023786\n", "");
  auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::incomplete_scaling);
  CHECK(r.error().field == t.root() + "/10-3/vcpu0/tsc-scaling-ratio-frac-bits");
  temp_tree t2;
  t2.vcpu("10-3", 0, "5\n", "", "48\n");
  auto r2 = read_vm_detailed(debugfs_query{10, 3, t2.root()});
  REQUIRE_FALSE(r2);
  CHECK(code_of(r2.error()) == errc::incomplete_scaling);
  CHECK(r2.error().field == t2.root() + "/10-3/vcpu0/tsc-scaling-ratio");
}

TEST_CASE("invalid scaling values are rejected with their error") {
  temp_tree t;
  t.vcpu("10-3", 0, "5\n", "0\n", "48\n");
  CHECK(read_vm(10, 3, t.root()).error() == errc::zero_ratio);
  t.vcpu("10-3", 0, "5\n", "1\n", "64\n");
  CHECK(read_vm(10, 3, t.root()).error() == errc::bad_frac_bits);
  t.vcpu("10-3", 0, "5\n", "1099511627776\n", "32\n");  // above AMD's 0xffffffffff
  CHECK(read_vm(10, 3, t.root()).error() == errc::ratio_above_max);
}

TEST_CASE("error permission_denied when the files cannot be read") {
  temp_tree t;
  REQUIRE(::chmod(t.root().c_str(), 0755) == 0);  // mkdtemp makes it 0700
  t.vcpu("10-3", 0, "5\n");
  const std::string file = t.root() + "/10-3/vcpu0/tsc-offset";
  REQUIRE(::chmod(file.c_str(), 0) == 0);
  REQUIRE(::chmod((t.root() + "/10-3").c_str(), 0) == 0);
  // Root ignores file modes: check in a child that has dropped its privileges.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    auto a = read_vm(10, std::nullopt, t.root());     // listing the VM directory is denied
    auto b = read_vm(10, 3, t.root());
    int rc = 0;
    if (a || a.error() != errc::permission_denied) rc |= 1;
    if (b || b.error() != errc::permission_denied) rc |= 2;
    ::_exit(rc);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  ::chmod((t.root() + "/10-3").c_str(), 0755);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) {
    WARN("could not drop privileges: permission test skipped");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);
  // And the file alone, with the directory readable.
  const pid_t child2 = ::fork();
  REQUIRE(child2 >= 0);
  if (child2 == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    auto r = read_vm_detailed(debugfs_query{10, 3, t.root()});
    ::_exit(!r && code_of(r.error()) == errc::permission_denied && r.error().field == file ? 0 : 1);
  }
  REQUIRE(::waitpid(child2, &status, 0) == child2);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ---------------------------------------------------------------------------
// A real VM (skipped cleanly where /dev/kvm or debugfs is unavailable)
// ---------------------------------------------------------------------------

namespace {
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};
bool kvm_debugfs_available() {
  struct stat st{};
  if (::stat("/sys/kernel/debug/kvm", &st) == 0) return true;
  if (::geteuid() != 0) return false;
  // Mount debugfs where the kernel documents it, if it is not mounted yet.
  if (::mount("debugfs", "/sys/kernel/debug", "debugfs", 0, nullptr) != 0) return false;
  return ::stat("/sys/kernel/debug/kvm", &st) == 0;
}
}  // namespace

TEST_CASE("a real VM created through dev kvm is read back with sparse vCPU ids") {
  fd_guard kvm{::open("/dev/kvm", O_RDWR | O_CLOEXEC)};
  if (kvm.fd < 0) {
    WARN("/dev/kvm is not usable: real-VM test skipped");
    return;
  }
  fd_guard vm{::ioctl(kvm.fd, KVM_CREATE_VM, 0UL)};
  if (vm.fd < 0) {
    WARN("KVM_CREATE_VM failed: real-VM test skipped");
    return;
  }
  fd_guard c0{::ioctl(vm.fd, KVM_CREATE_VCPU, 0UL)};
  fd_guard c3{::ioctl(vm.fd, KVM_CREATE_VCPU, 3UL)};
  if (c0.fd < 0 || c3.fd < 0) {
    WARN("KVM_CREATE_VCPU failed: real-VM test skipped");
    return;
  }
  if (!kvm_debugfs_available()) {
    WARN("debugfs with a kvm directory is not available: real-VM test skipped");
    return;
  }
  const std::string root(default_debugfs_root);
  auto vms = list_vms(root);
  if (!vms && vms.error() == errc::permission_denied) {
    WARN("debugfs is not readable (locked down?): real-VM test skipped");
    return;
  }
  REQUIRE(vms);
  bool listed = false;
  for (auto& r : *vms) listed = listed || (r.pid == ::getpid() && r.fd == vm.fd);
  if (!listed) {
    WARN("this process's VM is not under " << root << " (pid namespace?): real-VM test skipped");
    return;
  }
  auto info = read_vm_detailed(debugfs_query{::getpid(), vm.fd, root});
  if (!info) FAIL(info.error().what());
  REQUIRE(info->vcpus.size() == 2);
  CHECK(info->vcpus[0].id == 0);
  CHECK(info->vcpus[1].id == 3);
  for (auto& v : info->vcpus) {
    INFO("vcpu " << v.id << " tsc-offset " << v.tsc_offset());
    // Whatever the host uptime, the offset is a valid int64 and the parameters validate.
    CHECK(validate(v.params).has_value());
    if (v.has_scaling_files) CHECK((v.params.frac_bits == 48 || v.params.frac_bits == 32));
    // A freshly created vCPU starts near guest TSC 0: converting 0 gives a host
    // tick (no overflow) for the default (unscaled) frequency.
    CHECK(to_host(std::uint64_t{0}, v.params).has_value());
    if (v.thread_pid) CHECK(*v.thread_pid < (std::uint64_t{1} << 32));
  }
  // Without the fd the pid alone finds it (this process has one VM).
  auto by_pid = read_vm(::getpid(), std::nullopt, root);
  REQUIRE(by_pid);
  CHECK(by_pid->ref.fd == vm.fd);
}
