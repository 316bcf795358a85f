// `tsync`: the command-line front end of the library. Subcommands live in
// cmd_*.cpp files beside this one and register themselves (see cli.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsync/core/version.hpp"

namespace {

void print_overview(std::ostream& os) {
  os << "tsync " << TSYNC_VERSION_STRING
     << ": synchronize trace timestamps between a host and its guests\n\n"
        "usage: tsync <command> [options]\n"
        "       tsync <command> --help     full help of one command\n"
        "       tsync --version\n\ncommands:\n";
  for (auto& [name, c] : tsync::cli::registry()) {
    os << "  " << name;
    for (std::size_t i = name.size(); i < 18; ++i) os << ' ';
    os << ' ' << c.summary << '\n';
  }
}

/// Flush and close standard output; a write error (full disk, /dev/full, a closed
/// stdout) turns a successful exit into status 1 with the errno text on stderr.
int finish_stdout(int rc) {
  errno = 0;
  std::cout.flush();
  int err = !std::cout ? errno : 0;
  if (std::fflush(stdout) != 0 && err == 0) err = errno != 0 ? errno : EIO;
  if (std::ferror(stdout) && err == 0) err = errno != 0 ? errno : EIO;
  if ((std::ferror(stdout) || !std::cout) && (err == 0 || err == EIO)) {
    // The failing write's errno was overwritten since: one byte more on the
    // already broken stream tells which error it is (ENOSPC, EBADF, EPIPE, ...).
    if (::write(STDOUT_FILENO, "\n", 1) < 0) err = errno;
    if (err == 0) err = EIO;
  }
  if (::close(STDOUT_FILENO) != 0 && errno != EBADF && err == 0) err = errno;
  if (err == 0) return rc;
  std::cerr << "tsync: cannot write standard output: " << std::strerror(err) << '\n';
  return rc == 0 ? 1 : rc;
}

int dispatch(const std::vector<std::string>& args);

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout or stderr would hand its number to the next file opened, and
  // output would land in that file: hold the slot with a read-only /dev/null, so
  // writes there fail (EBADF) and are reported instead.
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      const int n = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (n >= 0 && n != fd) {
        (void)::dup2(n, fd);
        ::close(n);
      }
    }
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  return finish_stdout(dispatch(args));
}

namespace {

int dispatch(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "tsync " << TSYNC_VERSION_STRING << '\n';
    return 0;
  }
  // Longest match of command words: "kvm to-host" before "kvm".
  auto& reg = tsync::cli::registry();
  for (std::size_t words = std::min<std::size_t>(args.size(), 3); words >= 1; --words) {
    std::string name = args[0];
    for (std::size_t i = 1; i < words; ++i) name += " " + args[i];
    auto it = reg.find(name);
    if (it == reg.end()) continue;
    std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(words), args.end());
    for (auto& a : rest) {
      if (a == "--help" || a == "-h") {
        std::cout << "usage: tsync " << it->second.name << ' ' << it->second.help << '\n';
        return 0;
      }
    }
    return it->second.run(rest);
  }
  // A family word alone ("tsync kvm"): list its commands.
  bool family = false;
  for (auto& [name, c] : reg) {
    if (name.rfind(args[0] + " ", 0) == 0) {
      if (!family) std::cout << "tsync " << args[0] << " commands:\n";
      family = true;
      std::cout << "  tsync " << name << "  " << c.summary << '\n';
    }
  }
  if (family) return args.size() > 1 && args[1] != "--help" && args[1] != "-h" ? 2 : 0;
  std::cerr << "tsync: unknown command '" << args[0] << "'\n";
  print_overview(std::cerr);
  return 2;
}

}  // namespace
