// ok/ko pair: sync_table::correct takes a guest time; passing a host time
// must not compile (built twice by ctest, see domain_mixing.cpp).
#include "tsync/correct/sync_table.hpp"

long typed_sync_table_probe(const tsync::correct::sync_table& t);
long typed_sync_table_probe(const tsync::correct::sync_table& t) {
  const auto g = tsync::at_ns<tsync::guest>(40);
  const auto h = tsync::at_ns<tsync::host>(100);
  auto fwd = t.correct(g);    // guest -> host: fine
  auto back = t.to_guest(h);  // host -> guest: fine
#ifdef TSYNC_COMPILE_FAIL
  auto bad = t.correct(h);  // a host time where a guest time is expected: must not compile
  (void)bad;
#endif
  return (fwd ? tsync::raw_ns(*fwd) : 0) + (back ? tsync::raw_ns(*back) : 0);
}
