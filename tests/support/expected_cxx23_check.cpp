// Compiled as C++23 (where g++'s library has std::expected): tsync::expected
// must still be tsync's own type, so its behaviour does not depend on -std.
#include <type_traits>
#include <version>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

#if defined(__cpp_lib_expected)
#include <expected>
static_assert(!std::is_same_v<tsync::expected<int, tsync::errc>, std::expected<int, tsync::errc>>);
#endif
static_assert(std::is_same_v<tsync::expected<int, tsync::errc>::unexpected_type, tsync::unexpected<tsync::errc>>);

int main() {
  tsync::expected<int, tsync::errc> e = tsync::unexpected(tsync::errc::overflow);
  return e.has_value() ? 1 : 0;
}
