#pragma once
/// \file
/// Aggregator for tsync/clock: the clock_source concept, POSIX clocks, the TSC,
/// simulated and adjusted clocks, the trace_clock registry and run-time choice.
#include "tsync/clock/adjusted_clock.hpp"
#include "tsync/clock/any_clock.hpp"
#include "tsync/clock/clock_source.hpp"
#include "tsync/clock/posix_clock.hpp"
#include "tsync/clock/simulated_clock.hpp"
#include "tsync/clock/trace_clock.hpp"
#include "tsync/clock/tsc_clock.hpp"
