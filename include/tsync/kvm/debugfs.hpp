#pragma once
/// \file
/// Reader for KVM's per-vCPU TSC files in debugfs:
///
///     <root>/<vmm-pid>-<vm-fd>/vcpu<N>/tsc-offset                    signed decimal ("%lld\n")
///     <root>/<vmm-pid>-<vm-fd>/vcpu<N>/tsc-scaling-ratio             unsigned decimal, only with TSC scaling
///     <root>/<vmm-pid>-<vm-fd>/vcpu<N>/tsc-scaling-ratio-frac-bits   unsigned decimal, only with TSC scaling
///     <root>/<vmm-pid>-<vm-fd>/vcpu<N>/pid                           vCPU thread id (newer kernels; 0 before it ran)
///     <root>/<vmm-pid>-<vm-fd>/vcpu<N>/guest_mode                    1 while the vCPU runs a nested guest
///
/// `root` defaults to `/sys/kernel/debug/kvm`. `<N>` is KVM's vcpu_id (the APIC
/// ID for QEMU), which can be sparse: vCPUs are returned sorted by id with
/// their ids, never renumbered.
///
/// Caveats (see docs/kvm.md): the files show the values KVM currently uses,
/// which while a vCPU runs a nested guest (`guest_mode` 1) are the combined
/// L2 values, not L1's; and the files are read one after the other, not
/// atomically.
///
/// Files are read with bounded reads (at most 64 bytes) and parsed strictly:
/// decimal digits only, an optional leading '-' for the offset, one optional
/// trailing newline, no spaces, no '+', no leading zeros (the kernel never
/// prints any, and base-0 parsers would read them as octal).

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::kvm {

/// The default debugfs directory of KVM.
inline constexpr std::string_view default_debugfs_root = "/sys/kernel/debug/kvm";

/// One vCPU's TSC state as debugfs shows it.
struct vcpu_info {
  std::uint32_t id = 0;                       ///< KVM vcpu_id (directory `vcpu<id>`)
  tsc_params params{};                        ///< offset (u64 bits of tsc-offset), ratio, frac_bits
  bool has_scaling_files = false;             ///< false: no TSC scaling files (ratio 1, frac_bits 0)
  std::optional<std::uint64_t> thread_pid{};  ///< content of `pid` when present (0 = never ran)
  std::optional<bool> guest_mode{};           ///< content of `guest_mode` when present
  /// The offset as debugfs prints it.
  [[nodiscard]] constexpr std::int64_t tsc_offset() const noexcept { return params.signed_offset(); }
  friend bool operator==(const vcpu_info&, const vcpu_info&) = default;
};

/// A VM directory `<pid>-<fd>` under the root.
struct vm_ref {
  std::int64_t pid = 0;  ///< the VMM process that created the VM
  std::int64_t fd = 0;   ///< the VM file descriptor number in that process
  std::string path;      ///< full path of the directory
  friend bool operator==(const vm_ref&, const vm_ref&) = default;
};

/// A VM with its vCPUs (sorted by id).
struct vm_info {
  vm_ref ref;
  std::vector<vcpu_info> vcpus;
  /// The vCPU with this id, or nullptr.
  [[nodiscard]] const vcpu_info* find(std::uint32_t id) const noexcept {
    for (auto& v : vcpus)
      if (v.id == id) return &v;
    return nullptr;
  }
};

/// Deprecated (one release): the readers return `tsync::text_error` with the
/// file or directory in `field` and "path: reason" in `message` (`what()`).
using debugfs_error [[deprecated("use tsync::text_error (field: the path)")]] = text_error;

/// What to read.
struct debugfs_query {
  std::int64_t pid = 0;               ///< VMM process id
  std::optional<std::int64_t> fd{};   ///< VM fd; needed when the process has several VMs
  std::string root = std::string(default_debugfs_root);
};

/// Strict unsigned decimal as KVM prints it: digits only, no leading zero
/// unless the value is 0, no sign, no spaces. `errc::malformed_number` or
/// `errc::number_out_of_range`.
[[nodiscard]] constexpr expected<std::uint64_t, errc> parse_decimal_u64(std::string_view s) noexcept {
  if (s.empty()) return unexpected(errc::malformed_number);
  if (s.size() > 1 && s[0] == '0') return unexpected(errc::malformed_number);
  std::uint64_t v = 0;
  bool range = false;
  for (char c : s) {
    if (c < '0' || c > '9') return unexpected(errc::malformed_number);
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (range || v > (~std::uint64_t{0} - d) / 10) range = true;  // keep checking the digits, stop adding
    else v = v * 10 + d;
  }
  if (range) return unexpected(errc::number_out_of_range);
  return v;
}

/// Strict signed decimal: an optional '-', then as `parse_decimal_u64` ("-0" is malformed).
[[nodiscard]] constexpr expected<std::int64_t, errc> parse_decimal_i64(std::string_view s) noexcept {
  const bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  auto m = parse_decimal_u64(s);
  if (!m) return unexpected(m.error());
  if (neg && *m == 0) return unexpected(errc::malformed_number);
  constexpr std::uint64_t lim = std::uint64_t{1} << 63;
  if (neg) {
    if (*m > lim) return unexpected(errc::number_out_of_range);
    if (*m == lim) return std::numeric_limits<std::int64_t>::min();
    return -static_cast<std::int64_t>(*m);
  }
  if (*m >= lim) return unexpected(errc::number_out_of_range);
  return static_cast<std::int64_t>(*m);
}

namespace detail {

/// Strip exactly one trailing newline.
[[nodiscard]] constexpr std::string_view strip_newline(std::string_view s) noexcept {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

/// The error of `path`: `code`, the path as `field`, "path: why" as message
/// (`why` defaults to the code's description).
[[nodiscard]] inline text_error fs_error(errc code, const std::string& path, std::string_view why = {}) {
  return text_error{code, 0, path, quote_input(path, 4096) + ": " + (why.empty() ? std::string(to_string(code)) : std::string(why))};
}

/// An `errno` of `path`: `not_found`, `permission_denied`, else `io_error`
/// with the system's text.
[[nodiscard]] inline text_error errno_error(int e, const std::string& path) {
  if (e == EACCES || e == EPERM) return fs_error(errc::permission_denied, path);
  if (e == ENOENT || e == ENOTDIR) return fs_error(errc::not_found, path);
  return fs_error(errc::io_error, path, std::generic_category().message(e));
}

inline constexpr std::size_t max_file_bytes = 64;

/// Read a small file with at most `max_file_bytes` bytes; a longer file is an
/// error (number_out_of_range when its first bytes are a number's, else malformed).
[[nodiscard]] inline expected<std::string, text_error> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return unexpected(errno_error(errno, path));
  char buf[max_file_bytes + 1];
  std::size_t n = 0;
  while (n < sizeof buf) {
    const ssize_t r = ::read(fd, buf + n, sizeof buf - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return unexpected(errno_error(e, path));
    }
    if (r == 0) break;
    n += static_cast<std::size_t>(r);
  }
  ::close(fd);
  if (n > max_file_bytes) {
    std::string_view head(buf, max_file_bytes);
    if (!head.empty() && head[0] == '-') head.remove_prefix(1);
    const bool digits = !head.empty() && std::all_of(head.begin(), head.end(), [](char c) { return c >= '0' && c <= '9'; });
    return unexpected(detail::fs_error(digits ? errc::number_out_of_range : errc::malformed_number, path));
  }
  return std::string(buf, n);
}

/// Read and parse one number file. `present` is cleared (and success returned)
/// when the file does not exist and `optional_file` is set.
template <class T>
[[nodiscard]] inline expected<std::optional<T>, text_error> read_number(const std::string& path, bool optional_file) {
  auto text = read_small_file(path);
  if (!text) {
    if (optional_file && text.error().code == errc::not_found) return std::optional<T>{};
    return unexpected(text.error());
  }
  const std::string_view s = strip_newline(*text);
  if constexpr (std::is_signed_v<T>) {
    auto v = parse_decimal_i64(s);
    if (!v) return unexpected(detail::fs_error(v.error(), path));
    return std::optional<T>(*v);
  } else {
    auto v = parse_decimal_u64(s);
    if (!v) return unexpected(detail::fs_error(v.error(), path));
    return std::optional<T>(*v);
  }
}

/// Parse "<pid>-<fd>" (both strict decimal, non-negative, int range).
[[nodiscard]] inline std::optional<std::pair<std::int64_t, std::int64_t>> parse_vm_dir_name(std::string_view name) {
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto p = parse_decimal_u64(name.substr(0, dash));
  auto f = parse_decimal_u64(name.substr(dash + 1));
  if (!p || !f || *p > 0x7fffffffu || *f > 0x7fffffffu) return std::nullopt;
  return std::pair<std::int64_t, std::int64_t>{static_cast<std::int64_t>(*p), static_cast<std::int64_t>(*f)};
}

/// Parse "vcpu<N>".
[[nodiscard]] inline std::optional<std::uint32_t> parse_vcpu_dir_name(std::string_view name) {
  if (name.substr(0, 4) != "vcpu") return std::nullopt;
  auto v = parse_decimal_u64(name.substr(4));
  if (!v || *v > 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

/// The names of the subdirectories of `dir` (no "." and "..").
[[nodiscard]] inline expected<std::vector<std::string>, text_error> list_subdirs(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return unexpected(errno_error(errno, dir));
  std::vector<std::string> out;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) out.emplace_back(n);
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return unexpected(errno_error(err, dir));
  return out;
}

}  // namespace detail

/// Every VM directory under `root`, sorted by (pid, fd). Entries whose name is
/// not `<pid>-<fd>` are ignored. Errors: `errc::not_found` when `root` does
/// not exist (debugfs not mounted, or kvm not loaded); `errc::permission_denied`.
[[nodiscard]] inline expected<std::vector<vm_ref>, text_error> list_vms_detailed(
    const std::string& root = std::string(default_debugfs_root)) {
  auto names = detail::list_subdirs(root);
  if (!names) return unexpected(names.error());
  std::vector<vm_ref> out;
  for (auto& n : *names) {
    if (auto pf = detail::parse_vm_dir_name(n)) out.push_back(vm_ref{pf->first, pf->second, root + "/" + n});
  }
  std::sort(out.begin(), out.end(), [](const vm_ref& a, const vm_ref& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.fd < b.fd;
  });
  return out;
}
/// `list_vms_detailed` with a plain `std::error_code`.
[[nodiscard]] inline expected<std::vector<vm_ref>, std::error_code> list_vms(
    const std::string& root = std::string(default_debugfs_root)) {
  auto r = list_vms_detailed(root);
  if (!r) return unexpected(make_error_code(r.error().code));
  return std::move(*r);
}

/// Read one vCPU directory (`<vm>/vcpu<id>`).
[[nodiscard]] inline expected<vcpu_info, text_error> read_vcpu_detailed(const std::string& vcpu_dir, std::uint32_t id) {
  vcpu_info v;
  v.id = id;
  auto off = detail::read_number<std::int64_t>(vcpu_dir + "/tsc-offset", false);
  if (!off) return unexpected(off.error());
  const std::string ratio_path = vcpu_dir + "/tsc-scaling-ratio";
  const std::string frac_path = vcpu_dir + "/tsc-scaling-ratio-frac-bits";
  auto ratio = detail::read_number<std::uint64_t>(ratio_path, true);
  if (!ratio) return unexpected(ratio.error());
  auto frac = detail::read_number<std::uint64_t>(frac_path, true);
  if (!frac) return unexpected(frac.error());
  if (ratio->has_value() != frac->has_value())
    return unexpected(detail::fs_error(errc::incomplete_scaling, ratio->has_value() ? frac_path : ratio_path));
  v.params.offset = static_cast<std::uint64_t>(**off);
  if (ratio->has_value()) {
    const std::uint64_t f = **frac;
    if (f > 63) return unexpected(detail::fs_error(errc::bad_frac_bits, frac_path));
    v.params.frac_bits = static_cast<std::uint8_t>(f);
    v.params.ratio = **ratio;
    v.has_scaling_files = true;
    auto ok = validate(v.params);
    if (ok && f == intel.frac_bits) ok = validate(v.params, intel);
    if (ok && f == amd.frac_bits) ok = validate(v.params, amd);
    const errc e = ok ? errc::ok : ok.error();
    if (e != errc::ok) return unexpected(detail::fs_error(e, ratio_path));
  } else {
    v.params.ratio = 1;
    v.params.frac_bits = 0;
  }
  auto pid = detail::read_number<std::uint64_t>(vcpu_dir + "/pid", true);
  if (!pid) return unexpected(pid.error());
  v.thread_pid = *pid;
  auto gm = detail::read_number<std::uint64_t>(vcpu_dir + "/guest_mode", true);
  if (!gm) return unexpected(gm.error());
  if (gm->has_value()) v.guest_mode = **gm != 0;
  return v;
}

/// Read all vCPUs of one VM directory.
[[nodiscard]] inline expected<vm_info, text_error> read_vm_detailed(const vm_ref& ref) {
  vm_info vm;
  vm.ref = ref;
  auto names = detail::list_subdirs(ref.path);
  if (!names) return unexpected(names.error());
  for (auto& n : *names) {
    auto id = detail::parse_vcpu_dir_name(n);
    if (!id) continue;
    auto v = read_vcpu_detailed(ref.path + "/" + n, *id);
    if (!v) return unexpected(v.error());
    vm.vcpus.push_back(std::move(*v));
  }
  std::sort(vm.vcpus.begin(), vm.vcpus.end(), [](const vcpu_info& a, const vcpu_info& b) { return a.id < b.id; });
  return vm;
}

/// Find and read the VM of `q.pid` (and `q.fd` when given).
/// Errors (a `text_error`: `code`, the file or directory as `field`, and
/// "path: reason" as `message`):
/// `not_found` (no such VM, root missing, or a vCPU without `tsc-offset`),
/// `ambiguous_vm` (several VMs for the pid and no fd), `permission_denied`
/// (also when debugfs is locked down), `malformed_number`,
/// `number_out_of_range`, `incomplete_scaling`, `bad_frac_bits`,
/// `zero_ratio`, `ratio_above_max`; other I/O failures as `io_error` with the
/// system's text.
[[nodiscard]] inline expected<vm_info, text_error> read_vm_detailed(const debugfs_query& q) {
  if (q.fd) {
    // Look the directory up directly: works even when the root is not listable.
    const std::string path = q.root + "/" + std::to_string(q.pid) + "-" + std::to_string(*q.fd);
    return read_vm_detailed(vm_ref{q.pid, *q.fd, path});
  }
  auto vms = list_vms_detailed(q.root);
  if (!vms) return unexpected(vms.error());
  const vm_ref* found = nullptr;
  for (auto& r : *vms) {
    if (r.pid != q.pid) continue;
    if (found != nullptr) return unexpected(detail::fs_error(errc::ambiguous_vm, q.root + "/" + std::to_string(q.pid) + "-*"));
    found = &r;
  }
  if (found == nullptr) return unexpected(detail::fs_error(errc::not_found, q.root + "/" + std::to_string(q.pid) + "-*"));
  return read_vm_detailed(*found);
}

/// `read_vm_detailed` with a plain `std::error_code`.
[[nodiscard]] inline expected<vm_info, std::error_code> read_vm(const debugfs_query& q) {
  auto r = read_vm_detailed(q);
  if (!r) return unexpected(make_error_code(r.error().code));
  return std::move(*r);
}
/// Convenience: `read_vm({pid, fd, root})`.
[[nodiscard]] inline expected<vm_info, std::error_code> read_vm(std::int64_t pid, std::optional<std::int64_t> fd = std::nullopt,
                                                               std::string root = std::string(default_debugfs_root)) {
  return read_vm(debugfs_query{pid, fd, std::move(root)});
}

}  // namespace tsync::kvm
