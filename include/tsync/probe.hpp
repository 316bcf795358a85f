#pragma once
/// \file
/// Aggregator for tsync/probe: wire messages and codec, the probe exchange
/// (initiator `run_series`, responder `serve`), the continuous per-vCPU sync
/// session and the protocol registry.
#include "tsync/probe/exchange.hpp"
#include "tsync/probe/message.hpp"
#include "tsync/probe/registry.hpp"
#include "tsync/probe/session.hpp"
