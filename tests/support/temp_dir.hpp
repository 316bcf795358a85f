#pragma once
// A fresh private directory for a test's sockets, FIFOs and files, removed
// with everything in it when the test ends.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <system_error>

namespace tsync::test {

struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const char* prefix = "tsync-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// The path of `name` inside the directory, as a string.
  [[nodiscard]] std::string operator/(const char* name) const { return (path / name).string(); }
};

}  // namespace tsync::test
