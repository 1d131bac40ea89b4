#pragma once
// The routing stage: the one place that decides where an exchange goes and what its answer
// teaches. Handed the request head, the snapshot, the session table and the balancer (it owns
// no socket and knows no connection, as Envoy's router is handed its connection pool), it
// answers with a destination — {upstream, pool, backend, pinned} — or the proxy error to
// answer instead; given the response head, it learns or forgets sessions and says how the
// answer must be rewritten (token mode). Rules beyond host and path (MCP method and tool)
// belong here too.

#include "turnout/config/config.hpp"
#include "turnout/http/message_parser.hpp"
#include "turnout/http/proxy_error.hpp"
#include "turnout/routing/mcp_facts.hpp"
#include "turnout/routing/session_binding.hpp"
#include "turnout/runtime/shared_state.hpp"
#include "turnout/runtime/snapshot.hpp"
#include "turnout/upstream/balancer.hpp"

#include <cstdint>
#include <memory>
#include <string_view>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace turnout::routing {

/// Where an exchange goes.
struct destination {
    const runtime::upstream_state* upstream = nullptr;
    std::size_t pool = 0; // == upstream->pools.size(): an owner listed in another upstream
    std::shared_ptr<upstream::backend> backend;
    bool pinned = false; // a session's owner: whatever weights, drains or health say
    /// client_key's hash, for a request without a session of an upstream that has one.
    std::optional<std::uint64_t> client_hash;
    /// The route answers itself (nginx's return): upstream stays null, nothing is forwarded.
    const config::fixed_answer* answer = nullptr;

    /// The pool's name, or "-" where the backend sits in no pool of the upstream.
    std::string_view pool_name() const noexcept;
};

/// Answers a routing step: no value = go on; a value = answer the client with it.
using refusal = std::optional<http::proxy_error>;

class stage {
public:
    /// shared: the session table and the backend registry; balancer: the worker's own.
    stage(runtime::shared_state& shared, upstream::balancer& balancer) : shared_(shared), balancer_(balancer) {}

    /// A request head arrived: its upstream (by host, path and MCP facts) and, for a request
    /// of a known session, its owner; for one without, the client_key hash the pool is chosen
    /// by. Fills dest and session. client_address: the peer's address (client_key = "ip").
    /// A request that names a session routes on host and path alone, whatever its MCP facts:
    /// its owner serves it, so no rule on a method may send it elsewhere. listener: which
    /// [[listen]] accepted it (routes may be limited to some). A route with a fixed answer
    /// sets dest.answer and nothing else.
    refusal route(const runtime::snapshot& s, const http::message_head& head, destination& dest,
                  session_binding& session, std::string_view client_address = {}, mcp_facts mcp = {},
                  std::size_t listener = 0);

    /// A backend for the next attempt: the owner for a pinned exchange (once: a session's
    /// state lives in one process, no other can take it), otherwise the balancer's choice
    /// among those not yet tried. now: monotonic_ms of the caller's step.
    refusal choose(destination& dest, std::span<const upstream::backend* const> tried, std::int64_t now);

    /// The answer's head arrived from dest.backend: learns the session it created or
    /// announces, forgets one that ended (DELETE) or that its owner no longer has (404), and
    /// prepares what the answer's head and stream need rewritten. stream: the answer is an
    /// event stream.
    void on_response_head(const destination& dest, session_binding& session, const http::message_head& request,
                          const http::message_head& response, bool stream);

    /// Legacy transport, table mode: the stream's bytes on their way out (only observed).
    void watch_stream(const destination& dest, session_binding& session,
                      const std::vector<std::string_view>& pieces);

    /// Legacy transport, token mode: appends the stream's bytes to session.held, rewriting
    /// the endpoint URL's session id into a token. Returns true when held may go out (the
    /// endpoint event was seen, or the scan gave up, or the answer ended: `ended`).
    bool rewrite_stream(const destination& dest, session_binding& session,
                        const std::vector<std::string_view>& pieces, bool ended);

    /// The session's owner lost it, or will: forget it (table mode).
    void forget(const destination& dest, session_binding& session);

    /// The exchange's stream ended: the session may now idle out.
    void end_stream(session_binding& session);

private:
    refusal resolve_session(const runtime::upstream_state& u, const http::message_head& head, destination& dest,
                            session_binding& session);
    void count_stream(session_binding& session, const session::session_key& key);
    static void key_client(const runtime::upstream_state& u, const http::message_head& head,
                           std::string_view client_address, destination& dest);

    runtime::shared_state& shared_;
    upstream::balancer& balancer_;
};

} // namespace turnout::routing
