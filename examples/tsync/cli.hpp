#pragma once
// Shared plumbing of the `tsync` command-line tool: a registry of subcommands
// (each cmd_*.cpp registers its own with a static `command_registrar`), a small
// option parser, and helpers for line-oriented numeric input with line numbers.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsync/io/text.hpp"

namespace tsync::cli {

/// A subcommand: `args` excludes the program name and the command words.
struct command {
  std::string name;     ///< e.g. "kvm to-host" (words separated by one space)
  std::string summary;  ///< one line for `tsync --help`
  std::string help;     ///< the full text for `tsync <name> --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

inline std::map<std::string, command>& registry() {
  static std::map<std::string, command> r;
  return r;
}

/// Register a command at static-initialisation time.
struct command_registrar {
  explicit command_registrar(command c) { registry().emplace(c.name, std::move(c)); }
};

/// Print an error in the tool's one format and return the exit code 1.
inline int fail(std::string_view msg) {
  std::cerr << "tsync: " << msg << '\n';
  return 1;
}
/// Usage errors exit with 2.
inline int usage_error(std::string_view cmd, std::string_view msg) {
  std::cerr << "tsync " << cmd << ": " << msg << " (see 'tsync " << cmd << " --help')\n";
  return 2;
}

/// A tiny option parser: `--name value`, `--name=value`, flags and positionals.
class options {
 public:
  /// `flags` lists the options that take no value.
  options(const std::vector<std::string>& args, std::vector<std::string> flags) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) == 0 && a.size() > 2) {
        auto eq = a.find('=');
        std::string key = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        bool is_flag = false;
        for (auto& f : flags) is_flag = is_flag || f == key;
        if (eq != std::string::npos) {
          values_[key].push_back(a.substr(eq + 1));
        } else if (is_flag) {
          values_[key].push_back("");
        } else if (i + 1 < args.size()) {
          values_[key].push_back(args[++i]);
        } else {
          error_ = "option --" + key + " needs a value";
        }
      } else {
        positional_.push_back(a);
      }
    }
  }
  [[nodiscard]] bool has(const std::string& k) const { return values_.count(k) != 0; }
  [[nodiscard]] std::optional<std::string> get(const std::string& k) const {
    auto it = values_.find(k);
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }
  [[nodiscard]] std::vector<std::string> all(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  [[nodiscard]] const std::vector<std::string>& positional() const { return positional_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  /// Names of options that are not in `known` (to reject typos).
  [[nodiscard]] std::optional<std::string> unknown(const std::vector<std::string>& known) const {
    for (auto& [k, v] : values_) {
      bool ok = false;
      for (auto& n : known) ok = ok || n == k;
      if (!ok) return k;
    }
    return std::nullopt;
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  std::string error_;
};

/// Parse a whole string as a decimal integer of type T (no sign for unsigned,
/// no leading '+', no spaces). Empty on anything else, including overflow.
/// (The library's one decimal parser, `tsync::io::parse_decimal`.)
template <class T> std::optional<T> parse_int(std::string_view s) {
  T v{};
  if (tsync::io::parse_decimal(s, v) != tsync::errc::ok) return std::nullopt;
  return v;
}

/// Strip spaces, tabs and a trailing '\r' / '\n' (the library's rule).
inline std::string_view trim(std::string_view s) { return tsync::detail::trim_text(s); }

/// Read decimal values one per line from `in`, calling `fn(value, line_no)` for
/// each; blank lines and lines starting with '#' are skipped. A malformed line
/// stops with a message naming its line number; returns the exit code.
template <class T, class Fn> int for_each_number_line(std::istream& in, std::string_view cmd, Fn&& fn) {
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    auto t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    auto v = parse_int<T>(t);
    if (!v) {
      std::cerr << "tsync " << cmd << ": line " << line_no << ": not a valid "
                << (std::is_signed_v<T> ? "signed" : "unsigned") << " 64-bit decimal number: '"
                << std::string(t.substr(0, 64)) << "'\n";
      return 1;
    }
    if (int rc = fn(*v, line_no); rc != 0) return rc;
  }
  return 0;
}

}  // namespace tsync::cli
