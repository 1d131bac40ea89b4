#include "turnout/routing/stage.hpp"

#include "turnout/edge/client_key.hpp"
#include "turnout/http/headers.hpp"
#include "turnout/http/target.hpp"
#include "turnout/session/session_id.hpp"

namespace turnout::routing {
namespace {

/// The drain of the owner's pool, or of the owner itself, is past its deadline: the session is
/// over (its streams were closed) and answers 404, whatever else still lists the backend.
bool drained_out(const runtime::upstream_state& u, const upstream::pick& owner) noexcept
{
    return owner.target->retired() || (owner.pool < u.pools.size() && u.pools[owner.pool].drain_expired);
}

} // namespace

std::string_view destination::pool_name() const noexcept
{
    if (!upstream || pool >= upstream->pools.size())
        return "-";
    return upstream->pools[pool].name;
}

namespace {

// client_key stickiness hashes with a fixed seed: every instance of a fleet, and a restarted
// one, must send a client to the same pool. Nothing keeps the hash (unlike the rate limiter's
// table, which uses a per-process seed).
constexpr std::uint64_t sticky_seed = 0x74726e6f75742d31ull;

} // namespace

refusal stage::route(const runtime::snapshot& s, const http::message_head& head, destination& dest,
                     session_binding& session, std::string_view client_address, mcp_facts mcp,
                     std::size_t listener)
{
    request_facts facts{.host = head.find(http::field_name::host).value_or(""),
                        .path = target_path(head.target()),
                        .listener = listener};
    if (s.router.has_mcp_rules() && !mcp.method.empty() && head.count(http::field_name::mcp_session_id) == 0 &&
        !session::legacy_session_id(head.target())) {
        facts.mcp_method = mcp.method;
        facts.mcp_name = mcp.name;
    }
    const auto* route = s.router.find(facts);
    if (!route)
        return http::proxy_error::no_route;
    if (route->answer) {
        dest.answer = route->answer;
        return std::nullopt;
    }
    dest.upstream = &s.upstreams[route->upstream];
    auto refused = resolve_session(*dest.upstream, head, dest, session);
    if (!refused && !dest.pinned && dest.upstream->config.client_key.enabled())
        key_client(*dest.upstream, head, client_address, dest);
    return refused;
}

void stage::key_client(const runtime::upstream_state& u, const http::message_head& head,
                       std::string_view client_address, destination& dest)
{
    if (const auto key = edge::client_key_of(u.config.client_key, head, client_address))
        dest.client_hash = edge::hash_client_key(*key, sticky_seed);
}

refusal stage::resolve_session(const runtime::upstream_state& u, const http::message_head& head,
                               destination& dest, session_binding& session)
{
    if (const auto field = head.find(http::field_name::mcp_session_id)) {
        session.client_id = *field;
        session.source = session_source::header;
    } else if (const auto located = session::legacy_session_id(head.target())) {
        session.client_id = located->value;
        session.param = located->name;
        session.source = session_source::query;
    } else {
        return std::nullopt; // no session yet: the balancer places it
    }
    if (!session::is_valid_session_id(session.client_id)) {
        session.source = session_source::none;
        return http::proxy_error::bad_session_id;
    }

    std::optional<upstream::pick> owner;
    if (const auto& tokens = u.tokens) {
        // The token names its owner; a forged or altered one opens to nothing.
        auto opened = tokens->open(session.client_id);
        if (opened)
            owner = upstream::locate(u, opened->backend_address);
        if (!owner || drained_out(u, *owner))
            return http::proxy_error::session_not_found;
        session.rewriting().backend_id = std::move(opened->original_id);
    } else {
        session.key = shared_.sessions.key_of(session.client_id);
        if (const auto owner_id = shared_.sessions.find(session.key, shared_.now_s())) {
            session.known = true;
            auto* b = shared_.backends.get(*owner_id);
            if (!b || !b->in_service())
                return http::proxy_error::session_not_found; // its backend left, and its state with it
            owner = upstream::locate(u, b);
            if (owner && drained_out(u, *owner))
                return http::proxy_error::session_not_found; // drained past its deadline
            if (!owner) // in service, but listed in another upstream: still its owner
                owner = upstream::pick{u.pools.size(), std::shared_ptr<upstream::backend>(std::shared_ptr<void>{}, b)};
        } else {
            owner = upstream::rendezvous_pick(u, session.client_id);
            if (!owner)
                return http::proxy_error::no_backend;
        }
    }
    dest.pinned = true;
    dest.pool = owner->pool;
    dest.backend = std::move(owner->target);
    return std::nullopt;
}

refusal stage::choose(destination& dest, std::span<const upstream::backend* const> tried, std::int64_t now)
{
    if (dest.pinned)
        return tried.empty() ? refusal{} : refusal{http::proxy_error::session_not_found};
    auto choice = dest.client_hash ? balancer_.choose_sticky(*dest.upstream, *dest.client_hash, tried, now)
                                   : balancer_.choose(*dest.upstream, tried, now);
    if (!choice) // nothing was available at all: 503; everything available refused: 502
        return tried.empty() ? http::proxy_error::no_backend : http::proxy_error::bad_gateway;
    dest.pool = choice->pool;
    dest.backend = std::move(choice->target);
    return std::nullopt;
}

void stage::on_response_head(const destination& dest, session_binding& session, const http::message_head& request,
                             const http::message_head& response, bool stream)
{
    const auto status = response.status();
    const bool table_mode = !dest.upstream->tokens;

    if (session.present() && (status == 404 || (request.method() == "DELETE" && status >= 200 && status < 300)))
        forget(dest, session); // the owner no longer has it, or it was ended

    if (const auto minted = response.find(http::field_name::mcp_session_id);
        minted && session::is_valid_session_id(*minted)) {
        if (table_mode) {
            if (!(session.known && *minted == session.client_id))
                shared_.sessions.insert(shared_.sessions.key_of(*minted), dest.backend->id(), shared_.now_s());
        } else {
            auto to_client = *minted == session.id_for_backend() && session.present()
                                 ? std::string(session.client_id)
                                 : dest.upstream->tokens->seal(*minted, dest.backend->address());
            session.rewriting().to_client = std::move(to_client);
        }
    }

    if (!stream || status >= 300)
        return;
    if (session.present()) {
        if (table_mode)
            count_stream(session, session.key);
    } else if (request.method() == "GET") {
        // 2024-11-05 transport: the session is announced in the stream.
        auto& rewrite = session.rewriting();
        rewrite.endpoint_scanner.emplace();
        // Rewriting changes the body's length: possible only when turnout frames it (chunked).
        rewrite.rewrite_endpoint = !table_mode && request.version_minor() >= 1;
        rewrite.held.clear();
    }
}

void stage::count_stream(session_binding& session, const session::session_key& key)
{
    if (shared_.sessions.open_stream(key, shared_.now_s())) {
        session.stream_key = key;
        session.stream_counted = true;
    }
}

void stage::watch_stream(const destination& dest, session_binding& session, const std::vector<std::string_view>& pieces)
{
    auto& scanner = session.rewrite->endpoint_scanner;
    for (const auto piece : pieces) {
        const auto url = scanner->feed(piece);
        if (!url) {
            if (scanner->done())
                break;
            continue;
        }
        if (const auto id = session::legacy_session_id(*url); id && session::is_valid_session_id(id->value)) {
            const auto key = shared_.sessions.key_of(id->value);
            shared_.sessions.insert(key, dest.backend->id(), shared_.now_s());
            count_stream(session, key);
        }
        break;
    }
    if (scanner->done())
        scanner.reset();
}

bool stage::rewrite_stream(const destination& dest, session_binding& session,
                           const std::vector<std::string_view>& pieces, bool ended)
{
    auto& rewrite = *session.rewrite;
    for (const auto piece : pieces) {
        rewrite.held.append(piece);
        if (rewrite.endpoint_scanner->done())
            continue; // bytes after the endpoint event, in the same read
        const auto url = rewrite.endpoint_scanner->feed(piece);
        if (!url)
            continue;
        const auto id = session::legacy_session_id(*url);
        if (!id || !session::is_valid_session_id(id->value))
            continue;
        const auto token = dest.upstream->tokens->seal(id->value, dest.backend->address());
        const auto rewritten = http::replace_query_parameter(*url, id->name, token);
        if (const auto at = rewrite.held.rfind(*url); at != std::string::npos)
            rewrite.held.replace(at, url->size(), rewritten);
    }
    if (!rewrite.endpoint_scanner->done() && !ended)
        return false; // still inside the first event(s): hold them
    rewrite.rewrite_endpoint = false;
    rewrite.endpoint_scanner.reset();
    return true;
}

void stage::forget(const destination& dest, session_binding& session)
{
    if (!session.present() || !dest.upstream || dest.upstream->tokens)
        return; // a token carries its owner: there is nothing to forget
    shared_.sessions.erase(session.key);
}

void stage::end_stream(session_binding& session)
{
    if (!session.stream_counted)
        return;
    session.stream_counted = false;
    shared_.sessions.close_stream(session.stream_key, shared_.now_s());
}

} // namespace turnout::routing
