#pragma once
/// \file
/// `tsync::expected<T, E>`: either a value or an error, tsync's own type under
/// every `-std` (never `std::expected`, so its behaviour and ABI do not depend
/// on the standard library), with the spelling of `std::expected` for the
/// members tsync uses.
///
/// It never throws. `value()` on an error always aborts with a message.
/// `operator*`, `operator->` and `error()` on the wrong state abort with a
/// message when `TSYNC_CHECKED` is 1 (the default unless `NDEBUG`; see
/// core/config.hpp); with `TSYNC_CHECKED` 0 they are unchecked (undefined
/// behaviour on the wrong state, as for `std::expected`).

#include <cstdio>
#include <cstdlib>
#include <new>
// std::construct_at, std::destroy_at and std::addressof. libstdc++ declares them in
// a small internal header; all of <memory> (shared_ptr, iostream operators, atomics)
// would add a fifth to the compile time of every TU that includes tsync (issue 9).
#if defined(__GLIBCXX__) && __has_include(<bits/stl_construct.h>)
#include <bits/stl_construct.h>
#else
#include <memory>
#endif
#include <type_traits>
#include <utility>

#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI {
/// Error wrapper used to construct an `expected` in the error state.
template <class E> class unexpected {
 public:
  constexpr explicit unexpected(const E& e) : e_(e) {}
  constexpr explicit unexpected(E&& e) : e_(std::move(e)) {}
  [[nodiscard]] constexpr const E& error() const& noexcept { return e_; }
  [[nodiscard]] constexpr E& error() & noexcept { return e_; }
  [[nodiscard]] constexpr E&& error() && noexcept { return std::move(e_); }
  friend constexpr bool operator==(const unexpected& a, const unexpected& b) { return a.e_ == b.e_; }

 private:
  E e_;
};
template <class E> unexpected(E) -> unexpected<E>;

namespace detail {
[[noreturn]] inline void bad_expected_access(const char* what) noexcept {
  std::fputs("tsync: ", stderr);
  std::fputs(what, stderr);
  std::fputs("\n", stderr);
  std::abort();
}
/// The check of `operator*`, `operator->` and `error()` (see the file comment).
constexpr void check_expected_access([[maybe_unused]] bool ok, [[maybe_unused]] const char* what) noexcept {
#if TSYNC_CHECKED
  if (!ok) bad_expected_access(what);
#endif
}
inline constexpr const char* deref_error = "operator* or operator-> on an expected holding an error";
inline constexpr const char* error_of_value = "error() on an expected holding a value";
inline constexpr const char* value_of_error = "value() on an expected holding an error";
}  // namespace detail

namespace detail {
struct empty_init_t {};
// Storage with a trivial destructor when T and E have one (so that expected is
// a literal type and math functions returning it can be constexpr).
template <class T, class E,
          bool = std::is_trivially_destructible_v<T> && std::is_trivially_destructible_v<E>>
struct expected_storage {
  constexpr expected_storage() noexcept : dummy_{}, has_(false) {}
  union { char dummy_; T v_; E e_; };
  bool has_;
};
template <class T, class E> struct expected_storage<T, E, false> {
  constexpr expected_storage() noexcept : dummy_{}, has_(false) {}
  expected_storage(const expected_storage&) = delete;
  expected_storage& operator=(const expected_storage&) = delete;
  ~expected_storage() { if (has_) v_.~T(); else e_.~E(); }
  union { char dummy_; T v_; E e_; };
  bool has_;
};
}  // namespace detail

