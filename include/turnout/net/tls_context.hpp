#pragma once
// TLS contexts, built on the control thread at start-up and on reload, shared by every worker.
//
// Server side, one per [[listen]]: TLS 1.2 minimum, Mozilla "intermediate" ciphers (the
// client's order wins, as Mozilla advises now that every listed suite is strong), ALPN
// selecting http/1.1 (a client offering only h2 gets a no_application_protocol alert),
// session tickets plus a server-side session cache. Sharing one context between all workers
// is what lets a session resume on whichever worker the kernel hands the next connection to.
// SNI picks among [[listen.certificate]] by the names in each certificate (subjectAltName DNS
// entries, else the subject CN; "*.example.com" matches one label); tls_cert/tls_key is the
// default when nothing matches.
//
// Client side, one per TLS pool setting: verifies the backend's chain against tls_ca_file (or
// the system store) and its name (tls_server_name) or, without one, its IP address.

#include "turnout/config/config.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace turnout::net {

class tls_server_context {
public:
    /// Loads and checks every certificate of listen. Throws config::config_error
    /// ("PATH: message") for a missing or unreadable file, a file that is not PEM, or a key
    /// that does not match its certificate.
    explicit tls_server_context(const config::listen_config& listen);
    tls_server_context(const tls_server_context&) = delete;
    tls_server_context& operator=(const tls_server_context&) = delete;

    /// The context new connections start with (the default certificate; SNI may switch).
    boost::asio::ssl::context& context() noexcept { return *certificates_.front().context; }

    /// The names certificate i answers to (0 = the default one), lower case.
    const std::vector<std::string>& names(std::size_t i) const { return certificates_.at(i).names; }
    std::size_t certificate_count() const noexcept { return certificates_.size(); }

    /// The index of the certificate that serves server_name (0 when none matches).
    std::size_t select(std::string_view server_name) const;

private:
    struct certificate {
        std::unique_ptr<boost::asio::ssl::context> context;
        std::vector<std::string> names;
    };
    static int on_server_name(SSL* ssl, int* alert, void* self);

    std::vector<certificate> certificates_;
};

class tls_client_context {
public:
    /// Throws config::config_error when tls_ca_file cannot be read as PEM certificates.
    explicit tls_client_context(const config::pool_config& pool);
    tls_client_context(const tls_client_context&) = delete;
    tls_client_context& operator=(const tls_client_context&) = delete;

    boost::asio::ssl::context& context() noexcept { return context_; }
    const std::string& ca_file() const noexcept { return ca_file_; }
    const std::string& server_name() const noexcept { return server_name_; }

    /// Sets SNI and the identity to verify on a new connection's SSL toward backend: the
    /// configured server name, else the backend's IP address (checked against IP SANs).
    /// False when OpenSSL refuses them.
    bool prepare(SSL* ssl, const boost::asio::ip::tcp::endpoint& backend) const;

private:
    boost::asio::ssl::context context_;
    std::string ca_file_;
    std::string server_name_;
};

/// Every TLS context a configuration needs: one per [[listen]] (null for plain ones) and one
/// per distinct (tls_ca_file, tls_server_name) of TLS pools, so pools sharing settings share a
/// context and the keep-alive pool can match connections by it.
struct tls_contexts {
    std::vector<std::shared_ptr<tls_server_context>> listeners;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<tls_client_context>> backends;

    /// The context of a pool with tls = true, else null.
    std::shared_ptr<tls_client_context> for_pool(const config::pool_config& pool) const;
};

/// Builds them all (control thread). Throws config::config_error naming the bad file.
tls_contexts build_tls_contexts(const config::configuration& config);

/// Whether certificate name pattern (lower case; may start with "*.") covers host.
bool tls_name_matches(std::string_view pattern, std::string_view host) noexcept;

} // namespace turnout::net
