// tsync_accuracy: the accuracy harness as a stand-alone program (the same as
// `tsync shootout`). See docs/accuracy.md.
#include <iostream>
#include <string>
#include <vector>

#include "tsync/accuracy/shootout.hpp"
#if defined(TSYNC_HAVE_EIGEN) && TSYNC_HAVE_EIGEN
#include "tsync/estimate/regression_eigen.hpp"
#endif

int main(int argc, char** argv) {
#if defined(TSYNC_HAVE_EIGEN) && TSYNC_HAVE_EIGEN
  (void)tsync::estimate::register_regression(tsync::estimate::default_registry());
#endif
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << "usage: tsync_accuracy " << tsync::accuracy::shootout_help << '\n';
      return 0;
    }
  return tsync::accuracy::shootout_main(args, std::cout, std::cerr);
}
