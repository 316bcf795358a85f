// ok/ko pair: the session's tables are typed (guest time, guest->host
// offset); a table's guest time cannot be passed where a host time is expected
// (see domain_mixing.cpp).
#include "tsync/sync/session.hpp"

namespace {
long host_only(tsync::domain_time<tsync::host> h) { return tsync::raw_ns(h); }
}  // namespace

long typed_session_output_probe(const tsync::sync::session& s);
long typed_session_output_probe(const tsync::sync::session& s) {
  const auto table = s.table(0);
  if (table.empty()) return 0;
  const auto& x = table.front();
  long v = host_only(tsync::to_host(x.guest_time, x.offset));  // fine: mapped through the offset
#ifdef TSYNC_COMPILE_FAIL
  v += host_only(x.guest_time);  // a guest time where a host time is expected: must not compile
#endif
  return v;
}
