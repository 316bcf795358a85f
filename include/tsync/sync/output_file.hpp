#pragma once
/// \file
/// Output files that are never silently lost: every write and the close are
/// checked, and an error names the file with the errno text.
///
/// - `atomic_file`: written to `PATH.tmp.PID`, then fsynced and renamed over
///   `PATH` by `commit()`; a file that was not committed is removed, so a reader
///   sees either the old file, or the whole new one, never a truncated one.
/// - `append_log`: a log that grows as the session runs (each `append` goes to
///   the kernel at once, `sync()` makes it durable), so `kill -9` loses at most
///   what was not appended yet.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

namespace tsync::inline TSYNC_ABI::sync {

/// Deprecated (one release): a failed output is a `tsync::text_error` (code,
/// the path as `field`, "cannot write PATH: <errno text>" as `message`).
using output_error [[deprecated("use tsync::text_error")]] = text_error;

namespace detail {
/// The `text_error` of a failed write of `path`: `not_found`,
/// `permission_denied`, else `io_error`; the message keeps the system's text.
[[nodiscard]] inline text_error output_failure(const std::string& path, std::error_code ec) {
  errc c = errc::io_error;
  if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) c = errc::not_found;
  else if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) c = errc::permission_denied;
  return text_error{c, 0, path, "cannot write " + path + ": " + ec.message()};
}

[[nodiscard]] inline std::error_code errno_code() noexcept { return {errno, std::generic_category()}; }

/// Write all of `s` to `fd` (retrying short writes and EINTR). Returns success
/// once every byte is written; errors: the `write` errno (generic category),
/// `std::errc::io_error` for a write of zero bytes.
[[nodiscard]] inline expected<void, std::error_code> write_all_fd(int fd, std::string_view s) noexcept {
  while (!s.empty()) {
    const ssize_t w = ::write(fd, s.data(), s.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return unexpected(errno_code());
    }
    if (w == 0) return unexpected(std::make_error_code(std::errc::io_error));
    s.remove_prefix(static_cast<std::size_t>(w));
  }
  return {};
}

/// fsync the directory holding `path`, so that a rename into it is durable.
/// File systems that cannot fsync a directory (EINVAL) are not an error.
/// Returns success; errors: the `open`/`fsync`/`close` errno (generic category),
/// the first one when several fail.
[[nodiscard]] inline expected<void, std::error_code> sync_parent_dir(const std::string& path) noexcept {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return unexpected(errno_code());
  std::error_code ec;
  if (::fsync(fd) < 0 && errno != EINVAL) ec = errno_code();
  if (::close(fd) < 0 && !ec) ec = errno_code();
  if (ec) return unexpected(ec);
  return {};
}
}  // namespace detail

/// A file written under a temporary name and renamed into place by `commit()`.
/// Text is buffered (`buffer_limit` bytes) and written as the buffer fills.
class atomic_file {
 public:
  static constexpr std::size_t buffer_limit = 64 * 1024;

  atomic_file() = default;
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  atomic_file(atomic_file&& o) noexcept
      : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(std::exchange(o.fd_, -1)),
        buf_(std::move(o.buf_)), err_(o.err_) {}
  atomic_file& operator=(atomic_file&& o) noexcept {
    if (this != &o) {
      abandon();
      path_ = std::move(o.path_);
      tmp_ = std::move(o.tmp_);
      fd_ = std::exchange(o.fd_, -1);
      buf_ = std::move(o.buf_);
      err_ = o.err_;
    }
    return *this;
  }
  ~atomic_file() { abandon(); }

