// turnoutctl: the admin client. Turns one command line into one or a few HTTP/1.1 + JSON calls
// on turnout's admin Unix socket (SPEC.md "Binaries" and "Admin socket") and the answer into a
// table, a one-line confirmation, or (--json) the server's document as is.
//
// Exit status: 0 done; 1 refused or failed (one line on stderr); 2 usage error.

#include "turnout/config/duration.hpp"
#include "turnout/ctl/admin_client.hpp"
#include "turnout/ctl/rollout_view.hpp"
#include "turnout/ctl/status_view.hpp"
#include "turnout/version.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace turnout::ctl {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* default_config = "/etc/turnout/turnout.toml";
constexpr auto drain_poll_interval = 500ms;
// The server's own default when drain is called without a timeout (proxy.drain_timeout).
constexpr auto default_drain_timeout = 30s;
// After the deadline the server closes the pool's streams spread over a short window, so the
// counts reach zero a little after it; the wait allows for that window.
constexpr auto drain_wait_margin = 5s;

/// A mistake on the command line: exit 2 with a short usage (the command's own, when known).
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct command_shape {
    std::string_view name;
    std::string_view arguments;
    std::string_view summary;
    std::size_t min_operands;
    std::size_t max_operands;
    std::vector<std::string_view> options;
};

constexpr std::size_t unlimited = static_cast<std::size_t>(-1);

const std::vector<command_shape>& command_shapes()
{
    static const std::vector<command_shape> shapes{
        {"status", "", "pools, weights, backends, health and live counts", 0, 0, {}},
        {"weights", "UPSTREAM POOL=N [POOL=N ...] [--force]", "set new-session weights", 2, unlimited, {"--force"}},
        {"switch", "UPSTREAM POOL [--force] [--watch DUR]",
         "POOL gets all new sessions, the others 0 (--watch: switch back if it fails the analysis)", 2, 2,
         {"--force", "--watch"}},
        {"rollout",
         "start UPSTREAM POOL [--steps 5:30m,25:1h,50:1h,100] [--baseline POOL] [--interval DUR] "
         "[--failure-limit N] [--on-failure rollback|pause] [--force] [--wait] | "
         "status|pause|resume|promote|abort UPSTREAM [--wait]",
         "progressive delivery with automatic analysis", 2, 3,
         {"--steps", "--baseline", "--interval", "--failure-limit", "--on-failure", "--force", "--wait"}},
        {"rollback", "UPSTREAM", "restore the weights before the last change", 1, 1, {}},
        {"drain", "UPSTREAM POOL [ADDR] [--timeout DUR] [--wait]", "no new sessions for POOL (or its backend ADDR)",
         2, 3, {"--timeout", "--wait"}},
        {"undrain", "UPSTREAM POOL [ADDR]", "end a drain", 2, 3, {}},
        {"backends", "UPSTREAM POOL ADDR [ADDR ...]", "replace (or create) a pool's backend set", 3, unlimited, {}},
        {"reload", "", "re-read the config file (same as SIGHUP)", 0, 0, {}},
        {"upgrade", "[--binary PATH]", "hand over to a new turnout process", 0, 0, {"--binary"}},
    };
    return shapes;
}

const command_shape* find_shape(std::string_view name)
{
    for (const auto& shape : command_shapes())
        if (shape.name == name)
            return &shape;
    return nullptr;
}

constexpr std::string_view synopsis = "usage: turnoutctl [-s SOCKET] [--json] ";

std::string command_usage(const command_shape& shape)
{
    return std::string(synopsis) + std::string(shape.name) + (shape.arguments.empty() ? "" : " ") +
           std::string(shape.arguments) + "\n";
}

std::string full_usage()
{
    std::string out = std::string(synopsis) + "COMMAND ...\ncommands:\n";
    std::size_t width = 0; // summaries line up after the longest synopsis
    for (const auto& shape : command_shapes())
        width = std::max(width, shape.name.size() + shape.arguments.size() + 5);
    for (const auto& shape : command_shapes()) {
        std::string line = "  " + std::string(shape.name) + " " + std::string(shape.arguments);
        line.resize(width, ' ');
        out += line + std::string(shape.summary) + "\n";
    }
    return out +
           "options:\n"
           "  -s, --socket PATH   admin socket (default: admin_socket of /etc/turnout/turnout.toml,\n"
           "                      else $TURNOUT_SOCKET)\n"
           "  -c, --config PATH   read admin_socket from this config file instead\n"
           "  --json              print the server's JSON answer as is\n"
           "  -h, --help          this text\n"
           "  --version           turnoutctl's version\n";
}

