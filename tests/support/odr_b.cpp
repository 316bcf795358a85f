// The umbrella header in a second translation unit (ODR check, with odr_a.cpp).
#include "tsync/tsync.hpp"

int tsync_odr_b();
int tsync_odr_b() {
  // Touch the inline function-local static of the error category from this TU too.
  return tsync::make_error_code(tsync::errc::overflow).category().name()[0] == 't'
             ? static_cast<int>(tsync::mul_u64_u64_shr(3, 14, 1))
             : -1;
}
