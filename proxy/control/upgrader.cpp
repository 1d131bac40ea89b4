#include "turnout/control/upgrader.hpp"

#include "turnout/edge/rate_table.hpp"
#include "turnout/net/endpoint.hpp"
#include "turnout/session/session_store.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace turnout::control {
namespace {

namespace asio = boost::asio;

/// How long a successor may take from exec to serving (config, backends, binds).
constexpr auto handover_timeout = std::chrono::seconds(10);

std::string endpoint_of(int fd)
{
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return {};
    asio::ip::tcp::endpoint e;
    std::memcpy(e.data(), &address, std::min<std::size_t>(length, sizeof(sockaddr_in6)));
    e.resize(length);
    return net::to_string(e);
}

} // namespace

// ---- predecessor ----------------------------------------------------------------------------

upgrader::upgrader(boost::asio::io_context& control, launch_info launch)
    : control_(control), launch_(std::move(launch))
{
}

upgrader::~upgrader()
{
    close_unadopted();
}

admin::result upgrader::hand_over(const std::optional<std::string>& binary,
                                  const std::vector<listening_socket>& sockets, net::worker_pool& workers)
{
    if (successor_pid_ != 0)
        return admin::result::fail(409, "this process already handed over to pid " +
                                            std::to_string(successor_pid_));
    const std::string path = binary.value_or(launch_.binary);
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        ::access(path.c_str(), X_OK) != 0)
        return admin::result::fail(400, "'" + path + "' is not an executable file");

    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        return admin::result::fail(500, std::string("upgrade: socketpair: ") + std::strerror(errno));
    const pid_t pid = upgrade::spawn_successor(path, launch_.argv, ends[1]);
    const int spawn_errno = errno;
    ::close(ends[1]);
    if (pid < 0) {
        ::close(ends[0]);
        return admin::result::fail(500, std::string("upgrade: cannot start a process: ") +
                                            std::strerror(spawn_errno));
    }
    spdlog::info("upgrade: started {} as pid {}", path, pid);
    // From now on each client connection takes one more exchange here (answered with
    // Connection: close) and then reconnects, reaching whichever process accepts: the fewer
    // requests this process serves from here, the fewer need a session the successor learned.
    workers.retire_connections();

    successor_channels_.push_back(std::make_unique<upgrade::channel>(ends[0]));
    const auto error = run_hand_over(pid, *successor_channels_.back(), sockets);
    if (!error.empty()) {
        // Back to serving alone: nothing was given up yet (our acceptors still accept).
        workers.keep_connections();
        unlink_successor();
        ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        successor_channels_.pop_back(); // no forwarder or reader touches it after stop()/close()
        const bool killed_by_us = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        const auto why = killed_by_us
                             ? "did not take over: " + error
                             : upgrade::describe_exit(status) + " before taking over (its log says why)";
        spdlog::error("upgrade: the new process {} {}; this one keeps serving", pid, why);
        return admin::result::fail(500, "upgrade failed: the new process (pid " + std::to_string(pid) + ") " +
                                            why + "; the running one keeps serving");
    }
    successor_pid_ = pid;
    read_successor();
    return admin::result::ok({{"pid", static_cast<std::int64_t>(pid)}});
}

std::string upgrader::run_hand_over(pid_t successor, upgrade::channel& ch,
                                    const std::vector<listening_socket>& sockets)
{
    const auto until = std::chrono::steady_clock::now() + handover_timeout;
    upgrade::message m;
    if (auto e = ch.receive(m, until); !e.empty())
        return e;
    const auto* h = std::get_if<upgrade::hello>(&m);
    if (!h)
        return "it opened with '" + std::string(upgrade::name_of(m)) + "' instead of 'hello'";
    if (!upgrade::speaks(h->version))
        return "it speaks hand-over protocol version " + std::to_string(h->version) +
               ", this process versions " + std::to_string(upgrade::min_protocol_version) + " to " +
               std::to_string(upgrade::protocol_version);
    successor_version_ = h->version;

    for (const auto& l : sockets)
        if (auto e = ch.send(upgrade::listener{l.kind, l.address, endpoint_of(l.fd)}, until, l.fd);
            !e.empty())
            return e;
    if (auto e = ch.send(upgrade::listeners_done{static_cast<std::uint32_t>(sockets.size())}, until);
        !e.empty())
        return e;
    // The limits' buckets as they are now: tokens taken here after this are this process's own
    // (it serves only its open connections' last exchanges from here on).
    if (successor_version_ >= 4) {
        if (auto e = ch.send(upgrade::rate_limits{edge::encode_rate_table(shared_->edge)}, until); !e.empty())
            return e;
    }

    // From here every session learned or forgotten reaches the successor: first the table as
    // it is, then each change after it, in order.
    forwarders_.push_back(std::make_unique<upgrade::session_forwarder>(ch, shared_->backends));
    to_successor_ = forwarders_.back().get();
    successor_ready_ = false;
    readers_.push_back(std::make_unique<upgrade::peer_reader>(
        control_, ch, [this](const upgrade::message& m) { on_successor_message(m); }));
    from_successor_ = readers_.back().get();
    if (!relay_.add(to_successor_, from_successor_))
        return "too many hand-overs in progress";
    shared_->sessions.observe(&relay_);
    std::size_t sent = 0;
    const auto e = to_successor_->send_first(
        [&] {
            sent = shared_->sessions.size();
            touched_since_ = shared_->now_s(); // the snapshot carries every last use up to here
            return upgrade::encode(upgrade::sessions{
                session::encode_table(shared_->sessions, shared_->backends, shared_->now_s())});
        },
        until);
    if (!e.empty())
        return e;
    spdlog::info("upgrade: handed {} listening socket(s) and {} session(s) to pid {}", sockets.size(), sent,
                 successor);

    // A version 3 successor tells of the sessions it learns from the moment it serves, which
    // is before it says ready: workers that miss a session may read those meanwhile.
    return from_successor_->wait([this] { return successor_ready_.load(); }, until);
}

