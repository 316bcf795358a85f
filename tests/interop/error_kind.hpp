#pragma once
// What a trace.dat codec error carries, for the interop tests: a tsync::errc and,
// at the start of its message (after any field context), the finer kind.
#include <catch2/catch.hpp>

#include <string>

#include "tsync/core/error.hpp"

namespace tsync_interop_test {

struct kind {
  tsync::errc code;
  const char* text;
};

/// Whether `e` is of kind `want` (checked, so a mismatch fails the test case).
inline bool is(const tsync::byte_error& e, kind want) {
  INFO(e.what());
  CHECK(e.code == want.code);
  CHECK(e.message.find(std::string(want.text) + ": ") != std::string::npos);
  return e.code == want.code && e.message.find(std::string(want.text) + ": ") != std::string::npos;
}

}  // namespace tsync_interop_test
