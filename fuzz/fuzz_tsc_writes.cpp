// libFuzzer target: the kvm_write_tsc_offset record reader
// (io/tsc_offset_records.hpp), from memory and streamed; both must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "tsync/io/tsc_offset_records.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = tsync::io::parse_tsc_offset_records(text);
  std::istringstream in{std::string(text)};
  auto b = tsync::io::read_tsc_offset_records(in);
  if (a.has_value() != b.has_value()) {
    if (b || b.error().code != tsync::errc::oversized) std::abort();
    return 0;
  }
  if (a && a->writes.size() != b->writes.size()) std::abort();
  return 0;
}
