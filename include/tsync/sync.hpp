#pragma once
/// \file
/// The sync family, above `probe/` and `kvm/`: protocol selection (KVM debugfs
/// or probe exchange) and the continuous per-vCPU sync session. An OS edge: it
/// reaches debugfs, tracefs and threads.
#include "tsync/sync/registry.hpp"
#include "tsync/sync/session.hpp"
