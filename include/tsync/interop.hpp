#pragma once
/// \file
/// Deprecated path, kept for one release: the trace-cmd formats moved to
/// `tsync/io/tracecmd.hpp` (namespace `tsync::io`).
#include "tsync/interop/tracecmd.hpp"
