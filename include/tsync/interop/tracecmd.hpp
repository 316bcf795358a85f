#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/io/tracecmd.hpp` instead.
#include "tsync/io/tracecmd.hpp"

namespace tsync::inline TSYNC_ABI::interop {
// The names moved to `tsync::io`; the old qualified names still resolve for one release.
using namespace ::tsync::io;
}  // namespace tsync::interop
