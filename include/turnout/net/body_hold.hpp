#pragma once
// Holding a request body whole before routing (routing by the JSON-RPC method and name of a
// request without the MCP headers): the read buffer is made large enough for the body, the
// bytes already read are moved in once, and later reads land in place — so the inspected
// bytes are the ones forwarded, never copied again.

#include "turnout/net/buffer_cache.hpp"
#include "turnout/net/io_buffer.hpp"

#include <cstddef>

namespace turnout::net {

/// Makes in able to hold length unread bytes from its start: compacts it, or moves its unread
/// bytes into a buffer of their own from cache (lend_sized). Returns whether it took one.
bool make_room_for_body(io_buffer& in, std::size_t length, buffer_cache& cache);

} // namespace turnout::net