  /// Create `PATH.tmp.PID` (mode 0644 before umask).
  [[nodiscard]] static atomic_file create(std::string path) {
    atomic_file f;
    f.path_ = std::move(path);
    f.tmp_ = f.path_ + ".tmp." + std::to_string(::getpid());
    f.fd_ = ::open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f.fd_ < 0) f.err_ = detail::errno_code();
    return f;
  }

  /// Append text (errors are kept and reported by `commit`).
  atomic_file& operator<<(std::string_view s) {
    if (err_) return *this;
    buf_.append(s);
    if (buf_.size() >= buffer_limit) flush_buffer();
    return *this;
  }

  /// The first error so far (empty if none).
  [[nodiscard]] std::error_code error() const noexcept { return err_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// Write the rest, fsync, close and rename over the final path (and fsync its
  /// directory). Errors: a `text_error` naming the final path and the errno text
  /// (`errc::io_error`, `not_found` or `permission_denied`; `error()` keeps the
  /// `std::error_code`); the temporary file is removed then.
  [[nodiscard]] expected<void, text_error> commit() {
    if (!err_) flush_buffer();
    if (!err_ && ::fsync(fd_) < 0) err_ = detail::errno_code();
    if (fd_ >= 0) {
      if (::close(fd_) < 0 && !err_) err_ = detail::errno_code();
      fd_ = -1;
    }
    if (!err_ && ::rename(tmp_.c_str(), path_.c_str()) < 0) err_ = detail::errno_code();
    if (!err_) {
      if (auto d = detail::sync_parent_dir(path_); !d) err_ = d.error();  // the rename itself must reach the disk
    }
    if (err_) {
      ::unlink(tmp_.c_str());
    }
    tmp_.clear();
    if (err_) return unexpected(detail::output_failure(path_, err_));
    return {};
  }

  /// Deprecated (one release): use `commit()`, which returns `expected<void, text_error>`.
  [[deprecated("use commit(), which returns expected<void, text_error>")]] [[nodiscard]] bool commit(text_error& e) {
    auto r = commit();
    if (!r) e = r.error();
    return r.has_value();
  }

 private:
  void flush_buffer() {
    if (err_ || fd_ < 0) return;
    if (auto w = detail::write_all_fd(fd_, buf_); !w) err_ = w.error();
    buf_.clear();
  }
  void abandon() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
  }

  std::string path_, tmp_;
  int fd_ = -1;
  std::string buf_;
  std::error_code err_;
};

/// A log written as it grows: `append` hands each piece to the kernel at once.
class append_log {
 public:
  append_log() = default;
  append_log(const append_log&) = delete;
  append_log& operator=(const append_log&) = delete;
  append_log(append_log&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), err_(o.err_) {}
  ~append_log() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Create (truncate) `path`.
  [[nodiscard]] static append_log create(std::string path) {
    append_log l;
    l.path_ = std::move(path);
    l.fd_ = ::open(l.path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (l.fd_ < 0) l.err_ = detail::errno_code();
    return l;
  }

  /// Append `s` (one write). Errors: the first failure so far (it is kept: later
  /// calls write nothing and return it), as a `text_error` naming the file.
  expected<void, text_error> append(std::string_view s) {
    if (!err_) {
      if (auto w = detail::write_all_fd(fd_, s); !w) err_ = w.error();
    }
    return result(path_);
  }

  /// fsync. Errors: as `append`.
  expected<void, text_error> sync() {
    if (!err_ && ::fsync(fd_) < 0) err_ = detail::errno_code();
    return result(path_);
  }

  /// fsync, close, and rename to `final_path` (empty: keep the name), then fsync
  /// the directory. Errors: as `append`, naming `final_path` when one is given.
  [[nodiscard]] expected<void, text_error> finish(const std::string& final_path = {}) {
    (void)sync();
    if (fd_ >= 0) {
      if (::close(fd_) < 0 && !err_) err_ = detail::errno_code();
      fd_ = -1;
    }
    if (!err_ && !final_path.empty()) {
      if (::rename(path_.c_str(), final_path.c_str()) < 0) err_ = detail::errno_code();
      else if (auto d = detail::sync_parent_dir(final_path); !d) err_ = d.error();
    }
    return result(final_path.empty() ? path_ : final_path);
  }

  /// The first error so far as an errno code (empty if none).
  [[nodiscard]] std::error_code error() const noexcept { return err_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  [[nodiscard]] expected<void, text_error> result(const std::string& named) const {
    if (err_) return unexpected(detail::output_failure(named, err_));
    return {};
  }

  std::string path_;
  int fd_ = -1;
  std::error_code err_;
};

}  // namespace tsync::sync