/// Either a value of type T or an error of type E.
template <class T, class E> class expected : private detail::expected_storage<T, E> {
  using base = detail::expected_storage<T, E>;
  using base::v_;
  using base::e_;
  using base::has_;

 public:
  using value_type = T;
  using error_type = E;
  using unexpected_type = unexpected<E>;

  constexpr expected() requires std::is_default_constructible_v<T> { construct_value(); }
  template <class U = T>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, expected> &&
             !std::is_same_v<std::remove_cvref_t<U>, unexpected<E>>)
  constexpr expected(U&& v) {  // NOLINT(google-explicit-constructor)
    construct_value(std::forward<U>(v));
  }
  template <class G>
  constexpr expected(const unexpected<G>& u) {  // NOLINT
    construct_error(u.error());
  }
  template <class G>
  constexpr expected(unexpected<G>&& u) {  // NOLINT
    construct_error(std::move(u).error());
  }
  constexpr expected(const expected& o) {
    if (o.has_) construct_value(o.v_); else construct_error(o.e_);
  }
  constexpr expected(expected&& o) noexcept(std::is_nothrow_move_constructible_v<T> &&
                                            std::is_nothrow_move_constructible_v<E>) {
    if (o.has_) construct_value(std::move(o.v_)); else construct_error(std::move(o.e_));
  }
  constexpr expected& operator=(const expected& o) {
    if (this != &o) { destroy(); if (o.has_) construct_value(o.v_); else construct_error(o.e_); }
    return *this;
  }
  constexpr expected& operator=(expected&& o) noexcept(std::is_nothrow_move_constructible_v<T> &&
                                                       std::is_nothrow_move_constructible_v<E>) {
    if (this != &o) { destroy(); if (o.has_) construct_value(std::move(o.v_)); else construct_error(std::move(o.e_)); }
    return *this;
  }

  [[nodiscard]] constexpr bool has_value() const noexcept { return has_; }
  constexpr explicit operator bool() const noexcept { return has_; }
  [[nodiscard]] constexpr T& value() & { if (!has_) detail::bad_expected_access(detail::value_of_error); return v_; }
  [[nodiscard]] constexpr const T& value() const& { if (!has_) detail::bad_expected_access(detail::value_of_error); return v_; }
  [[nodiscard]] constexpr T&& value() && { if (!has_) detail::bad_expected_access(detail::value_of_error); return std::move(v_); }
  [[nodiscard]] constexpr const E& error() const& noexcept { detail::check_expected_access(!has_, detail::error_of_value); return e_; }
  [[nodiscard]] constexpr E& error() & noexcept { detail::check_expected_access(!has_, detail::error_of_value); return e_; }
  [[nodiscard]] constexpr E&& error() && noexcept { detail::check_expected_access(!has_, detail::error_of_value); return std::move(e_); }
  constexpr T& operator*() & noexcept { detail::check_expected_access(has_, detail::deref_error); return v_; }
  constexpr const T& operator*() const& noexcept { detail::check_expected_access(has_, detail::deref_error); return v_; }
  constexpr T&& operator*() && noexcept { detail::check_expected_access(has_, detail::deref_error); return std::move(v_); }
  constexpr T* operator->() noexcept { detail::check_expected_access(has_, detail::deref_error); return std::addressof(v_); }
  constexpr const T* operator->() const noexcept { detail::check_expected_access(has_, detail::deref_error); return std::addressof(v_); }
  template <class U> [[nodiscard]] constexpr T value_or(U&& d) const& {
    return has_ ? v_ : static_cast<T>(std::forward<U>(d));
  }

 private:
  template <class... A> constexpr void construct_value(A&&... a) {
    std::construct_at(std::addressof(v_), std::forward<A>(a)...);
    has_ = true;
  }
  template <class... A> constexpr void construct_error(A&&... a) {
    std::construct_at(std::addressof(e_), std::forward<A>(a)...);
    has_ = false;
  }
  constexpr void destroy() noexcept {
    if (has_) std::destroy_at(std::addressof(v_)); else std::destroy_at(std::addressof(e_));
  }
};

/// `expected<void, E>`: success or an error.
template <class E> class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;
  constexpr expected() noexcept : has_(true), e_() {}
  template <class G> constexpr expected(const unexpected<G>& u) : has_(false), e_(u.error()) {}  // NOLINT
  template <class G> constexpr expected(unexpected<G>&& u) : has_(false), e_(std::move(u).error()) {}  // NOLINT
  [[nodiscard]] constexpr bool has_value() const noexcept { return has_; }
  constexpr explicit operator bool() const noexcept { return has_; }
  constexpr void value() const { if (!has_) detail::bad_expected_access(detail::value_of_error); }
  constexpr void operator*() const noexcept { detail::check_expected_access(has_, detail::deref_error); }
  [[nodiscard]] constexpr const E& error() const& noexcept { detail::check_expected_access(!has_, detail::error_of_value); return e_; }

 private:
  bool has_;
  E e_;
};
}  // namespace tsync
