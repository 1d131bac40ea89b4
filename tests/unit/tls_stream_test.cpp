#include "turnout/config/config.hpp"
#include "turnout/net/stream.hpp"
#include "turnout/net/tls_context.hpp"
#include "turnout/net/tls_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace turnout;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

/// A CA and a leaf for 127.0.0.1 made by the openssl CLI, once for the whole file.
class tls_files {
public:
    static const tls_files& get()
    {
        static const tls_files files;
        return files;
    }
    ~tls_files() { fs::remove_all(path_); }

    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    tls_files()
    {
        char tmpl[] = "/tmp/turnout-tls-stream-XXXXXX";
        path_ = ::mkdtemp(tmpl);
        std::ofstream(file("leaf.ext")) << "subjectAltName=IP:127.0.0.1\n";
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
            "-subj /CN=unit-ca -days 2");
        run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout leaf.key -out leaf.csr "
            "-subj /CN=leaf");
        run("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out leaf.pem "
            "-extfile leaf.ext");
    }

    void run(const std::string& command) const
    {
        const auto full = "cd '" + path_.string() + "' && " + command + " >/dev/null 2>&1";
        REQUIRE(std::system(full.c_str()) == 0);
    }

    fs::path path_;
};

/// Two connected TCP sockets in one io_context, each with TLS enabled (turnout's own server and
/// client contexts, the client verifying the server's IP SAN), not yet handshaken.
struct tls_pair {
    asio::io_context io;
    std::unique_ptr<net::tls_server_context> server_ctx;
    std::unique_ptr<net::tls_client_context> client_ctx;
    std::optional<net::socket_stream> server_holder{std::in_place, io};
    net::socket_stream& server = *server_holder;
    net::socket_stream client{io};

    tls_pair()
    {
        const auto& files = tls_files::get();
        config::listen_config listen;
        listen.tls_cert = files.file("leaf.pem");
        listen.tls_key = files.file("leaf.key");
        server_ctx = std::make_unique<net::tls_server_context>(listen);
        config::pool_config pool;
        pool.tls = true;
        pool.tls_ca_file = files.file("ca.pem");
        client_ctx = std::make_unique<net::tls_client_context>(pool);

        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        client.next_layer().connect(acceptor.local_endpoint());
        acceptor.accept(server.next_layer());
    }

    /// Shrinks the kernel's buffers so that a large write blocks part-way.
    void small_socket_buffers()
    {
        server.next_layer().set_option(asio::socket_base::send_buffer_size(4096));
        client.next_layer().set_option(asio::socket_base::receive_buffer_size(4096));
    }

    void enable_tls()
    {
        server.enable_tls(server_ctx->context());
        auto& c = client.enable_tls(client_ctx->context());
        REQUIRE(client_ctx->prepare(c.native_handle(), server.next_layer().local_endpoint()));
    }

    /// Handshakes both ends; both must succeed.
    void handshake()
    {
        enable_tls();
        std::optional<error_code> server_ec, client_ec;
        server.tls().async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { server_ec = ec; });
        client.tls().async_handshake(asio::ssl::stream_base::client, [&](error_code ec) { client_ec = ec; });
        run_until([&] { return server_ec && client_ec; });
        REQUIRE(server_ec);
        REQUIRE(client_ec);
        REQUIRE_MESSAGE(!*server_ec, server_ec->message());
        REQUIRE_MESSAGE(!*client_ec, client_ec->message());
    }

    /// Runs handlers until done() holds, at most 20 s (a hang fails the test, never blocks it).
    template <class Done>
    void run_until(Done done)
    {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        io.restart();
        while (!done() && std::chrono::steady_clock::now() < deadline)
            if (io.run_one_for(std::chrono::milliseconds(100)) == 0 && io.stopped())
                io.restart();
    }
};

std::string pattern(std::size_t size, unsigned seed)
{
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>((i * 131 + seed) % 251);
    return s;
}

/// Reads into out until it holds want bytes or the stream fails (then sets failed).
struct reader {
    net::socket_stream& stream;
    std::string out;
    std::size_t want;
    std::optional<error_code> failed;
    std::array<char, 4096> buffer{};

    void start()
    {
        stream.async_read_some(asio::buffer(buffer), [this](error_code ec, std::size_t n) {
            out.append(buffer.data(), n);
            if (ec)
                failed = ec;
            else if (out.size() < want)
                start();
        });
    }
    bool done() const { return failed || out.size() >= want; }
};

} // namespace

