#pragma once
/// \file
/// Aggregator for tsync/kvm: exact KVM TSC math (forward, inverse, nested,
/// batch), how KVM picks its parameters, TSC<->ns (perf, cyc2ns, kvmclock),
/// and the debugfs reader.
#include "tsync/kvm/clock_ns.hpp"
#include "tsync/kvm/debugfs.hpp"
#include "tsync/kvm/frequency.hpp"
#include "tsync/kvm/tsc.hpp"
