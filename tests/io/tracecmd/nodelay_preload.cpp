// LD_PRELOAD module for the trace-cmd recording test: sets TCP_NODELAY on every
// TCP stream socket that connect(), accept() or accept4() returns. trace-cmd
// before 3.3 leaves Nagle's algorithm on for its time-sync socket; on loopback
// each PTP-like sync then waits for delayed ACKs (tens of seconds per sync
// round) and its offsets are off by about a millisecond.
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace {

void set_nodelay(int fd) noexcept {
  if (fd < 0) return;
  const int saved = errno;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int type = 0;
  socklen_t tlen = sizeof type;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
      (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  errno = saved;
}

template <class F> F next_symbol(const char* name) noexcept {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

int connect(int fd, const sockaddr* addr, socklen_t len) {
  using fn = int (*)(int, const sockaddr*, socklen_t);
  static const fn real = next_symbol<fn>("connect");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int r = real(fd, addr, len);
  if (r == 0 || errno == EINPROGRESS) set_nodelay(fd);
  return r;
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  using fn = int (*)(int, sockaddr*, socklen_t*);
  static const fn real = next_symbol<fn>("accept");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int r = real(fd, addr, len);
  set_nodelay(r);
  return r;
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  using fn = int (*)(int, sockaddr*, socklen_t*, int);
  static const fn real = next_symbol<fn>("accept4");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int r = real(fd, addr, len, flags);
  set_nodelay(r);
  return r;
}

}  // extern "C"
