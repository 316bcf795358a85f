// ok/ko pair: estimate::model::to_host takes a guest time and returns a host
// time; using its result as a guest time must not compile (see domain_mixing.cpp).
#include "tsync/estimate/model.hpp"

long typed_model_probe(const tsync::estimate::model& m);
long typed_model_probe(const tsync::estimate::model& m) {
  const auto g = tsync::at_ns<tsync::guest>(40);
  auto h = m.to_host(g);  // fine
  if (!h) return 0;
#ifdef TSYNC_COMPILE_FAIL
  auto bad = m.to_host(*h);  // a host time passed as the guest time: must not compile
  (void)bad;
#endif
  return tsync::raw_ns(*h);
}
