// The umbrella header in a first translation unit (ODR check, with odr_b.cpp).
#include "tsync/tsync.hpp"
#include "tsync/tsync.hpp"

int tsync_odr_b();
int tsync_odr_a() { return static_cast<int>(tsync::mul_u64_u64_shr(6, 7, 1)); }

int main() { return (tsync_odr_a() == 21 && tsync_odr_b() == 21) ? 0 : 1; }
