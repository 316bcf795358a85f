// ok/ko pair: raw counters of two domains must not be subtracted.
#include "tsync/core/time.hpp"

int ticks_mixing_probe();
int ticks_mixing_probe() {
  tsync::ticks<tsync::host> a(10), b(4);
  tsync::ticks<tsync::guest> g(3);
  auto d = a - b;  // same domain: fine
#ifdef TSYNC_COMPILE_FAIL
  auto bad = a - g;  // host ticks − guest ticks: must not compile
  (void)bad;
#endif
  (void)g;
  return static_cast<int>(d.count());
}
