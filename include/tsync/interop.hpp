#pragma once
/// \file
/// Interoperability with other tracers: trace-cmd's TIME_SHIFT and TSC2NSEC
/// options (codec, options framing, trace.dat reader, conversion to sync tables).
#include "tsync/interop/tracecmd.hpp"
