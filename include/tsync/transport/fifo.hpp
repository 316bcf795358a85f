#pragma once
/// \file
/// FIFO transports: a pair of named pipes (one per direction), and a single
/// bidirectional character device such as a virtio-serial port inside a guest
/// (`/dev/virtio-ports/<name>`), which on the host side is often a pair of FIFOs
/// `<path>.in` / `<path>.out` given to QEMU's `-chardev pipe`.
///
/// Opening order never deadlocks: each side first opens its *read* FIFO with
/// `O_NONBLOCK` (always succeeds at once), then retries opening its *write* FIFO
/// with `O_NONBLOCK` (which fails with `ENXIO` until the peer has its read end
/// open) until the deadline. Both sides can therefore call `open_fifo_pair` in any
/// order, each passing the two paths crossed.
///
/// End of stream: when the peer closes its write end, `receive()` reports
/// `errc::peer_closed` once buffered frames are consumed.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::transport {

/// Create a named pipe at `path` (an existing FIFO there is fine). Returns
/// success once a FIFO is there; errors: `EEXIST` for an existing file of another
/// kind, the `mkfifo` error otherwise.
[[nodiscard]] inline expected<void, std::error_code> make_fifo(std::string_view path, mode_t mode = 0600) {
  const std::string p(path);
  if (::mkfifo(p.c_str(), mode) == 0) return {};
  if (errno == EEXIST) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) return {};
    return unexpected(std::error_code(EEXIST, std::system_category()));
  }
  return unexpected(last_error());
}

/// Open a transport over two FIFOs: this side reads `read_path` and writes
/// `write_path`. Waits (polling every millisecond) until the peer has opened
/// `write_path` for reading, or fails with `errc::timed_out` at `d`.
[[nodiscard]] inline expected<stream_transport, std::error_code> open_fifo_pair(std::string_view read_path,
                                                                                std::string_view write_path,
                                                                                deadline d) {
  const std::string rp(read_path);
  const std::string wp(write_path);
  unique_fd r(::open(rp.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!r) return unexpected(last_error());
  for (;;) {
    const int fd = ::open(wp.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) return stream_transport::adopt(std::move(r), unique_fd(fd));
    if (errno == EINTR) continue;
    if (errno != ENXIO) return unexpected(last_error());
    if (std::chrono::steady_clock::now() >= d) return unexpected(make_error_code(errc::timed_out));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

/// Put a terminal fd into raw mode (no echo, no line editing, no CR/LF
/// translation, 8-bit clean). A no-op for an fd that is not a terminal.
/// Returns success; errors: the `tcgetattr`/`tcsetattr` error.
[[nodiscard]] inline expected<void, std::error_code> make_raw(int fd) noexcept {
  if (::isatty(fd) == 0) return {};
  termios t{};
  if (::tcgetattr(fd, &t) < 0) return unexpected(last_error());
  ::cfmakeraw(&t);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (::tcsetattr(fd, TCSANOW, &t) < 0) return unexpected(last_error());
  return {};
}

/// Open a bidirectional character device (e.g. `/dev/virtio-ports/org.tsync.0`)
/// read-write; a terminal is put into raw mode.
[[nodiscard]] inline expected<stream_transport, std::error_code> open_chardev(std::string_view path) {
  const std::string p(path);
  unique_fd fd(::open(p.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return unexpected(last_error());
  if (auto raw = make_raw(fd.get()); !raw) return unexpected(raw.error());
  return stream_transport::adopt(std::move(fd));
}

/// Adopt an already open bidirectional device fd (a terminal is put into raw mode).
[[nodiscard]] inline expected<stream_transport, std::error_code> adopt_chardev(unique_fd fd) {
  if (!fd) return unexpected(make_error_code(errc::invalid_argument));
  if (auto raw = make_raw(fd.get()); !raw) return unexpected(raw.error());
  return stream_transport::adopt(std::move(fd));
}

}  // namespace tsync::transport
