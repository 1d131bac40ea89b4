#pragma once
// Asynchronous DNS with the records' TTLs (c-ares), on the control thread's io_context: the
// channel's sockets are watched as Asio descriptors (c-ares' socket-state callback opens and
// closes the watches) and its retransmissions are paced by a steady timer, so queries run
// beside the admin API, health checks and the etcd watch without a thread or a lock of their
// own, and answers arrive on that thread, where snapshots are built. Never on a worker.

#include "turnout/config/host_port.hpp"
#include "turnout/control/dns_answer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnout::control {

/// What a name resolved to. error empty: an answer (possibly with no address), ttl the
/// smallest TTL of the records it took (0 with none). error set: no usable answer.
struct dns_resolution {
    std::string error;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints; // sorted, without duplicates
    std::uint32_t ttl = 0;

    bool ok() const noexcept { return error.empty(); }
};

class dns_resolver {
public:
    using handler = std::function<void(dns_resolution)>;

    /// server: the DNS server asked ("ADDR:PORT"); nullopt = /etc/resolv.conf's. Throws
    /// std::runtime_error when c-ares cannot start.
    dns_resolver(boost::asio::io_context& io, const std::optional<config::host_port>& server);
    ~dns_resolver();
    dns_resolver(const dns_resolver&) = delete;
    dns_resolver& operator=(const dns_resolver&) = delete;

    /// A and AAAA records of name (with the search domains of resolv.conf), each on port. A
    /// name without addresses of one family is fine; a failed query of either is an error.
    void resolve_addresses(const std::string& name, std::uint16_t port, handler done);
    /// SRV records of name; the A and AAAA records of the targets of the lowest priority
    /// value that yields an address (RFC 2782), each on its record's port. Weights are not
    /// used: a pool's backends are chosen by load (upstream::balancer), not by a weight each.
    void resolve_service(const std::string& name, handler done);

    /// handler never runs for queries still in flight when the resolver is destroyed.
private:
    struct impl;

    /// The targets of classes[index] (srv_by_priority), then the next class while none of
    /// the earlier ones yielded an address.
    static void resolve_priority(std::weak_ptr<impl> weak,
                                 std::shared_ptr<const std::vector<std::vector<dns_record>>> classes,
                                 std::size_t index, std::optional<std::uint32_t> srv_ttl, handler done);
    std::shared_ptr<impl> impl_;
};

} // namespace turnout::control
