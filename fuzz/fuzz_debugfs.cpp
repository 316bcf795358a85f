// libFuzzer target: the parsers of KVM's debugfs text (kvm/debugfs.hpp): the
// strict decimal of its number files and the VM / vCPU directory names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tsync/kvm/debugfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = tsync::kvm::parse_decimal_u64(text);
  if (v && std::to_string(*v) != text) std::abort();  // strict: the canonical text only
  (void)tsync::kvm::detail::parse_vm_dir_name(text);
  (void)tsync::kvm::detail::parse_vcpu_dir_name(text);
  return 0;
}
