#include "turnout/net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace turnout::net {
namespace {

namespace ssl = boost::asio::ssl;

// Mozilla "intermediate" (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults, all AEAD).
constexpr const char* intermediate_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char session_id_context[] = "turnout";

[[noreturn]] void fail(const std::string& path, std::string message)
{
    throw config::config_error(path, 0, 0, std::move(message));
}

/// OpenSSL's last error as text (and the queue emptied), for messages.
std::string openssl_reason()
{
    unsigned long last = 0;
    while (const auto e = ERR_get_error())
        last = e;
    if (!last)
        return {};
    const char* reason = ERR_reason_error_string(last);
    return reason ? std::string(": ") + reason : std::string{};
}

struct bio_deleter { void operator()(BIO* b) const { BIO_free(b); } };
struct x509_deleter { void operator()(X509* x) const { X509_free(x); } };
struct pkey_deleter { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

/// The file's bytes, or a config_error naming it ("cannot read: No such file or directory").
std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, std::string("cannot read: ") + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        fail(path, std::string("cannot read: ") + std::strerror(errno));
    return text;
}

bio_ptr memory_bio(const std::string& text)
{
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

/// Never prompts on a terminal for a pass phrase: an encrypted key is an error.
int no_pass_phrase(char*, int, int, void*) { return -1; }

std::vector<std::string> certificate_names(X509* cert)
{
    std::vector<std::string> names;
    auto lower = [](std::string s) {
        for (auto& c : s)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    if (auto* alt = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt, i);
            if (name->type != GEN_DNS)
                continue;
            const auto* s = name->d.dNSName;
            names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                              static_cast<std::size_t>(ASN1_STRING_length(s)))));
        }
        GENERAL_NAMES_free(alt);
    }
    if (names.empty()) {
        char cn[256];
        const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        if (n > 0)
            names.push_back(lower(std::string(cn, static_cast<std::size_t>(n))));
    }
    return names;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                  unsigned in_len, void*)
{
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_len, alpn_http11, sizeof alpn_http11, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; // e.g. h2 only: refuse cleanly rather than speak 1.1 to it
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/// A server context with turnout's settings and one certificate chain + key, checked.
std::unique_ptr<ssl::context> server_context(const config::certificate_config& files,
                                             std::vector<std::string>& names)
{
    const auto cert_text = read_file(files.cert);
    const auto key_text = read_file(files.key);

    auto cert_bio = memory_bio(cert_text);
    x509_ptr leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, no_pass_phrase, nullptr));
    if (!leaf)
        fail(files.cert, "not a PEM certificate" + openssl_reason());
    auto key_bio = memory_bio(key_text);
    pkey_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_pass_phrase, nullptr));
    if (!key)
        fail(files.key, "not a PEM private key (or one protected by a pass phrase)" + openssl_reason());
    if (X509_check_private_key(leaf.get(), key.get()) != 1) {
        openssl_reason();
        fail(files.key, "private key does not match the certificate " + files.cert);
    }

    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_clear_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Input and output buffers are freed while a connection is idle (as nginx does): an idle
    // keep-alive client then costs no record buffers.
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(native, no_pass_phrase);
    if (SSL_CTX_set_cipher_list(native, intermediate_ciphers) != 1)
        fail(files.cert, "cannot set the cipher list" + openssl_reason());
    SSL_CTX_set_alpn_select_cb(native, select_http11, nullptr);
    SSL_CTX_set_session_id_context(native, session_id_context, sizeof session_id_context - 1);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(native, 20480);
    SSL_CTX_set_timeout(native, 24 * 3600);

    if (SSL_CTX_use_certificate_chain_file(native, files.cert.c_str()) != 1)
        fail(files.cert, "not a PEM certificate chain" + openssl_reason());
    if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1)
        fail(files.key, "private key does not match the certificate " + files.cert + openssl_reason());
    names = certificate_names(leaf.get());
    return ctx;
}

} // namespace

bool tls_name_matches(std::string_view pattern, std::string_view host) noexcept
{
    auto equal = [](std::string_view a, std::string_view b) {
        if (a.size() != b.size())
            return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
                return false;
        return true;
    };
    if (pattern.starts_with("*.")) {
        const auto dot = host.find('.');
        return dot != std::string_view::npos && dot > 0 && equal(pattern.substr(1), host.substr(dot));
    }
    return equal(pattern, host);
}