TEST_CASE("tls_stream: handshake, then small payloads both ways")
{
    tls_pair p;
    p.handshake();
    CHECK(SSL_is_init_finished(p.server.tls().native_handle()) == 1);

    reader at_server{p.server, {}, 5};
    reader at_client{p.client, {}, 6};
    at_server.start();
    at_client.start();
    std::optional<error_code> w1, w2;
    p.client.async_write(asio::buffer(std::string_view("hello")), [&](error_code ec, std::size_t) { w1 = ec; });
    p.server.async_write(asio::buffer(std::string_view("world!")), [&](error_code ec, std::size_t) { w2 = ec; });
    p.run_until([&] { return at_server.done() && at_client.done() && w1 && w2; });
    CHECK(at_server.out == "hello");
    CHECK(at_client.out == "world!");
    CHECK(!at_server.failed);
    CHECK(!at_client.failed);
}

TEST_CASE("tls_stream: large payloads both ways at once (full duplex), small sequences gathered")
{
    tls_pair p;
    p.handshake();
    const auto up = pattern(3 * 1024 * 1024 + 17, 1);
    const auto down = pattern(2 * 1024 * 1024 + 5, 2);
    reader at_server{p.server, {}, up.size()};
    reader at_client{p.client, {}, down.size() + 9};
    at_server.start();
    at_client.start();
    std::optional<error_code> w_up, w_down;
    // The client writes one big buffer; the server writes a small sequence (gathered into one
    // record by tls_stream) followed by a big one.
    const std::string head = "head:";
    const std::string tail = "tail";
    const std::array<asio::const_buffer, 2> small{asio::buffer(head), asio::buffer(tail)};
    p.client.async_write(asio::buffer(up), [&](error_code ec, std::size_t n) {
        CHECK(n == up.size());
        w_up = ec;
    });
    p.server.async_write(small, [&](error_code ec, std::size_t n) {
        CHECK(n == head.size() + tail.size());
        if (ec) {
            w_down = ec;
            return;
        }
        p.server.async_write(asio::buffer(down), [&](error_code ec, std::size_t) { w_down = ec; });
    });
    p.run_until([&] { return at_server.done() && at_client.done() && w_up && w_down; });
    REQUIRE(w_up);
    REQUIRE(w_down);
    CHECK(!*w_up);
    CHECK(!*w_down);
    CHECK(!at_server.failed);
    CHECK(!at_client.failed);
    CHECK(at_server.out == up);
    CHECK(at_client.out == head + tail + down);
}

TEST_CASE("tls_stream: a write blocked by a full socket ends part-way, and the rest follows unchanged")
{
    tls_pair p;
    p.small_socket_buffers();
    p.handshake();
    // 256 KiB: far beyond the 4 KiB socket buffers, yet quick (tiny windows move about 4 KiB
    // per delayed ACK, so 1 MiB took ~20 s on a loaded machine).
    const auto data = pattern(256 * 1024, 3);

    // Nobody reads yet: one write_some must end after the records the kernel took.
    std::optional<std::size_t> first;
    p.server.async_write_some(asio::buffer(data), [&](error_code ec, std::size_t n) {
        CHECK(!ec);
        first = n;
    });
    p.run_until([&] { return first.has_value(); });
    REQUIRE(first);
    CHECK(*first > 0);
    CHECK(*first < data.size());

    // A gathered sequence blocks too (the reader is still idle), then must resume with the
    // same bytes once the reader drains the socket.
    const auto rest = std::string_view(data).substr(*first);
    const std::array<asio::const_buffer, 3> pieces{asio::buffer(rest.substr(0, 100)), asio::buffer(rest.substr(100, 200)),
                                                   asio::buffer(rest.substr(300))};
    std::optional<error_code> written;
    asio::async_write(p.server.tls(), pieces, [&](error_code ec, std::size_t n) {
        CHECK(n == rest.size());
        written = ec;
    });
    p.io.restart();
    p.io.poll(); // blocked: nothing drains the socket
    CHECK(!written);

    reader at_client{p.client, {}, data.size()};
    at_client.start();
    p.run_until([&] { return at_client.done() && written; });
    REQUIRE(written);
    CHECK(!*written);
    CHECK(!at_client.failed);
    CHECK(at_client.out == data);
}

TEST_CASE("tls_stream: shutdown both ways at once completes cleanly")
{
    tls_pair p;
    p.handshake();
    std::optional<error_code> s1, s2;
    p.server.tls().async_shutdown([&](error_code ec) { s1 = ec; });
    p.client.tls().async_shutdown([&](error_code ec) { s2 = ec; });
    p.run_until([&] { return s1 && s2; });
    REQUIRE(s1);
    REQUIRE(s2);
    CHECK_MESSAGE(!*s1, s1->message());
    CHECK_MESSAGE(!*s2, s2->message());
}