void upgrader::on_successor_message(const upgrade::message& m)
{
    if (std::holds_alternative<upgrade::ready>(m))
        successor_ready_ = true;
    else if (successor_version_ >= 3 && apply_session_change(m, to_successor_))
        ++sessions_from_successor_;
    else
        spdlog::warn("upgrade: ignoring an unexpected '{}' from the new process", upgrade::name_of(m));
}

void upgrader::read_successor()
{
    const auto error = from_successor_->start([this](const std::string& why) {
        if (!why.empty())
            spdlog::error("upgrade: {}; no more sessions from the new process", why);
        unlink_successor();
    });
    if (!error.empty())
        spdlog::error("upgrade: cannot watch the new process: {}", error);
}

void upgrader::unlink_successor()
{
    if (from_successor_) {
        relay_.remove(from_successor_);
        from_successor_->close();
    }
    if (to_successor_)
        to_successor_->stop();
    from_successor_ = nullptr;
    to_successor_ = nullptr;
}

bool upgrader::apply_session_change(const upgrade::message& m, const upgrade::session_forwarder* peer)
{
    bool applied = true;
    upgrade::session_relay::from_peer(peer, [&] {
        if (const auto* l = std::get_if<upgrade::learned>(&m)) {
            // A backend this process does not serve (the other one's configuration differs)
            // stays unknown here: such a session's requests are routed by hash.
            const auto b = shared_->backends.find(l->owner);
            if (b && b->in_service())
                shared_->sessions.insert(l->key, b->id(), shared_->now_s());
        } else if (const auto* f = std::get_if<upgrade::forgot>(&m)) {
            shared_->sessions.erase(f->key);
        } else {
            applied = false;
        }
    });
    return applied;
}

void upgrader::tick()
{
    flush();
    if (successor_pid_ != 0)
        send_touched();
}

void upgrader::flush()
{
    for (auto& f : forwarders_)
        f->flush();
}

void upgrader::send_touched()
{
    // Version 1 successors know no touched message (they would stop reading at it).
    if (successor_version_ < 2 || !to_successor_)
        return;
    // Every session with a stream open here, or used since the last batch (a use in the same
    // second as that batch is sent again: cheaper than missing it). A whole-table walk once a
    // second, only in a process that serves nothing new.
    const auto now = shared_->now_s();
    std::vector<session::session_key> keys;
    shared_->sessions.for_each([&](const session::session_entry& e) {
        if (e.streams > 0 || e.last_use >= touched_since_)
            keys.push_back(e.key);
    });
    if (keys.empty() || to_successor_->touched(keys))
        touched_since_ = now;
    // else the successor is behind: these uses go with the next batch.
}

// ---- successor ------------------------------------------------------------------------------

session::saved_table upgrader::take_over()
{
    predecessor_ = std::make_unique<upgrade::channel>(launch_.upgrade_fd);
    const auto until = std::chrono::steady_clock::now() + handover_timeout;
    const auto fail = [](const std::string& why) { throw std::runtime_error("upgrade: " + why); };
    // The version the predecessor named in our environment, or 1 from one that names none.
    const auto version = upgrade::successor_version(std::getenv(upgrade::version_variable), ::getppid());
    if (version == 0)
        fail(std::string("the running process speaks hand-over protocol version ") +
             std::getenv(upgrade::version_variable) + ", this one " +
             std::to_string(upgrade::min_protocol_version) + " to " +
             std::to_string(upgrade::protocol_version));
    if (auto e = predecessor_->send(upgrade::hello{version, ::getpid()}, until); !e.empty())
        fail(e);
    predecessor_version_ = version;
    for (;;) {
        upgrade::message m;
        if (auto e = predecessor_->receive(m, until); !e.empty())
            fail(e);
        if (const auto* l = std::get_if<upgrade::listener>(&m)) {
            const int fd = predecessor_->take_fd();
            if (fd < 0)
                fail("the listener of " + l->address + " arrived without its socket");
            inherited_.push_back({l->kind, l->address, fd});
        } else if (const auto* d = std::get_if<upgrade::listeners_done>(&m)) {
            if (d->count != inherited_.size())
                fail(std::to_string(d->count) + " listening sockets announced, " +
                     std::to_string(inherited_.size()) + " received");
        } else if (std::holds_alternative<upgrade::learned>(m) ||
                   std::holds_alternative<upgrade::forgot>(m)) {
            // A change made as the predecessor started forwarding, before it made the table
            // snapshot that follows: the snapshot has it already.
            continue;
        } else if (const auto* r = std::get_if<upgrade::rate_limits>(&m)) {
            // A table this process cannot read costs the limits' state, not the upgrade.
            std::string why;
            inherited_rates_ = edge::decode_rate_table(r->table, why);
            if (!inherited_rates_)
                spdlog::warn("upgrade: {}; rate limits start over with full buckets", why);
        } else if (const auto* s = std::get_if<upgrade::sessions>(&m)) {
            auto table = session::decode_table(s->table, "the handed-over session table");
            spdlog::info(
                "upgrade: received {} listening socket(s) and {} session(s) from the running process "
                "(hand-over protocol version {})",
                inherited_.size(), table.sessions.size(), version);
            return table;
        } else {
            fail("unexpected '" + std::string(upgrade::name_of(m)) + "' from the running process");
        }
    }
}

