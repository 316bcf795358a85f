#pragma once
/// \file
/// The probe family: wire messages and codec, and the probe exchange
/// (initiator `run_series`, responder `serve`) over any transport.
/// The continuous per-vCPU session moved to `tsync/sync.hpp`.
#include "tsync/probe/exchange.hpp"
#include "tsync/probe/identity.hpp"
#include "tsync/probe/message.hpp"
