#include "turnout/control/dns_resolver.hpp"

#include "turnout/control/dns_answer.hpp"

#include <ares.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

namespace turnout::control {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr int query_timeout_ms = 1000;
constexpr int query_tries = 2;

void init_library()
{
    static std::once_flag once;
    std::call_once(once, [] {
        if (const int rc = ares_library_init(ARES_LIB_INIT_ALL); rc != ARES_SUCCESS)
            throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
    });
}

/// One query's answer: its records, or why there are none. ENODATA (the name exists, with no
/// record of this type) is an answer without records, not a failure.
struct query_answer {
    int status = ARES_SUCCESS;
    std::vector<dns_record> records;

    bool ok() const noexcept { return status == ARES_SUCCESS || status == ARES_ENODATA; }
};

using query_handler = std::function<void(query_answer)>;

std::string describe(const std::string& name, dns_type type, int status)
{
    const char* kind = type == dns_type::a ? "A" : type == dns_type::aaaa ? "AAAA" : "SRV";
    return std::string(kind) + " " + name + ": " + ares_strerror(status);
}

/// Collects the answers of several queries and calls done once with all of them.
struct join {
    std::size_t pending = 0;
    dns_resolution result;
    std::set<tcp::endpoint> endpoints;
    bool any_ttl = false;
    dns_resolver::handler done;

    void take_ttl(std::uint32_t ttl)
    {
        result.ttl = any_ttl ? std::min(result.ttl, ttl) : ttl;
        any_ttl = true;
    }
    void fail(std::string why)
    {
        if (result.error.empty())
            result.error = std::move(why);
    }
    void finish_one()
    {
        if (--pending != 0)
            return;
        if (result.ok())
            result.endpoints.assign(endpoints.begin(), endpoints.end());
        else
            result.ttl = 0;
        done(std::move(result));
    }
};

} // namespace

// ---- the channel, its sockets and its timer ----------------------------------------------------

struct dns_resolver::impl : std::enable_shared_from_this<impl> {
    /// One socket c-ares opened: watched for reading/writing while c-ares asks.
    struct watch {
        watch(asio::io_context& io, ares_socket_t fd) : descriptor(io, fd), fd(fd) {}
        asio::posix::stream_descriptor descriptor; // released, never closed: the socket is c-ares'
        ares_socket_t fd;
        bool want_read = false;
        bool want_write = false;
        bool reading = false;
        bool writing = false;
        bool closed = false;
    };

    explicit impl(asio::io_context& context) : io(context), timer(context) {}

    ~impl()
    {
        if (channel) {
            destroying = true;
            ares_destroy(channel); // pending queries end with ARES_EDESTRUCTION; sockets unwatched
        }
    }

    void open(const std::optional<config::host_port>& server)
    {
        init_library();
        ares_options options{};
        options.sock_state_cb = &impl::on_socket_state;
        options.sock_state_cb_data = this;
        options.timeout = query_timeout_ms;
        options.tries = query_tries;
        const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
        if (const int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS) {
            channel = nullptr;
            throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
        }
        if (server) {
            // c-ares wants "[v6]:port" for IPv6 and "v4:port" otherwise: host_port's text form.
            if (const int rc = ares_set_servers_ports_csv(channel, server->text.c_str()); rc != ARES_SUCCESS)
                throw std::runtime_error("resolver " + server->text + ": " + ares_strerror(rc));
        }
    }

