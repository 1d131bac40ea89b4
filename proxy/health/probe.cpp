#include "turnout/health/probe.hpp"

#include "turnout/http/event_stream.hpp"
#include "turnout/net/stream.hpp"
#include "turnout/net/tls_context.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::health {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// The MCP revisions turnout can proxy: a backend negotiating anything else would speak a
// protocol nobody in front of it understands.
constexpr std::array<std::string_view, 3> known_protocol_versions{"2024-11-05", "2025-03-26", "2025-06-18"};
constexpr std::string_view probe_protocol_version = "2025-06-18";

// tools/list of a large server can be a few hundred KiB; anything past this is not an answer.
constexpr std::uint64_t max_response_body = 8 * 1024 * 1024;

constexpr std::string_view initialize_body =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
    R"("capabilities":{},"clientInfo":{"name":"turnout-health","version":"0.1.0"}}})";
constexpr std::string_view initialized_body = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
constexpr std::string_view tools_list_body = R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";

// ---- canonical JSON and the tools hash -------------------------------------------------

void write_canonical(const json::value& v, std::string& out)
{
    switch (v.kind()) {
    case json::kind::object: {
        // Servers build schemas from maps and dicts: key order says nothing about the schema.
        const auto& object = v.get_object();
        std::vector<const json::key_value_pair*> members;
        members.reserve(object.size());
        for (const auto& member : object)
            members.push_back(&member);
        std::sort(members.begin(), members.end(),
                  [](const auto* a, const auto* b) { return a->key() < b->key(); });
        out += '{';
        for (std::size_t i = 0; i < members.size(); ++i) {
            if (i != 0)
                out += ',';
            out += json::serialize(json::string(members[i]->key()));
            out += ':';
            write_canonical(members[i]->value(), out);
        }
        out += '}';
        return;
    }
    case json::kind::array: {
        const auto& array = v.get_array();
        out += '[';
        for (std::size_t i = 0; i < array.size(); ++i) {
            if (i != 0)
                out += ',';
            write_canonical(array[i], out);
        }
        out += ']';
        return;
    }
    default:
        out += json::serialize(v);
        return;
    }
}

std::uint64_t hash_text(std::string_view text) { return XXH3_64bits(text.data(), text.size()); }

/// The tools array of a tools/list result, or of the whole JSON-RPC response.
const json::array* find_tools(const json::value& v)
{
    const auto* object = v.if_object();
    if (!object)
        return nullptr;
    if (const auto* result = object->if_contains("result"); result && result->is_object())
        object = &result->get_object();
    const auto* tools = object->if_contains("tools");
    return tools ? tools->if_array() : nullptr;
}

std::uint64_t hash_tools_array(const json::array& tools)
{
    std::vector<std::pair<std::string, std::string>> entries; // name, canonical inputSchema
    entries.reserve(tools.size());
    for (const auto& tool : tools) {
        std::pair<std::string, std::string> entry;
        if (const auto* object = tool.if_object()) {
            if (const auto* name = object->if_contains("name"); name && name->is_string())
                entry.first = name->get_string();
            if (const auto* schema = object->if_contains("inputSchema"))
                write_canonical(*schema, entry.second);
        } else {
            write_canonical(tool, entry.second);
        }
        entries.push_back(std::move(entry));
    }
    std::sort(entries.begin(), entries.end());
    // Unit/record separators cannot appear unescaped in JSON text, so the concatenation
    // cannot be the same for two different tool sets.
    std::string text;
    for (const auto& [name, schema] : entries) {
        text += name;
        text += '\x1f';
        text += schema;
        text += '\x1e';
    }
    return hash_text(text);
}

std::vector<upstream::tool_signature> signatures_of(const json::array& tools)
{
    std::vector<upstream::tool_signature> out;
    out.reserve(tools.size());
    for (const auto& tool : tools) {
        const auto* object = tool.if_object();
        const auto* name = object ? object->if_contains("name") : nullptr;
        if (!name || !name->is_string())
            continue;
        std::string schema;
        if (const auto* s = object->if_contains("inputSchema"))
            write_canonical(*s, schema);
        out.push_back({std::string(name->get_string()), hash_text(schema)});
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name == b.name; }),
              out.end());
    return out;
}

// ---- Server-Sent Events -----------------------------------------------------------------

