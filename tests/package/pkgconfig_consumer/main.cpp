// A consumer of the installed package (pkg-config).
#include <tsync/tsync.hpp>

int main() {
  // 2.0 GHz guest on a 2.999999 GHz host, reference vector T9/T10.
  tsync::u128 p = static_cast<tsync::u128>(6) * 7;
  return static_cast<int>(p) == 42 ? 0 : 1;
}
