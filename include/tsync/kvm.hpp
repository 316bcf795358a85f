#pragma once
/// \file
/// The KVM family: exact KVM TSC math (forward, inverse, nested), batch
/// conversions with run-time selected kernels, how KVM picks its parameters,
/// and TSC<->ns (perf, cyc2ns, kvmclock). Pure arithmetic: the debugfs reader
/// is an OS edge, included explicitly with `tsync/kvm/debugfs.hpp` (or `tsync/sync.hpp`).
#include "tsync/kvm/batch.hpp"
#include "tsync/kvm/clock_ns.hpp"
#include "tsync/kvm/frequency.hpp"
#include "tsync/kvm/tsc.hpp"