/// The JSON-RPC response among the complete events of an SSE body (notifications and
/// requests the server sends first are skipped). final = the stream ended: a last event
/// without its blank line counts too.
std::optional<json::value> response_in_event_stream(std::string_view body, bool final)
{
    std::string data;
    bool has_data = false;
    std::optional<json::value> response;
    auto take_event = [&] {
        if (!has_data)
            return;
        has_data = false;
        boost::system::error_code ec;
        auto value = json::parse(data, ec);
        data.clear();
        if (ec || !value.is_object())
            return;
        const auto& object = value.get_object();
        if (object.contains("id") && (object.contains("result") || object.contains("error")))
            response = std::move(value);
    };
    auto on_line = [&](std::string_view line) {
        if (line.empty()) {
            take_event();
            return response.has_value();
        }
        if (const auto [field, value] = turnout::http::split_event_field(line); field == "data" && line.front() != ':') {
            if (has_data)
                data += '\n';
            data += value;
            has_data = true;
        }
        return false;
    };
    turnout::http::event_stream_lines lines(body.size() + 1);
    lines.feed(body, on_line);
    if (!response && final) {
        lines.finish(on_line);
        take_event();
    }
    return response;
}

std::string lower_first(std::string text)
{
    if (!text.empty())
        text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    return text;
}

// ---- one probe ---------------------------------------------------------------------------

/// One probe: a single connection (reopened only if the backend closes it between steps)
/// under one deadline, which covers every step including the cleanup: when it passes, the
/// socket closes and whatever is pending fails as a timeout.
class probe_op : public std::enable_shared_from_this<probe_op> {
public:
    probe_op(asio::io_context& io, const tcp::endpoint& endpoint, std::string host_header,
             const config::health_config& check, std::function<void(probe_result)> done,
             std::shared_ptr<net::tls_client_context> tls)
        : stream_(io),
          deadline_(io),
          endpoint_(endpoint),
          host_(std::move(host_header)),
          check_(check),
          done_(std::move(done)),
          tls_(std::move(tls))
    {}

    void start()
    {
        started_ = clock_type::now();
        deadline_.expires_after(check_.timeout);
        deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec)
                return; // finished in time
            self->timed_out_ = true;
            self->close();
        });
        step_ = check_.kind == config::health_kind::mcp ? step::initialize : step::http_get;
        do_connect();
    }