    static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable)
    {
        static_cast<impl*>(data)->socket_state(fd, readable != 0, writable != 0);
    }

    void socket_state(ares_socket_t fd, bool readable, bool writable)
    {
        auto it = watches.find(fd);
        if (!readable && !writable) {
            // c-ares closes the socket next: stop watching it without closing it ourselves.
            if (it != watches.end()) {
                it->second->closed = true;
                boost::system::error_code ignored;
                it->second->descriptor.cancel(ignored);
                it->second->descriptor.release();
                watches.erase(it);
            }
            return;
        }
        if (destroying)
            return;
        if (it == watches.end())
            it = watches.emplace(fd, std::make_shared<watch>(io, fd)).first;
        auto w = it->second;
        w->want_read = readable;
        w->want_write = writable;
        if (readable && !w->reading)
            do_wait(w, asio::posix::stream_descriptor::wait_read);
        if (writable && !w->writing)
            do_wait(w, asio::posix::stream_descriptor::wait_write);
    }

    void do_wait(const std::shared_ptr<watch>& w, asio::posix::stream_descriptor::wait_type type)
    {
        const bool read = type == asio::posix::stream_descriptor::wait_read;
        (read ? w->reading : w->writing) = true;
        w->descriptor.async_wait(type, [self = weak_from_this(), w, read](boost::system::error_code ec) {
            (read ? w->reading : w->writing) = false;
            auto me = self.lock();
            if (ec || w->closed || !me)
                return;
            me->on_ready(w, read);
        });
    }

    void on_ready(const std::shared_ptr<watch>& w, bool read)
    {
        ares_process_fd(channel, read ? w->fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : w->fd);
        // Still wanted (c-ares did not close it while processing): wait again.
        if (!w->closed && read && w->want_read && !w->reading)
            do_wait(w, asio::posix::stream_descriptor::wait_read);
        if (!w->closed && !read && w->want_write && !w->writing)
            do_wait(w, asio::posix::stream_descriptor::wait_write);
        arm_timer();
    }

    /// Retransmissions and query timeouts: c-ares says when it next needs to be called.
    void arm_timer()
    {
        timeval tv{};
        if (!ares_timeout(channel, nullptr, &tv)) {
            timer.cancel();
            return;
        }
        timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
        timer.async_wait([self = weak_from_this()](boost::system::error_code ec) {
            auto me = self.lock();
            if (ec || !me)
                return;
            ares_process_fd(me->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            me->arm_timer();
        });
    }

    void query(const std::string& name, dns_type type, query_handler done)
    {
        auto* held = new query_call{type, std::move(done)};
        ares_search(channel, name.c_str(), 1 /* IN */, static_cast<int>(type), &impl::on_answer, held);
        arm_timer();
    }

    struct query_call {
        dns_type type;
        query_handler done;
    };

    static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* message, int length)
    {
        std::unique_ptr<query_call> call(static_cast<query_call*>(arg));
        if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
            return; // the resolver is going away: nobody is waiting
        query_answer answer{status, {}};
        if (status == ARES_SUCCESS) {
            auto records = parse_dns_answer(message, static_cast<std::size_t>(std::max(length, 0)), call->type);
            if (records)
                answer.records = std::move(*records);
            else
                answer.status = ARES_EBADRESP;
        }
        call->done(std::move(answer));
    }

    /// A and AAAA of name, each on port, into j (one pending count per query).
    void addresses_into(const std::shared_ptr<join>& j, const std::string& name, std::uint16_t port)
    {
        for (const auto type : {dns_type::a, dns_type::aaaa}) {
            ++j->pending;
            query(name, type, [j, name, port, type](query_answer answer) {
                if (!answer.ok())
                    j->fail(describe(name, type, answer.status));
                for (const auto& r : answer.records) {
                    j->endpoints.insert(tcp::endpoint(r.address, port));
                    j->take_ttl(r.ttl);
                }
                j->finish_one();
            });
        }
    }

    asio::io_context& io;
    asio::steady_timer timer;
    ares_channel channel = nullptr;
    bool destroying = false;
    std::map<ares_socket_t, std::shared_ptr<watch>> watches;
};

dns_resolver::dns_resolver(asio::io_context& io, const std::optional<config::host_port>& server)
    : impl_(std::make_shared<impl>(io))
{
    impl_->open(server);
}

dns_resolver::~dns_resolver() = default;

void dns_resolver::resolve_addresses(const std::string& name, std::uint16_t port, handler done)
{
    auto j = std::make_shared<join>();
    j->done = std::move(done);
    j->pending = 1; // held until every query is started: an answer cannot finish the join early
    impl_->addresses_into(j, name, port);
    j->finish_one();
}

void dns_resolver::resolve_service(const std::string& name, handler done)
{
    std::weak_ptr<impl> weak = impl_;
    impl_->query(name, dns_type::srv, [weak, name, done = std::move(done)](query_answer answer) {
        if (!weak.lock())
            return;
        if (!answer.ok()) {
            dns_resolution failed;
            failed.error = describe(name, dns_type::srv, answer.status);
            done(std::move(failed));
            return;
        }
        // The SRV records' TTL bounds the answer's, whichever priority ends up used.
        std::optional<std::uint32_t> srv_ttl;
        for (const auto& r : answer.records)
            srv_ttl = std::min(srv_ttl.value_or(r.ttl), r.ttl);
        auto classes = std::make_shared<const std::vector<std::vector<dns_record>>>(srv_by_priority(answer.records));
        resolve_priority(weak, classes, 0, srv_ttl, done);
    });
}

void dns_resolver::resolve_priority(std::weak_ptr<impl> weak,
                                    std::shared_ptr<const std::vector<std::vector<dns_record>>> classes,
                                    std::size_t index, std::optional<std::uint32_t> srv_ttl, handler done)
{
    auto me = weak.lock();
    if (!me)
        return;
    auto j = std::make_shared<join>();
    if (srv_ttl)
        j->take_ttl(*srv_ttl);
    j->done = [weak, classes, index, srv_ttl, done](dns_resolution r) {
        // RFC 2782: the lowest priority that yields an address is used, the others are
        // fallbacks. A failed query is a failure (the last good set stays), not a fallback:
        // a resolver that cannot answer for a moment must not move every session's new
        // traffic to the standby targets.
        if (r.ok() && r.endpoints.empty() && index + 1 < classes->size())
            return resolve_priority(weak, classes, index + 1, srv_ttl, done);
        done(std::move(r));
    };
    j->pending = 1; // held until every query is started
    if (index < classes->size())
        for (const auto& r : (*classes)[index])
            me->addresses_into(j, r.target, r.port);
    j->finish_one();
}

} // namespace turnout::control
