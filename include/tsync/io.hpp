#pragma once
/// \file
/// The io family: every text and binary format tsync reads or writes (sync
/// table CSV, probes CSV, JSON, `kvm_write_tsc_offset` records from host trace
/// text, trace-cmd's TIME_SHIFT/TSC2NSEC options and trace.dat option reader),
/// and the shared text helpers.
#include "tsync/io/json.hpp"
#include "tsync/io/probes_csv.hpp"
#include "tsync/io/table_csv.hpp"
#include "tsync/io/text.hpp"
#include "tsync/io/tracecmd.hpp"
#include "tsync/io/tsc_offset_records.hpp"