/// What follows a usage error: the command's synopsis, or the list of commands.
std::string short_usage(std::string_view command)
{
    if (const auto* shape = find_shape(command))
        return command_usage(*shape);
    std::string out = std::string(synopsis) + "COMMAND ...\n  commands:";
    for (const auto& shape : command_shapes())
        out += " " + std::string(shape.name);
    return out + "\n  turnoutctl --help for more\n";
}

// ---------------------------------------------------------------------------------------------
// The command line

struct invocation {
    std::optional<std::string> socket;
    std::optional<std::string> config_path;
    bool json = false;
    bool help = false;
    bool version = false;
    bool force = false;
    bool wait = false;
    std::optional<std::string> timeout;
    std::optional<std::string> binary;
    std::optional<std::string> watch;
    std::optional<std::string> steps;
    std::optional<std::string> baseline;
    std::optional<std::string> interval;
    std::optional<std::string> failure_limit;
    std::optional<std::string> on_failure;
    std::string command;
    std::vector<std::string> operands;
    std::vector<std::string> command_options; // as spelled, to tell a command it does not take one
};

// Options may come before or after the command: none of them is ambiguous, and operators type
// `turnoutctl status --json` as often as `turnoutctl --json status`.
invocation parse_command_line(int argc, char** argv)
{
    invocation inv;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            (inv.command.empty() ? inv.command : inv.operands.emplace_back()) = arg;
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        // "--name=value" and "--name value" both work for the options that take a value.
        const auto eq = arg.find('=');
        const std::string name = arg.starts_with("--") && eq != std::string::npos ? arg.substr(0, eq) : arg;
        std::optional<std::string> inline_value;
        if (name.size() != arg.size())
            inline_value = arg.substr(eq + 1);
        auto value = [&]() -> std::string {
            if (inline_value)
                return *inline_value;
            if (i + 1 >= argc)
                throw usage_error(name + " needs a value");
            return argv[++i];
        };
        auto flag = [&](bool& target) {
            if (inline_value)
                throw usage_error(name + " does not take a value");
            target = true;
        };

        if (name == "-s" || name == "--socket")
            inv.socket = value();
        else if (name == "-c" || name == "--config")
            inv.config_path = value();
        else if (name == "--json")
            flag(inv.json);
        else if (name == "-h" || name == "--help")
            flag(inv.help);
        else if (name == "--version")
            flag(inv.version);
        else if (name == "--force")
            flag(inv.force);
        else if (name == "--wait")
            flag(inv.wait);
        else if (name == "--timeout")
            inv.timeout = value();
        else if (name == "--binary")
            inv.binary = value();
        else if (name == "--watch")
            inv.watch = value();
        else if (name == "--steps")
            inv.steps = value();
        else if (name == "--baseline")
            inv.baseline = value();
        else if (name == "--interval")
            inv.interval = value();
        else if (name == "--failure-limit")
            inv.failure_limit = value();
        else if (name == "--on-failure")
            inv.on_failure = value();
        else
            throw usage_error("unknown option " + name);
        if (name != "-s" && name != "--socket" && name != "-c" && name != "--config" && name != "--json" &&
            name != "-h" && name != "--help" && name != "--version")
            inv.command_options.push_back(name);
    }
    return inv;
}

void check_shape(const invocation& inv)
{
    if (inv.command.empty())
        throw usage_error("no command given");
    const command_shape* shape = find_shape(inv.command);
    if (!shape)
        throw usage_error("unknown command '" + inv.command + "'");
    for (const std::string& option : inv.command_options)
        if (std::find(shape->options.begin(), shape->options.end(), option) == shape->options.end())
            throw usage_error(inv.command + " does not take " + option);
    if (inv.operands.size() < shape->min_operands)
        throw usage_error(inv.command + ": missing arguments");
    if (inv.operands.size() > shape->max_operands)
        throw usage_error(inv.command + ": too many arguments");
    for (const std::string& operand : inv.operands)
        if (operand.empty())
            throw usage_error(inv.command + ": empty argument");
}

