// tsync-mark: the guest side of the QEMU test's "guest marks".
//
// Runs inside the test guest, on a virtio-serial port of its own (named
// tsync.mark). For every request line "M <seq>" the host writes, it reads the
// guest clock (the same named clock `tsync agent` uses, mono_raw unless
// --clock says otherwise) and answers "<seq> <guest_ns> <boot_id>". The host
// stamps its own clock just before writing the request and just after reading
// the answer, so the true host time of <guest_ns> lies in that interval: the
// truth a sync model's `--bounds` must not exclude.
//
// Built static with the guest's `tsync` (tests/guest/make_guest.sh); only the
// clock header of the library is used.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include "tsync/clock/any_clock.hpp"

namespace {

std::string read_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!(in >> id)) id = "unknown";
  return id;
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

int usage() {
  std::fprintf(stderr, "usage: tsync-mark [--clock NAME] /dev/vportNpM\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string clock_name = "mono_raw";
  std::string port;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--clock" && i + 1 < argc) {
      clock_name = argv[++i];
    } else if (!a.empty() && a[0] != '-' && port.empty()) {
      port = argv[i];
    } else {
      return usage();
    }
  }
  if (port.empty()) return usage();
  auto clock = tsync::clock::open_clock(clock_name);
  if (!clock) {
    std::fprintf(stderr, "tsync-mark: cannot use clock '%s': %s\n", clock_name.c_str(), clock.error().message().c_str());
    return 1;
  }
  const std::string boot_id = read_boot_id();
  for (;;) {
    const int fd = ::open(port.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "tsync-mark: cannot open %s: %s\n", port.c_str(), std::strerror(errno));
      return 1;
    }
    std::string line;
    char buf[256];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // host side closed: reopen
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') {
          if (line.size() < 128) line.push_back(buf[i]);
          continue;
        }
        // Stamp first: the answer's latency widens the host's bracket, not the mark.
        const std::int64_t now = clock->now();
        if (line.size() > 2 && line[0] == 'M' && line[1] == ' ') {
          const std::string reply = line.substr(2) + ' ' + std::to_string(now) + ' ' + boot_id + '\n';
          if (!write_all(fd, reply)) break;
        }
        line.clear();
      }
    }
    ::close(fd);
    ::usleep(100 * 1000);
  }
}
