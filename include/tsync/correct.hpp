#pragma once
/// \file
/// Aggregator for tsync/correct: sync tables, exact interpolation and step
/// correction, streaming cursor, batch correction, host→guest, offset changes
/// located from kvm_write_tsc_offset records (and their parser for host
/// trace text), monotonicity check, CSV tables.
#include "tsync/correct/batch.hpp"
#include "tsync/correct/cursor.hpp"
#include "tsync/correct/exact.hpp"
#include "tsync/correct/monotonic.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/correct/sync_table.hpp"
#include "tsync/correct/table_csv.hpp"
#include "tsync/correct/tsc_offset_records.hpp"
