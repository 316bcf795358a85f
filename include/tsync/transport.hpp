#pragma once
/// \file
/// Aggregator for tsync/transport: the transport concept and its POSIX models
/// (socketpair, Unix socket and hybrid vsock, TCP, vsock, FIFO pair and
/// character device) plus the simulated link in virtual time.
#include "tsync/transport/fd_stream.hpp"
#include "tsync/transport/fifo.hpp"
#include "tsync/transport/socket.hpp"
#include "tsync/transport/socketpair.hpp"
#include "tsync/transport/tcp.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/transport/unix_socket.hpp"
#include "tsync/transport/vsock.hpp"
