#pragma once
// Shared helpers of the CLI tests that run `tsync agent` and `tsync sync` as
// background processes: a per-process work directory, spawning and stopping a
// tool in the background, waiting for its socket to listen, and reading /proc.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

#include "cli_util.hpp"
#include "tsync/transport/unix_socket.hpp"

namespace tsync_cli_test {

/// The whole file at `p` ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fresh directory in the test binary dir, removed afterwards.
struct work_dir {
  std::filesystem::path path;
  explicit work_dir(const std::string& name)
      : path(std::filesystem::path(TSYNC_TEST_BINARY_DIR) / (name + "." + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~work_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  work_dir(const work_dir&) = delete;
  work_dir& operator=(const work_dir&) = delete;
  [[nodiscard]] std::string operator/(const std::string& n) const { return (path / n).string(); }
};

/// Start `tsync <args>` in the background (stdout+stderr to `log`); its pid.
inline pid_t spawn(const std::string& args, const std::string& log) {
  auto r = shell("( '" + std::string(TSYNC_CLI_PATH) + "' " + args + " > '" + log + "' 2>&1 & echo $! )");
  return static_cast<pid_t>(std::stol(r.out));
}

inline bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0 && std::filesystem::exists("/proc/" + std::to_string(pid));
}

/// Wait for a background process to end (not our child: poll /proc; a zombie counts as gone).
inline bool wait_gone(pid_t pid, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string all;
    std::getline(st, all);
    if (all.empty() || all.find(") Z") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// SIGTERM, then SIGKILL when the process is still there after 5 s.
inline void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (!wait_gone(pid, std::chrono::milliseconds(5000))) ::kill(pid, SIGKILL);
  (void)wait_gone(pid, std::chrono::milliseconds(2000));
}

inline bool wait_for_file(const std::string& p, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (std::filesystem::exists(p)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// Wait until a unix socket accepts a connection (the file exists from bind(), before
/// listen()); the probing connection is closed at once.
inline bool wait_for_listener(const std::string& p, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (std::filesystem::exists(p) &&
        tsync::transport::connect_unix(p, tsync::transport::after(std::chrono::milliseconds(200))))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// A field of /proc/PID/status as a number (-1 when absent), e.g. "VmRSS:" or "Threads:".
inline long proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  return -1;
}

/// How many times `what` occurs in `text`.
inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace tsync_cli_test
