#pragma once
// One request and its answer on a client connection: where it goes, how far each flow got,
// and what it counted. Everything here starts fresh with the next request, by one assignment
// (`exchange_ = {}`); what outlives an exchange (sockets, read buffers, scratch for heads)
// belongs to the connection.

#include "turnout/edge/stream_limiter.hpp"
#include "turnout/mcp/rpc_watch.hpp"
#include "turnout/routing/session_binding.hpp"
#include "turnout/routing/stage.hpp"
#include "turnout/upstream/connection_pool.hpp"

#include <boost/container/small_vector.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace turnout::net {

// inspect: the head is in, and the body is being read whole before routing (MCP facts).
enum class request_phase { idle, head, inspect, routing, body, sent };
enum class response_phase { none, head, body, done };

struct exchange {
    using clock = std::chrono::steady_clock;

    request_phase request = request_phase::idle;
    response_phase response = response_phase::none;

    routing::destination dest;
    routing::session_binding session;
    /// Backends tried for this exchange (a refused connect moves on to another).
    boost::container::small_vector<const upstream::backend*, 4> tried;
    std::unique_ptr<upstream::upstream_connection> upstream;
    /// max_streams_per_client: this request's place among its client's open streams.
    edge::stream_slot stream_slot;

    // request flow
    bool request_head_sent = false;
    bool request_chunked = false;
    bool expect_continue = false;
    bool replayable = false; // the whole request went out in the first write (owned copy kept)
    bool replaying = false;  // ... and goes out again on a fresh connection
    bool body_held = false;  // the body was read whole before routing into a buffer of its own:
                             // forwarded from there as it is, not copied again

    // response flow
    bool response_head_sent = false;
    bool response_chunked = false; // turnout frames the answer chunked toward the client
    bool interim_pending = false;
    bool stream = false; // the answer is an event stream
    mcp::rpc_watch rpc; // what the JSON-RPC of the exchange said (method, tool, outcome)
    std::uint64_t response_bytes_in = 0;

    bool failed = false; // an error answer is going out; the flows stop
    unsigned status = 0;
    std::uint64_t bytes_out = 0;
    clock::time_point started;
    clock::time_point upstream_started;

    // accounting (exact: each exchange adds to the backend's counters once, and takes back once)
    bool accounted = false;
    bool outcome_recorded = false;
    bool latency_recorded = false; // response-head latency (or, for a POST's event stream, its answer's)
    bool logged = false;
    const upstream::backend* failure_noted = nullptr; // failed_requests_total counted for it

    /// The backend took the request: in flight, and one more request.
    void begin_accounting() noexcept;
    /// It is over (or became a stream that is over); failed counts an error.
    void end_accounting(bool failed_exchange) noexcept;
    /// A replay moved the request to another backend: so do its counts.
    void move_accounting_from(upstream::backend& previous) noexcept;
    /// The answer became an event stream: a stream now, no longer a request in flight.
    void become_stream() noexcept;
    /// Status class and latency of the answer, once.
    void record_outcome(clock::time_point now) noexcept;
    /// The backend failed this exchange (connect, reset, garbage, timeout).
    void note_backend_failure(clock::time_point now) noexcept;
    /// ... by refusing the connection or not accepting it in time.
    void note_connect_failure(clock::time_point now) noexcept;
    /// The answer's head came (or, for a POST answered with an event stream, its JSON-RPC
    /// answer): its latency, once.
    void record_head_latency(clock::time_point now) noexcept;
    /// The request went wrong on its current backend (counted once per backend).
    void note_failed_request() noexcept;
    /// Whether the exchange reached its backend (a request was sent there).
    bool reached_backend() const noexcept { return dest.backend && upstream_started >= started; }
};

} // namespace turnout::net
