#pragma once
/// \file
/// Umbrella header: everything in tsync that needs nothing beyond the C++20
/// standard library and POSIX. (The Eigen-based estimators are included separately.)
#include "tsync/core.hpp"
#include "tsync/kvm.hpp"
#include "tsync/clock.hpp"
#include "tsync/sim.hpp"
#include "tsync/transport.hpp"
#include "tsync/probe.hpp"
#include "tsync/correct.hpp"
#include "tsync/estimate.hpp"
#include "tsync/interop.hpp"