tls_server_context::tls_server_context(const config::listen_config& listen)
{
    std::vector<std::string> names;
    auto add = [&](const config::certificate_config& files) {
        auto ctx = server_context(files, names);
        certificates_.push_back({std::move(ctx), std::move(names)});
    };
    add({listen.tls_cert, listen.tls_key});
    for (const auto& extra : listen.certificates)
        add(extra);
    if (certificates_.size() > 1) {
        SSL_CTX* first = certificates_.front().context->native_handle();
        SSL_CTX_set_tlsext_servername_callback(first, on_server_name);
        SSL_CTX_set_tlsext_servername_arg(first, this);
    }
}

std::size_t tls_server_context::select(std::string_view server_name) const
{
    // Exact names first, then wildcards, each in file order; the default serves the rest.
    for (std::size_t i = 0; i < certificates_.size(); ++i)
        for (const auto& n : certificates_[i].names)
            if (!n.starts_with("*.") && tls_name_matches(n, server_name))
                return i;
    for (std::size_t i = 0; i < certificates_.size(); ++i)
        for (const auto& n : certificates_[i].names)
            if (n.starts_with("*.") && tls_name_matches(n, server_name))
                return i;
    return 0;
}

int tls_server_context::on_server_name(SSL* ssl, int*, void* arg)
{
    const auto* self = static_cast<const tls_server_context*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK; // no SNI: the default certificate
    if (const auto i = self->select(name); i != 0)
        SSL_set_SSL_CTX(ssl, self->certificates_[i].context->native_handle());
    return SSL_TLSEXT_ERR_OK;
}

tls_client_context::tls_client_context(const config::pool_config& pool)
    : context_(ssl::context::tls_client), ca_file_(pool.tls_ca_file), server_name_(pool.tls_server_name)
{
    SSL_CTX* native = context_.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    if (ca_file_.empty()) {
        if (SSL_CTX_set_default_verify_paths(native) != 1)
            throw config::config_error(pool.name, 0, 0, "cannot load the system's trust store" + openssl_reason());
        return;
    }
    const auto text = read_file(ca_file_);
    auto bio = memory_bio(text);
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    int loaded = 0;
    while (x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, no_pass_phrase, nullptr)}) {
        X509_STORE_add_cert(store, cert.get());
        ++loaded;
    }
    ERR_clear_error(); // the end of the file reads as an error
    if (loaded == 0)
        fail(ca_file_, "no PEM certificate in this CA file");
}

bool tls_client_context::prepare(SSL* ssl, const boost::asio::ip::tcp::endpoint& backend) const
{
    boost::system::error_code ec;
    const auto literal = server_name_.empty() ? backend.address()
                                              : boost::asio::ip::make_address(server_name_, ec);
    if (server_name_.empty() || !ec) {
        // An IP literal: no SNI (RFC 6066 forbids it), the certificate must carry the address.
        const auto text = literal.to_string();
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), text.c_str()) == 1;
    }
    return SSL_set_tlsext_host_name(ssl, server_name_.c_str()) == 1 && SSL_set1_host(ssl, server_name_.c_str()) == 1;
}

std::shared_ptr<tls_client_context> tls_contexts::for_pool(const config::pool_config& pool) const
{
    if (!pool.tls)
        return nullptr;
    const auto it = backends.find({pool.tls_ca_file, pool.tls_server_name});
    return it == backends.end() ? nullptr : it->second;
}

tls_contexts build_tls_contexts(const config::configuration& config)
{
    tls_contexts out;
    for (const auto& l : config.listeners)
        out.listeners.push_back(l.tls() ? std::make_shared<tls_server_context>(l) : nullptr);
    for (const auto& u : config.upstreams)
        for (const auto& p : u.pools)
            if (p.tls && !out.backends.contains({p.tls_ca_file, p.tls_server_name}))
                out.backends.emplace(std::pair{p.tls_ca_file, p.tls_server_name},
                                     std::make_shared<tls_client_context>(p));
    return out;
}

} // namespace turnout::net