// ---------------------------------------------------------------------------------------------
// Finding the admin socket: -s, else the config file's admin_socket, else TURNOUT_SOCKET.

/// admin_socket of the config file at path, resolved like turnout resolves it (relative to the
/// file's folder); nullopt when the file has none.
std::optional<std::string> admin_socket_of(const fs::path& path)
{
    toml::table document;
    try {
        document = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
        throw usage_error("cannot read " + path.string() + ": " + std::string(e.description()));
    }
    const auto socket = document["proxy"]["admin_socket"].value<std::string>();
    if (!socket || socket->empty())
        return std::nullopt;
    const fs::path p{*socket};
    if (p.is_absolute())
        return p.lexically_normal().string();
    std::error_code ec;
    const fs::path folder = fs::absolute(path, ec).parent_path();
    return (folder / p).lexically_normal().string();
}

std::string find_socket(const invocation& inv)
{
    if (inv.socket)
        return *inv.socket;
    if (inv.config_path) {
        // Named on purpose: a missing file or key is a mistake, not a reason to look elsewhere.
        if (!fs::exists(*inv.config_path))
            throw usage_error("cannot read " + *inv.config_path + ": no such file");
        if (auto socket = admin_socket_of(*inv.config_path))
            return *socket;
        throw usage_error(*inv.config_path + " has no proxy.admin_socket");
    }
    if (std::error_code ec; fs::exists(default_config, ec)) {
        try {
            if (auto socket = admin_socket_of(default_config))
                return *socket;
        } catch (const usage_error&) {
            // A broken default config should not block TURNOUT_SOCKET; turnout -t reports it.
        }
    }
    if (const char* env = std::getenv("TURNOUT_SOCKET"); env && *env)
        return env;
    throw usage_error("no admin socket: use -s or TURNOUT_SOCKET");
}

// ---------------------------------------------------------------------------------------------
// Commands

struct context {
    admin_client& client;
    const invocation& inv;
};

/// Prints a successful change: the server's JSON with --json, else the confirmation line.
int confirm(const context& ctx, const reply& r, const std::string& line)
{
    if (ctx.inv.json)
        std::cout << (r.body.empty() ? "{}" : r.body) << (r.body.ends_with('\n') ? "" : "\n");
    else
        std::cout << line << '\n';
    return 0;
}

int run_status(const context& ctx)
{
    const reply r = expect_success(ctx.client.request(http::verb::get, "/v1/status"));
    if (ctx.inv.json)
        return confirm(ctx, r, {});
    const json::value doc = parse_json(r);
    if (!doc.is_object())
        throw failure("the server's status is not a JSON object");
    print_status(std::cout, doc.as_object());
    return 0;
}

std::int64_t parse_weight(std::string_view pool, std::string_view text)
{
    std::int64_t value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 0)
        throw usage_error("weights: weight of " + std::string(pool) + " must be an integer >= 0, not '" +
                          std::string(text) + "'");
    return value;
}

int run_weights(const context& ctx)
{
    const std::string& upstream = ctx.inv.operands[0];
    json::object body;
    std::string summary;
    for (std::size_t i = 1; i < ctx.inv.operands.size(); ++i) {
        const std::string& arg = ctx.inv.operands[i];
        const auto eq = arg.find('=');
        if (eq == std::string::npos || eq == 0)
            throw usage_error("weights: expected POOL=N, not '" + arg + "'");
        const std::string pool = arg.substr(0, eq);
        if (body.contains(pool))
            throw usage_error("weights: pool " + pool + " given twice");
        const std::int64_t weight = parse_weight(pool, std::string_view(arg).substr(eq + 1));
        body[pool] = weight;
        summary += " " + pool + "=" + std::to_string(weight);
    }
    // "Not all 0" is the server's to judge: pools not named keep their weight. Forced, the
    // weights travel wrapped; unforced, in the form every turnout reads.
    const auto sent = ctx.inv.force ? json::object{{"weights", std::move(body)}, {"force", true}} : std::move(body);
    const reply r = expect_success(
        ctx.client.request(http::verb::put, upstream_path(upstream) + "/weights", json::serialize(sent)));
    return confirm(ctx, r, upstream + ": weights" + summary + (ctx.inv.force ? " (forced)" : ""));
}

