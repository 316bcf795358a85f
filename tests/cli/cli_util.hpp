#pragma once
// Shared helpers of the end-to-end CLI tests: run a command with popen and
// capture its output and exit status, and per-process temporary files in the
// test binary directory that are removed when the process exits (ctest runs
// test cases in parallel processes, so each process keeps its files apart).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace tsync_cli_test {

struct run_result {
  int status;       ///< exit status, -1 when the command did not exit normally
  std::string out;  ///< what it wrote (the caller chooses the redirections)
};

/// Run a shell command line; its stdout is captured.
inline run_result shell(const std::string& cmd) {
  run_result r{-1, {}};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

/// A path `<binary dir>/<prefix>_<pid>_<name>`, removed when the process exits.
inline std::string tmp_path(const std::string& prefix, const std::string& name) {
  struct registry {
    std::vector<std::string> paths;
    ~registry() {
      for (const auto& p : paths) std::remove(p.c_str());
    }
  };
  static registry files;
  std::string p = std::string(TSYNC_TEST_BINARY_DIR) + "/" + prefix + "_" + std::to_string(::getpid()) + "_" + name;
  if (std::find(files.paths.begin(), files.paths.end(), p) == files.paths.end()) files.paths.push_back(p);
  return p;
}

/// Write `text` to `tmp_path(prefix, name)` and return the path.
inline std::string write_tmp(const std::string& prefix, const std::string& name, const std::string& text) {
  const std::string path = tmp_path(prefix, name);
  std::ofstream f(path, std::ios::binary);
  f << text;
  return path;
}

/// Run `tsync <args>` with `input` on stdin; stdout and stderr are captured together.
inline run_result tsync_with_input(const std::string& prefix, const std::string& args, const std::string& input) {
  const std::string in_path = write_tmp(prefix, "stdin.txt", input);
  return shell(std::string(TSYNC_CLI_PATH) + " " + args + " < '" + in_path + "' 2>&1");
}

/// Run `tsync <args>` (no input); stdout and stderr are captured together.
inline run_result run_tool(const std::string& args) { return shell(std::string(TSYNC_CLI_PATH) + " " + args + " 2>&1"); }

}  // namespace tsync_cli_test
