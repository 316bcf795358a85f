#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <type_traits>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

using tsync::errc;
using tsync::expected;
using tsync::unexpected;

namespace {
// Run `fn` in a child with stderr captured; true when the child died of SIGABRT
// after writing a message containing `needle`.
template <class Fn> bool aborts_with(Fn fn, const std::string& needle) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    fn();
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && out.find(needle) != std::string::npos;
}
}  // namespace

TEST_CASE("expected holds a value or an error and never throws") {
  expected<int, errc> v = 3;
  expected<int, errc> e = unexpected(errc::overflow);
  CHECK(v.has_value());
  CHECK(*v == 3);
  CHECK(v.value_or(7) == 3);
  CHECK_FALSE(e.has_value());
  CHECK(e.error() == errc::overflow);
  CHECK(e.value_or(7) == 7);
  static_assert(noexcept(*v));
  static_assert(noexcept(e.error()));
}

TEST_CASE("expected is tsync's own type whatever the standard library offers") {
  // The alias must not name std::expected under any -std: the same source
  // compiled as C++23 is checked by tsync_expected_cxx23_check.
  static_assert(std::is_same_v<expected<int, errc>::unexpected_type, tsync::unexpected<errc>>);
  SUCCEED();
}

TEST_CASE("value on an error aborts with a message") {
  CHECK(aborts_with([] {
    expected<int, errc> e = unexpected(errc::overflow);
    std::printf("%d", e.value());
  }, "value() on an expected holding an error"));
}

#if TSYNC_CHECKED
TEST_CASE("operator star on an error aborts with a message in checked builds") {
  CHECK(aborts_with([] {
    expected<int, errc> e = unexpected(errc::not_found);
    std::printf("%d", *e);
  }, "operator* or operator-> on an expected holding an error"));
  CHECK(aborts_with([] {
    expected<std::string, errc> e = unexpected(errc::not_found);
    std::printf("%zu", e->size());
  }, "operator* or operator->"));
  CHECK(aborts_with([] {
    expected<int, errc> v = 1;
    std::printf("%d", static_cast<int>(v.error()));
  }, "error() on an expected holding a value"));
}
#endif
