// ok/ko pair: a sync_sample holds a guest time and a guest->host offset; a
// host time cannot be stored as its guest time (see domain_mixing.cpp).
#include "tsync/core/sync_sample.hpp"

long typed_sync_sample_probe();
long typed_sync_sample_probe() {
  const tsync::sync_sample ok{tsync::at_ns<tsync::guest>(40), tsync::guest_to_host(60)};  // fine
#ifdef TSYNC_COMPILE_FAIL
  const tsync::sync_sample bad{tsync::at_ns<tsync::host>(100), tsync::guest_to_host(60)};  // must not compile
  (void)bad;
#endif
  return tsync::raw_ns(tsync::to_host(ok.guest_time, ok.offset));
}