private:
    enum class step { http_get, initialize, initialized, tools_list, end_session };

    std::string step_name() const
    {
        switch (step_) {
        case step::http_get: return "GET " + check_.path;
        case step::initialize: return "initialize";
        case step::initialized: return "notifications/initialized";
        case step::tools_list: return "tools/list";
        case step::end_session: return "DELETE";
        }
        return "probe";
    }

    void do_connect()
    {
        buffer_.clear();
        if (timed_out_)
            return fail_transport("connect", asio::error::timed_out);
        stream_.next_layer().async_connect(endpoint_,
                                           [self = shared_from_this()](beast::error_code ec) { self->on_connect(ec); });
    }

    void on_connect(beast::error_code ec)
    {
        if (ec)
            return fail_transport("connect", ec);
        if (tls_)
            return do_handshake();
        connected_ = true;
        do_write();
    }

    // A TLS pool is probed over TLS with its own verification: a backend whose certificate
    // would make every request fail must not count as healthy.
    void do_handshake()
    {
        auto& tls = stream_.enable_tls(tls_->context()); // fresh per connection
        if (!tls_->prepare(tls.native_handle(), endpoint_))
            return fail_transport("TLS setup", make_error_code(asio::error::invalid_argument));
        tls.async_handshake(asio::ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
            if (ec)
                return self->fail_transport("TLS handshake", ec);
            self->connected_ = true;
            self->do_write();
        });
    }

    /// Sends the current step's request, reconnecting first if the backend closed the last one.
    void do_request()
    {
        if (!connected_)
            return do_connect();
        do_write();
    }

    void do_write()
    {
        build_request();
        http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_write(ec);
        });
    }

    void build_request()
    {
        request_ = {};
        request_.version(11);
        request_.target(check_.path);
        request_.set(http::field::host, host_);
        request_.set(http::field::user_agent, "turnout-health/0.1.0");
        request_.keep_alive(true);
        switch (step_) {
        case step::http_get:
            request_.method(http::verb::get);
            break;
        case step::initialize: set_mcp_post(initialize_body); break;
        case step::initialized: set_mcp_post(initialized_body); break;
        case step::tools_list: set_mcp_post(tools_list_body); break;
        case step::end_session:
            request_.method(http::verb::delete_);
            set_mcp_headers();
            break;
        }
        request_.prepare_payload();
    }

    void set_mcp_post(std::string_view body)
    {
        request_.method(http::verb::post);
        request_.set(http::field::content_type, "application/json");
        request_.set(http::field::accept, "application/json, text/event-stream");
        set_mcp_headers();
        request_.body() = body;
    }

    void set_mcp_headers()
    {
        if (!session_id_.empty())
            request_.set("Mcp-Session-Id", session_id_);
        if (!protocol_version_.empty())
            request_.set("MCP-Protocol-Version", protocol_version_);
    }

    void on_write(beast::error_code ec)
    {
        if (ec)
            return fail_transport(step_name(), ec);
        do_read_header();
    }

    void do_read_header()
    {
        parser_.emplace();
        parser_->body_limit(max_response_body);
        http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_read_header(ec);
        });
    }

    void on_read_header(beast::error_code ec)
    {
        if (ec)
            return fail_transport(step_name(), ec);
        const auto& res = parser_->get();
        if (step_ == step::initialize)
            if (const auto it = res.find("Mcp-Session-Id"); it != res.end())
                session_id_ = std::string(it->value());
        const auto status = res.result_int();
        if (step_ == step::end_session)
            return finish(); // cleanup: its answer does not change the verdict
        if (status < 200 || status > 299) {
            // A draining MCP server answers 503 to new sessions: not ready, whatever the step.
            if (status == 503 && check_.kind == config::health_kind::mcp)
                return fail("backend answered 503");
            return fail(step_name() + " answered " + std::to_string(status));
        }
        if (step_ == step::http_get) {
            result_.ok = true; // the status is the whole verdict: no need to read the body
            return finish();
        }
        if (expects_response() && is_event_stream())
            return do_read_events();
        do_read_body();
    }

    bool expects_response() const { return step_ == step::initialize || step_ == step::tools_list; }

    bool is_event_stream() const
    {
        const auto type = parser_->get()[http::field::content_type];
        return type.substr(0, 17) == "text/event-stream";
    }

    void do_read_body()
    {
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_read_body(ec);
        });
    }

    void on_read_body(beast::error_code ec)
    {
        if (ec)
            return fail_transport(step_name(), ec);
        connected_ = parser_->get().keep_alive();
        if (!expects_response())
            return on_response(json::value{});
        boost::system::error_code parse_ec;
        auto value = json::parse(parser_->get().body(), parse_ec);
        if (parse_ec)
            return fail(step_name() + ": the answer is not JSON");
        on_response(std::move(value));
    }

    /// An SSE answer may stay open after the response event (or carry notifications first):
    /// read until the response shows up rather than until the stream ends.
    void do_read_events()
    {
        http::async_read_some(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_read_events(ec);
        });
    }

    void on_read_events(beast::error_code ec)
    {
        if (ec)
            return fail_transport(step_name(), ec);
        const bool done = parser_->is_done();
        if (auto value = response_in_event_stream(parser_->get().body(), done)) {
            // A stream still open cannot carry the next request: open another connection.
            connected_ = done && parser_->get().keep_alive();
            if (!connected_)
                close();
            return on_response(std::move(*value));
        }
        if (done)
            return fail(step_name() + ": the event stream ended without a response");
        do_read_events();
    }

    void on_response(json::value value)
    {
        switch (step_) {
        case step::initialize: return on_initialize(value);
        case step::initialized: return next(step::tools_list);
        case step::tools_list: return on_tools_list(value);
        case step::http_get:
        case step::end_session: return finish();
        }
    }

    /// The JSON-RPC result of value, or nullptr after failing the probe.
    const json::object* result_of(const json::value& value)
    {
        const auto* object = value.if_object();
        if (!object) {
            fail(step_name() + ": the answer is not a JSON-RPC response");
            return nullptr;
        }
        if (const auto* error = object->if_contains("error")) {
            std::string text = step_name() + ": JSON-RPC error";
            if (const auto* e = error->if_object()) {
                if (const auto* code = e->if_contains("code"))
                    text += " " + json::serialize(*code);
                if (const auto* message = e->if_contains("message"); message && message->is_string())
                    text += ": " + std::string(message->get_string());
            }
            fail(text);
            return nullptr;
        }
        const auto* result = object->if_contains("result");
        if (!result || !result->is_object()) {
            fail(step_name() + ": the response has no result");
            return nullptr;
        }
        return &result->get_object();
    }

    void on_initialize(const json::value& value)
    {
        const auto* result = result_of(value);
        if (!result)
            return;
        const auto* version = result->if_contains("protocolVersion");
        if (!version || !version->is_string() || version->get_string().empty())
            return fail("initialize: the result has no protocolVersion");
        const std::string_view v = version->get_string();
        if (std::find(known_protocol_versions.begin(), known_protocol_versions.end(), v) == known_protocol_versions.end())
            return fail("unsupported protocolVersion " + std::string(v));
        protocol_version_ = v;
        next(step::initialized);
    }

    void on_tools_list(const json::value& value)
    {
        const auto* result = result_of(value);
        if (!result)
            return;
        const auto* tools = result->if_contains("tools");
        if (!tools || !tools->is_array())
            return fail("tools/list: the result has no tools array");
        if (tools->get_array().empty())
            return fail("tools/list is empty");
        result_.tools_hash = hash_tools_array(tools->get_array());
        result_.tools = signatures_of(tools->get_array());
        result_.ok = true;
        // A stateless server has no session to end.
        if (session_id_.empty())
            return finish();
        next(step::end_session);
    }

    void next(step s)
    {
        step_ = s;
        do_request();
    }

    void fail_transport(const std::string& what, beast::error_code ec)
    {
        if (timed_out_) {
            // The cleanup DELETE may run out of time without changing the verdict.
            if (step_ == step::end_session)
                return finish();
            return fail("timed out after " + std::to_string(check_.timeout.count()) + " ms");
        }
        if (step_ == step::end_session)
            return finish();
        if (ec == http::error::end_of_stream || ec == asio::error::eof)
            return fail(what + ": the backend closed the connection");
        fail(what + ": " + lower_first(ec.message()));
    }

    void fail(std::string error)
    {
        result_.ok = false;
        result_.error = std::move(error);
        result_.tools_hash.reset();
        result_.tools.clear();
        finish();
    }

    void finish()
    {
        deadline_.cancel();
        close();
        result_.latency = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started_);
        auto done = std::move(done_);
        done_ = nullptr;
        if (done)
            done(std::move(result_));
    }

    void close()
    {
        connected_ = false;
        beast::error_code ignored;
        stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.next_layer().close(ignored);
    }

    net::socket_stream stream_;
    asio::steady_timer deadline_;
    bool timed_out_ = false;
    tcp::endpoint endpoint_;
    std::string host_;
    config::health_config check_;
    std::function<void(probe_result)> done_;
    std::shared_ptr<net::tls_client_context> tls_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    std::optional<http::response_parser<http::string_body>> parser_;
    step step_ = step::http_get;
    bool connected_ = false;
    std::string session_id_;
    std::string protocol_version_;
    clock_type::time_point started_;
    probe_result result_;
};

} // namespace

void probe(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, std::string host_header,
           const config::health_config& check, std::function<void(probe_result)> done,
           std::shared_ptr<net::tls_client_context> tls)
{
    std::make_shared<probe_op>(io, endpoint, std::move(host_header), check, std::move(done), std::move(tls))->start();
}

std::uint64_t hash_tools(std::string_view tools_list_result_json)
{
    boost::system::error_code ec;
    const auto value = json::parse(tools_list_result_json, ec);
    if (!ec)
        if (const auto* tools = find_tools(value))
            return hash_tools_array(*tools);
    return hash_text(tools_list_result_json);
}

std::vector<upstream::tool_signature> tool_signatures(std::string_view tools_list_result_json)
{
    boost::system::error_code ec;
    const auto value = json::parse(tools_list_result_json, ec);
    if (!ec)
        if (const auto* tools = find_tools(value))
            return signatures_of(*tools);
    return {};
}

} // namespace turnout::health