int run_switch(const context& ctx)
{
    const std::string& upstream = ctx.inv.operands[0];
    const std::string& pool = ctx.inv.operands[1];
    json::object body{{"pool", pool}, {"force", ctx.inv.force}};
    if (ctx.inv.watch)
        body["watch"] = *ctx.inv.watch;
    const reply r = expect_success(
        ctx.client.request(http::verb::post, upstream_path(upstream) + "/switch", json::serialize(body)));
    std::string line = upstream + ": switched to " + pool + (ctx.inv.force ? " (forced)" : "") +
                       (ctx.inv.watch ? ", watched for " + *ctx.inv.watch : "");
    if (!ctx.inv.json)
        if (const std::string weights = weights_of(parse_json(r)); !weights.empty())
            line += ", weights " + weights;
    return confirm(ctx, r, line);
}

int run_rollback(const context& ctx)
{
    const std::string& upstream = ctx.inv.operands[0];
    const reply r = expect_success(ctx.client.request(http::verb::post, upstream_path(upstream) + "/rollback"));
    std::string line = upstream + ": rolled back";
    if (!ctx.inv.json)
        if (const std::string weights = weights_of(parse_json(r)); !weights.empty())
            line += ", weights " + weights;
    return confirm(ctx, r, line);
}

/// What drain and undrain name: a pool, or one backend of it.
struct drain_target {
    std::string upstream;
    std::string pool;
    std::optional<std::string> address;

    explicit drain_target(const std::vector<std::string>& operands)
        : upstream(operands[0]), pool(operands[1])
    {
        if (operands.size() > 2)
            address = operands[2];
    }
    std::string name() const { return upstream + "/" + pool + (address ? " backend " + *address : ""); }
    std::string path() const { return address ? backend_path(upstream, pool, *address) : pool_path(upstream, pool); }
};

/// What a draining pool or backend still holds (a pool: summed over its backends).
struct drain_load {
    std::int64_t sessions = 0;
    std::int64_t streams = 0;
    std::int64_t connections = 0;

    bool empty() const { return sessions == 0 && streams == 0 && connections == 0; }
    bool operator==(const drain_load&) const = default;

    std::string describe() const
    {
        return std::to_string(sessions) + " sessions, " + std::to_string(streams) + " streams, " +
               std::to_string(connections) + " connections left";
    }
};

drain_load load_of(const json::value& status, const drain_target& target)
{
    const json::object* u = status.is_object()
                                ? find_named(array_of(status.as_object(), "upstreams"), target.upstream)
                                : nullptr;
    const json::object* p = u ? find_named(array_of(*u, "pools"), target.pool) : nullptr;
    if (!p)
        throw failure(target.name() + ": no longer in the status, stopped waiting");
    drain_load load;
    bool found = false;
    for (const auto& b : array_of(*p, "backends")) {
        if (!b.is_object())
            continue;
        const auto& backend = b.as_object();
        if (target.address && cell(backend, "address") != *target.address)
            continue;
        found = true;
        load.sessions += number(backend, "sessions");
        load.streams += number(backend, "streams");
        load.connections += number(backend, "connections");
    }
    if (target.address && !found)
        throw failure(target.name() + ": no longer in the status, stopped waiting");
    return load;
}

// Polls the status until the pool (or backend) is empty or the drain's deadline (plus the
// closing window) has passed; prints a line only when the counts change, so a long drain
// stays readable.
int wait_for_drain(const context& ctx, const drain_target& target, config::duration drain_timeout)
{
    const std::string name = target.name();
    const auto deadline = clock::now() + drain_timeout + drain_wait_margin;
    std::optional<drain_load> last;
    for (;;) {
        const reply r = expect_success(ctx.client.request(http::verb::get, "/v1/status"));
        const drain_load load = load_of(parse_json(r), target);
        if (load.empty()) {
            if (!ctx.inv.json)
                std::cout << name << ": drained" << std::endl;
            return 0;
        }
        if (!ctx.inv.json && load != last)
            std::cout << name << ": " << load.describe() << std::endl;
        last = load;
        const auto now = clock::now();
        if (now >= deadline)
            throw failure(name + ": drain timed out with " + load.describe());
        std::this_thread::sleep_for(std::min<clock::duration>(drain_poll_interval, deadline - now));
    }
}

