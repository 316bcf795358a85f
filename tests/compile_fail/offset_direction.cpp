// ok/ko pair: a guest->host offset must not be applied to a host time.
#include "tsync/core/time.hpp"

int offset_direction_probe();
int offset_direction_probe() {
  tsync::guest_to_host o(std::chrono::nanoseconds(5));
  auto h = o.apply(tsync::at_ns<tsync::guest>(1));  // guest -> host: fine
#ifdef TSYNC_COMPILE_FAIL
  auto bad = o.apply(tsync::at_ns<tsync::host>(1));  // wrong direction: must not compile
  (void)bad;
#endif
  return static_cast<int>(h.time_since_epoch().count());
}
