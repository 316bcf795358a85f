// ok/ko pair: a clock source's now() is typed by the clock's domain; a guest
// clock's reading used as a host time must not compile (see domain_mixing.cpp).
#include "tsync/clock/posix_clock.hpp"

long typed_clock_now_probe();
long typed_clock_now_probe() {
  tsync::clock::basic_mono_raw_clock<tsync::guest> guest_clock;
  tsync::clock::mono_raw_clock host_clock;
  const tsync::domain_time<tsync::guest> g = guest_clock.now();  // fine
  const tsync::domain_time<tsync::host> h = host_clock.now();    // fine
#ifdef TSYNC_COMPILE_FAIL
  const tsync::domain_time<tsync::host> bad = guest_clock.now();  // guest reading as host time: must not compile
  (void)bad;
#endif
  return tsync::raw_ns(g) + tsync::raw_ns(h);
}
