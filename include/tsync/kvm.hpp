#pragma once
/// \file
/// Aggregator for tsync/kvm: exact KVM TSC math, TSC<->ns, debugfs reader.
#include "tsync/kvm/tsc.hpp"