void upgrader::attach(runtime::shared_state& shared)
{
    shared_ = &shared;
    if (!inherited_rates_)
        return;
    const auto now = upstream::monotonic_ms(std::chrono::steady_clock::now());
    const auto restored = edge::adopt_rate_table(shared.edge, *inherited_rates_, now);
    spdlog::info("upgrade: took over {} of {} rate limit bucket(s)", restored, inherited_rates_->buckets.size());
    inherited_rates_.reset();
}

std::vector<int> upgrader::adopt(upgrade::listener_kind kind, const std::string& address)
{
    std::vector<int> fds;
    std::erase_if(inherited_, [&](const listening_socket& l) {
        if (l.kind != kind || l.address != address)
            return false;
        fds.push_back(l.fd);
        return true;
    });
    return fds;
}

void upgrader::close_unadopted()
{
    // Addresses the new configuration no longer listens on.
    for (const auto& l : inherited_) {
        spdlog::info("upgrade: {} is not in the configuration any more: closing its socket", l.address);
        ::close(l.fd);
    }
    inherited_.clear();
}

void upgrader::link_predecessor()
{
    // Before the workers start. A version 3 predecessor keeps serving requests on its client
    // connections for a while, some of sessions this process learns: tell it each one. And a
    // lookup here that misses reads what the predecessor sent first (see peer_reader).
    if (!predecessor_)
        return;
    if (predecessor_version_ >= 3) {
        forwarders_.push_back(std::make_unique<upgrade::session_forwarder>(*predecessor_, shared_->backends));
        to_predecessor_ = forwarders_.back().get();
    }
    readers_.push_back(std::make_unique<upgrade::peer_reader>(
        control_, *predecessor_, [this](const upgrade::message& m) { apply_from_predecessor(m); }));
    from_predecessor_ = readers_.back().get();
    relay_.add(to_predecessor_, from_predecessor_);
    shared_->sessions.observe(&relay_);
}

void upgrader::announce_ready()
{
    const auto until = std::chrono::steady_clock::now() + handover_timeout;
    // Workers may be writing session changes on the channel already: ready goes after them.
    const upgrade::ready ready{::getpid()};
    if (auto e = to_predecessor_ ? to_predecessor_->send(ready, until) : predecessor_->send(ready, until);
        !e.empty()) {
        spdlog::error("upgrade: cannot tell the running process that this one serves: {}", e);
        return;
    }
    const auto error = from_predecessor_->start([this](const std::string& why) {
        if (!why.empty())
            spdlog::error("upgrade: {}; no more sessions from the previous process", why);
        else
            spdlog::info("upgrade: the previous process is done; {} session change(s) and {} use(s) of "
                         "sessions came from it while it drained, {} went to it",
                         sessions_from_predecessor_.load(), touches_from_predecessor_.load(),
                         to_predecessor_ ? to_predecessor_->forwarded() : 0);
        relay_.remove(from_predecessor_);
        if (to_predecessor_)
            to_predecessor_->stop();
    });
    if (!error.empty())
        spdlog::error("upgrade: cannot watch the previous process: {}", error);
}

void upgrader::apply_from_predecessor(const upgrade::message& m)
{
    if (apply_session_change(m, to_predecessor_)) {
        ++sessions_from_predecessor_;
    } else if (const auto* t = std::get_if<upgrade::touched>(&m)) {
        // Still in use at the predecessor (an open stream, a request on one of its
        // connections): not idle. Forgotten or unknown keys stay so.
        const auto now = shared_->now_s();
        for (const auto& key : t->keys)
            touches_from_predecessor_ += shared_->sessions.touch(key, now) ? 1 : 0;
    } else {
        spdlog::warn("upgrade: ignoring an unexpected '{}' from the previous process", upgrade::name_of(m));
    }
}

} // namespace turnout::control