int run_drain(const context& ctx)
{
    const drain_target target(ctx.inv.operands);
    config::duration timeout = default_drain_timeout;
    json::object body;
    if (ctx.inv.timeout) {
        const auto parsed = config::parse_duration(*ctx.inv.timeout);
        if (!parsed)
            throw usage_error("drain: bad --timeout '" + *ctx.inv.timeout + "' (a number with a unit: 250ms, 30s, 5m, 1h)");
        timeout = *parsed;
        body["timeout"] = *ctx.inv.timeout;
    }
    const reply r =
        expect_success(ctx.client.request(http::verb::post, target.path() + "/drain", json::serialize(body)));
    const std::string how = ctx.inv.timeout ? " (timeout " + *ctx.inv.timeout + ")" : "";
    confirm(ctx, r, target.name() + ": draining" + how);
    if (!ctx.inv.wait)
        return 0;
    std::cout.flush();
    return wait_for_drain(ctx, target, timeout);
}

int run_undrain(const context& ctx)
{
    const drain_target target(ctx.inv.operands);
    const reply r = expect_success(ctx.client.request(http::verb::post, target.path() + "/undrain"));
    return confirm(ctx, r, target.name() + ": undrained");
}

int run_backends(const context& ctx)
{
    const std::string& upstream = ctx.inv.operands[0];
    const std::string& pool = ctx.inv.operands[1];
    json::array body;
    std::string summary;
    for (std::size_t i = 2; i < ctx.inv.operands.size(); ++i) {
        body.emplace_back(ctx.inv.operands[i]);
        summary += " " + ctx.inv.operands[i];
    }
    const reply r = expect_success(
        ctx.client.request(http::verb::put, pool_path(upstream, pool) + "/backends", json::serialize(body)));
    return confirm(ctx, r, upstream + "/" + pool + ": backends" + summary);
}

int run_reload(const context& ctx)
{
    const reply r = expect_success(ctx.client.request(http::verb::post, "/v1/reload"));
    return confirm(ctx, r, "reloaded");
}

// The server answers once the new process serves (with its pid), or with why it failed (the
// old process keeps serving then). An older server without the route is reported as such,
// never as a success.
int run_upgrade(const context& ctx)
{
    json::object body;
    if (ctx.inv.binary) {
        // The server runs in another folder: a relative path means the operator's folder.
        std::error_code ec;
        const fs::path absolute = fs::absolute(*ctx.inv.binary, ec);
        body["binary"] = (ec ? fs::path(*ctx.inv.binary) : absolute).lexically_normal().string();
    }
    const reply r = ctx.client.request(http::verb::post, "/v1/upgrade", json::serialize(body));
    if (r.status == 404 || r.status == 405 || r.status == 501)
        throw failure("upgrade: not supported by this turnout");
    expect_success(r);
    std::string line = "upgraded";
    try {
        const auto body = json::parse(r.body);
        if (const auto* pid = body.is_object() ? body.as_object().if_contains("pid") : nullptr; pid && pid->is_int64())
            line += ": pid " + std::to_string(pid->as_int64()) + " serves now; the old process drains and exits";
    } catch (const std::exception&) {
        // a body without the pid still means success
    }
    return confirm(ctx, r, line);
}

// ---- rollouts ------------------------------------------------------------------------------

json::object rollout_body(const invocation& inv)
{
    json::object body{{"pool", inv.operands[2]}, {"force", inv.force}};
    if (inv.steps) {
        json::array steps;
        std::string_view rest = *inv.steps;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const auto step = rest.substr(0, comma);
            const auto colon = step.find(':');
            json::object s{{"weight", parse_weight("--steps", step.substr(0, colon))}};
            if (colon != std::string_view::npos)
                s["hold"] = std::string(step.substr(colon + 1));
            steps.push_back(std::move(s));
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        body["steps"] = std::move(steps);
    }
    if (inv.baseline)
        body["baseline"] = *inv.baseline;
    if (inv.interval)
        body["interval"] = *inv.interval;
    if (inv.failure_limit)
        body["failure_limit"] = parse_weight("--failure-limit", *inv.failure_limit);
    if (inv.on_failure)
        body["on_failure"] = *inv.on_failure;
    return body;
}

const json::object& rollout_of(const json::value& answer)
{
    const auto* o = answer.if_object();
    const auto* r = o ? o->if_contains("rollout") : nullptr;
    if (!r || !r->is_object())
        throw failure("the upstream has no rollout");
    return r->get_object();
}

