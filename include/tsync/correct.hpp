#pragma once
/// \file
/// The correction family: sync tables, exact interpolation and step correction,
/// streaming cursor, batch correction, host→guest, offset changes (steps),
/// monotonicity check. The table's text form is in `tsync/io/table_csv.hpp`.
#include "tsync/correct/batch.hpp"
#include "tsync/correct/cursor.hpp"
#include "tsync/correct/exact.hpp"
#include "tsync/correct/monotonic.hpp"
#include "tsync/correct/offset_steps.hpp"
#include "tsync/correct/sync_table.hpp"
