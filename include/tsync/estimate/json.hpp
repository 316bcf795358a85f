#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/io/json.hpp` instead.
#include "tsync/io/json.hpp"

namespace tsync::inline TSYNC_ABI::estimate::json {
// The names moved to `tsync::io::json`; the old qualified names still resolve for one release.
using namespace ::tsync::io::json;
}  // namespace tsync::estimate::json