/// Prints the rollout's events as they come until it ends: 0 when it succeeded, 1 otherwise.
int wait_for_rollout(const context& ctx, const std::string& upstream, std::size_t seen)
{
    while (true) {
        const reply r = expect_success(ctx.client.request(http::verb::get, upstream_path(upstream) + "/rollout"));
        const auto doc = parse_json(r);
        const auto& rollout = rollout_of(doc);
        seen = print_events(std::cout, rollout, seen);
        std::cout.flush();
        const auto state = rollout_state(rollout);
        if (state == "succeeded")
            return 0;
        if (state != "running" && state != "paused")
            return 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

int run_rollout(const context& ctx)
{
    const auto& verb = ctx.inv.operands[0];
    const std::string& upstream = ctx.inv.operands[1];
    const bool start = verb == "start";
    if (start != (ctx.inv.operands.size() == 3))
        throw usage_error(start ? "rollout start: give UPSTREAM and the canary POOL" : "rollout " + verb + ": give UPSTREAM only");
    if (!start && (ctx.inv.steps || ctx.inv.baseline || ctx.inv.interval || ctx.inv.failure_limit ||
                   ctx.inv.on_failure || ctx.inv.force))
        throw usage_error("rollout " + verb + " takes no rollout settings (they belong to start)");
    reply r;
    if (start)
        r = ctx.client.request(http::verb::post, upstream_path(upstream) + "/rollout",
                               json::serialize(rollout_body(ctx.inv)));
    else if (verb == "status")
        r = ctx.client.request(http::verb::get, upstream_path(upstream) + "/rollout");
    else if (verb == "pause" || verb == "resume" || verb == "promote" || verb == "abort")
        r = ctx.client.request(http::verb::post, upstream_path(upstream) + "/rollout/" + verb);
    else
        throw usage_error("rollout: unknown action '" + verb + "' (start, status, pause, resume, promote, abort)");
    expect_success(r);
    const auto doc = parse_json(r);
    if (ctx.inv.json && !ctx.inv.wait)
        return confirm(ctx, r, {});
    const auto& rollout = rollout_of(doc);
    if (verb == "status" || !ctx.inv.wait)
        print_rollout(std::cout, upstream, rollout);
    if (!ctx.inv.wait)
        return 0;
    std::cout << upstream << ": rollout of " << cell(rollout, "pool") << " — " << rollout_state(rollout) << '\n';
    return wait_for_rollout(ctx, upstream, 0);
}

int dispatch(const context& ctx)
{
    const std::string& c = ctx.inv.command;
    if (c == "status")
        return run_status(ctx);
    if (c == "weights")
        return run_weights(ctx);
    if (c == "switch")
        return run_switch(ctx);
    if (c == "rollback")
        return run_rollback(ctx);
    if (c == "rollout")
        return run_rollout(ctx);
    if (c == "drain")
        return run_drain(ctx);
    if (c == "undrain")
        return run_undrain(ctx);
    if (c == "backends")
        return run_backends(ctx);
    if (c == "reload")
        return run_reload(ctx);
    return run_upgrade(ctx);
}

int run(int argc, char** argv)
{
    invocation inv;
    try {
        inv = parse_command_line(argc, argv);
        if (inv.help) {
            std::cout << full_usage();
            return 0;
        }
        if (inv.version) {
            std::cout << "turnoutctl " << turnout::version() << '\n';
            return 0;
        }
        check_shape(inv);
        admin_client client{find_socket(inv)};
        return dispatch(context{client, inv});
    } catch (const usage_error& e) {
        std::cerr << "turnoutctl: " << e.what() << '\n' << short_usage(inv.command);
        return 2;
    } catch (const failure& e) {
        std::cout.flush();
        std::cerr << e.what() << '\n';
        return 1;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << "turnoutctl: " << e.what() << '\n';
        return 1;
    }
}

} // namespace
} // namespace turnout::ctl

int main(int argc, char** argv)
{
    // A server that hangs up mid-request, or a closed stdout pipe (`turnoutctl status | head`),
    // must end in an error line and exit status, not a silent SIGPIPE death.
    std::signal(SIGPIPE, SIG_IGN);
    return turnout::ctl::run(argc, argv);
}
