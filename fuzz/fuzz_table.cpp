// libFuzzer target: the sync-table CSV reader (io/table_csv.hpp).
// Properties: no crash, no hang, bounded memory; an accepted table writes back
// to text that reads to the same samples.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tsync/io/table_csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  auto t = tsync::io::parse_table_csv(in, {.max_bytes = 1 << 20, .max_line = 4096});
  if (!t) {
    if (t.error().message.find('\0') != std::string::npos) std::abort();
    return 0;
  }
  if (t->samples.size() != t->lines.size()) std::abort();
  std::ostringstream out;
  tsync::io::write_table_csv(out, t->samples, "fuzz");
  std::istringstream back(out.str());
  auto again = tsync::io::parse_table_csv(back);
  if (!again || again->samples.size() != t->samples.size()) std::abort();
  std::istringstream in2(text);
  (void)tsync::io::load_table_csv(in2);
  return 0;
}
