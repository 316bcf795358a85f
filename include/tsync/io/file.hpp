#pragma once
/// \file
/// The one small-file reader of tsync's text and binary inputs: the whole file
/// into memory, bounded, with errors that name the file.
///
/// `read_small_file(path, max_bytes)` opens `path`, refuses a directory ("is a
/// directory", `errc::invalid_argument`) and a device or socket ("not a regular
/// file", `errc::unsupported`) by name without reading them, reads a regular
/// file or a pipe up to `max_bytes` (more is `errc::oversized`, found after at
/// most `max_bytes + 1` bytes, so `/dev/zero`-like inputs fail fast) and maps
/// `errno` to `errc` (`not_found`, `permission_denied`, else `io_error` with
/// the system's text). Every error is a `text_error` whose `field` is the path
/// and whose message starts with it (control bytes escaped).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// The default total size cap of the readers (64 MiB); every reader takes its
/// own cap as a parameter.
inline constexpr std::size_t default_max_file_bytes = std::size_t{64} << 20;

namespace detail {
inline text_error file_error(const std::string& path, errc code, std::string_view why) {
  return text_error{code, 0, path, quote_input(path) + ": " + std::string(why)};
}
inline errc errno_to_errc(int e) noexcept {
  switch (e) {
    case ENOENT: case ENOTDIR: return errc::not_found;
    case EACCES: case EPERM: return errc::permission_denied;
    case EISDIR: return errc::invalid_argument;
    default: return errc::io_error;
  }
}
struct fd_closer {
  int fd;
  ~fd_closer() { if (fd >= 0) ::close(fd); }
};
}  // namespace detail

/// Check that `path` can be opened for reading as a regular file or a pipe
/// (the errors of `read_small_file`, without reading): for readers that
/// stream large inputs instead of loading them.
[[nodiscard]] inline expected<void, text_error> check_input_file(const std::string& path) {
  if (path.empty()) return unexpected(detail::file_error(path, errc::invalid_argument, "empty file name"));
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    return unexpected(detail::file_error(path, detail::errno_to_errc(e), std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) return unexpected(detail::file_error(path, errc::invalid_argument, "is a directory"));
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
    return unexpected(detail::file_error(path, errc::unsupported, "not a regular file (a device or socket)"));
  if (::access(path.c_str(), R_OK) != 0) {
    const int e = errno;
    return unexpected(detail::file_error(path, detail::errno_to_errc(e), std::strerror(e)));
  }
  return {};
}

/// Read all of `path` (see the file comment).
[[nodiscard]] inline expected<std::string, text_error> read_small_file(const std::string& path,
                                                                       std::size_t max_bytes = default_max_file_bytes) {
  if (path.empty()) return unexpected(detail::file_error(path, errc::invalid_argument, "empty file name"));
  // O_NONBLOCK: opening a FIFO without a writer must not hang; cleared below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    return unexpected(detail::file_error(path, detail::errno_to_errc(e), e == EISDIR ? "is a directory" : std::strerror(e)));
  }
  detail::fd_closer closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    return unexpected(detail::file_error(path, detail::errno_to_errc(e), std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) return unexpected(detail::file_error(path, errc::invalid_argument, "is a directory"));
  const bool regular = S_ISREG(st.st_mode);
  if (!regular && !S_ISFIFO(st.st_mode))
    return unexpected(detail::file_error(path, errc::unsupported, "not a regular file (a device or socket)"));
  if (regular && static_cast<std::size_t>(st.st_size) > max_bytes)
    return unexpected(detail::file_error(path, errc::oversized,
                                         "larger than the limit of " + std::to_string(max_bytes) + " bytes"));
  if (!regular) {
    // A pipe: reopen blocking, so that reading waits for its writer like `cat`.
    const int bfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (bfd < 0) {
      const int e = errno;
      return unexpected(detail::file_error(path, detail::errno_to_errc(e), std::strerror(e)));
    }
    ::close(closer.fd);
    closer.fd = bfd;
  }
  const int rfd = closer.fd;
  std::string out;
  if (regular) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(rfd, buf, sizeof buf);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      return unexpected(detail::file_error(path, detail::errno_to_errc(e),
                                           e == EISDIR ? "is a directory" : std::strerror(e)));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes)
      return unexpected(detail::file_error(path, errc::oversized,
                                           "larger than the limit of " + std::to_string(max_bytes) + " bytes"));
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace tsync::io