TEST_CASE("tls_stream: the peer's close_notify ends a pending read with eof, then our shutdown completes")
{
    tls_pair p;
    p.handshake();
    reader at_client{p.client, {}, 1};
    at_client.start();
    std::optional<error_code> server_done;
    p.server.tls().async_shutdown([&](error_code ec) { server_done = ec; });
    p.run_until([&] { return at_client.done(); });
    REQUIRE(at_client.failed);
    CHECK(*at_client.failed == asio::error::eof);
    CHECK(!server_done); // still waiting for the client's close_notify

    std::optional<error_code> client_done;
    p.client.tls().async_shutdown([&](error_code ec) { client_done = ec; });
    p.run_until([&] { return server_done && client_done; });
    REQUIRE(server_done);
    REQUIRE(client_done);
    CHECK(!*server_done);
    CHECK(!*client_done);
}

TEST_CASE("tls_stream: a TCP end without close_notify reads as stream_truncated")
{
    tls_pair p;
    p.handshake();
    reader at_server{p.server, {}, 1};
    at_server.start();
    // A FIN (a close would send a reset, with the server's session tickets still unread).
    p.client.next_layer().shutdown(tcp::socket::shutdown_send);
    p.run_until([&] { return at_server.done(); });
    REQUIRE(at_server.failed);
    CHECK(*at_server.failed == asio::ssl::error::stream_truncated);
}

TEST_CASE("tls_stream: plain text on a TLS port fails the handshake cleanly")
{
    tls_pair p;
    p.server.enable_tls(p.server_ctx->context());
    std::optional<error_code> handshake;
    p.server.tls().async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { handshake = ec; });
    asio::write(p.client.next_layer(), asio::buffer(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    p.run_until([&] { return handshake.has_value(); });
    REQUIRE(handshake);
    CHECK(*handshake);
    CHECK(handshake->category() == asio::error::get_ssl_category());
}

TEST_CASE("tls_stream: a client that refuses the server's certificate fails both handshakes")
{
    tls_pair p;
    p.enable_tls();
    // Expect another address than the certificate's.
    REQUIRE(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p.client.tls().native_handle()), "127.0.0.2") == 1);
    std::optional<error_code> server_ec, client_ec;
    p.server.tls().async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { server_ec = ec; });
    p.client.tls().async_handshake(asio::ssl::stream_base::client, [&](error_code ec) { client_ec = ec; });
    p.run_until([&] { return server_ec && client_ec; });
    REQUIRE(client_ec);
    REQUIRE(server_ec);
    CHECK(*client_ec);
    CHECK(client_ec->category() == asio::error::get_ssl_category());
    CHECK(*server_ec);
}

TEST_CASE("tls_stream: completions never run inside the initiating call, and closing aborts waits")
{
    tls_pair p;
    p.handshake();
    bool returned = false;
    std::optional<error_code> empty_read;
    p.server.async_read_some(asio::mutable_buffer(), [&](error_code ec, std::size_t n) {
        CHECK(returned);
        CHECK(n == 0);
        empty_read = ec;
    });
    returned = true;
    p.run_until([&] { return empty_read.has_value(); });
    REQUIRE(empty_read);
    CHECK(!*empty_read);

    reader at_server{p.server, {}, 1};
    at_server.start();
    p.io.poll(); // the read now waits for the socket
    p.server.next_layer().close();
    p.run_until([&] { return at_server.done(); });
    REQUIRE(at_server.failed);
    CHECK(*at_server.failed == asio::error::operation_aborted);
}

TEST_CASE("tls_stream: a wait that completes after the socket closed, or the stream went, ends as aborted")
{
    for (const bool destroy : {false, true}) {
        CAPTURE(destroy);
        tls_pair p;
        p.handshake();
        std::optional<error_code> read;
        std::array<char, 64> buffer{};
        p.server.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t) { read = ec; });
        p.io.restart();
        p.io.poll(); // the read waits for the socket now
        REQUIRE(!read);
        // The client's record makes the wait complete; a handler queued before it closes the
        // socket (or destroys the stream) first, as another handler of the connection may.
        asio::write(p.client.tls().next_layer(), asio::buffer(std::string_view("x"))); // not TLS: any byte wakes it
        asio::post(p.io, [&] {
            if (destroy)
                p.server_holder.reset();
            else
                p.server.next_layer().close();
        });
        p.run_until([&] { return read.has_value(); });
        REQUIRE(read);
        CHECK(*read == asio::error::operation_aborted);
    }
}
