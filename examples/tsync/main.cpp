// `tsync`: the command-line front end of the library. Subcommands live in
// cmd_*.cpp files beside this one and register themselves (see cli.hpp).
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
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
