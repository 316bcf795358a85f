// ok/ko pair: subtracting a guest time from a host time must not compile.
// Built twice by ctest: without TSYNC_COMPILE_FAIL it must compile (ok), with
// it the forbidden expression is enabled and the build must fail (ko).
#include "tsync/core/time.hpp"

int domain_mixing_probe();
int domain_mixing_probe() {
  auto h = tsync::at_ns<tsync::host>(100);
  auto g = tsync::at_ns<tsync::guest>(40);
  auto o = tsync::guest_to_host::between(g, h);
  auto d = h - o.apply(g);  // same domain: fine
#ifdef TSYNC_COMPILE_FAIL
  auto bad = h - g;  // host − guest: must not compile
  (void)bad;
#endif
  return static_cast<int>(d.count());
}
