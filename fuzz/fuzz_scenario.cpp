// libFuzzer target: the scenario text (sim/scenario.hpp). An accepted scenario
// is valid and round-trips through to_text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tsync/sim/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1 << 16)) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sc = tsync::sim::parse_scenario(text);
  if (!sc) return 0;
  if (!validate(*sc)) std::abort();
  auto again = tsync::sim::parse_scenario(tsync::sim::to_text(*sc));
  if (!again) std::abort();
  return 0;
}
