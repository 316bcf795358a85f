// libFuzzer target: the JSON reader and the model's JSON form. An accepted
// model writes back to JSON that reads to an equal model.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tsync/estimate/model.hpp"
#include "tsync/io/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tsync::io::json::parse(text, {.max_bytes = 1 << 20, .max_values = 1 << 14});
  tsync::text_error err;
  auto m = tsync::estimate::model::from_json(text, &err);
  if (!m) return 0;
  auto again = tsync::estimate::model::from_json(m->to_json());
  if (!again) std::abort();
  if (again->to_json() != m->to_json()) std::abort();
  return 0;
}
