// libFuzzer target: the probes CSV reader (io/probes_csv.hpp), from memory and
// from a stream; both must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "tsync/io/probes_csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = tsync::io::read_probes_csv(text);
  std::istringstream in{std::string(text)};
  auto b = tsync::io::read_probes_csv(in);
  if (a.has_value() != b.has_value()) {
    // The stream reader has caps the in-memory one has not: only those may differ.
    if (b || b.error().code != tsync::errc::oversized) std::abort();
    return 0;
  }
  if (a && a->size() != b->size()) std::abort();
  if (!a && a.error().message.find('\0') != std::string::npos) std::abort();
  return 0;
}
