#include "turnout/session/token_codec.hpp"

#include "turnout/session/session_id.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using turnout::session::is_valid_session_id;
using turnout::session::token_codec;

namespace {

const std::string old_secret = "old secret, at least sixteen bytes";
const std::string new_secret = "new secret, also long enough";
const std::string session_id = "0f8b5c1e-3d2a-4b7c-9e6f-1a2b3c4d5e6f"; // 36 bytes, a UUID
const std::string address = "10.200.300.400:65535";                    // 20 bytes

// A key file in the temporary directory, removed when the test ends.
class temp_file {
public:
    explicit temp_file(const std::string& content)
        : path_((std::filesystem::temp_directory_path() /
                 ("turnout-token-" + std::to_string(std::random_device{}()) + ".key"))
                    .string())
    {
        std::ofstream{path_, std::ios::binary} << content;
    }
    ~temp_file() { std::remove(path_.c_str()); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string error_of(const std::string& path)
{
    try {
        (void)token_codec::from_file(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("token_codec round trips the session id and the backend address")
{
    const token_codec codec{{old_secret}};
    const std::string token = codec.seal(session_id, address);
    const auto opened = codec.open(token);
    REQUIRE(opened);
    CHECK(opened->original_id == session_id);
    CHECK(opened->backend_address == address);

    // An empty original id is still carried faithfully; the address is what routes.
    const auto empty = codec.open(codec.seal("", "b:1"));
    REQUIRE(empty);
    CHECK(empty->original_id.empty());
    CHECK(empty->backend_address == "b:1");
}

TEST_CASE("token_codec seals the same input differently each time and hides the address")
{
    const token_codec codec{{old_secret}};
    const std::string a = codec.seal(session_id, address);
    const std::string b = codec.seal(session_id, address);
    CHECK(a != b);
    CHECK(a.find(address) == std::string::npos);
    CHECK(a.find(session_id) == std::string::npos);
}

TEST_CASE("token_codec tokens are valid session ids that also fit a URL query")
{
    const token_codec codec{{old_secret}};
    const std::string long_address = address + "0"; // 21 bytes
    REQUIRE(long_address.size() == 21);
    REQUIRE(session_id.size() == 36);
    for (int i = 0; i < 50; ++i) {
        const std::string token = codec.seal(session_id, long_address);
        CHECK(is_valid_session_id(token));
        CHECK(token.size() <= 256);
        CHECK(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              std::string::npos);
    }
}

TEST_CASE("token_codec rejects every single-byte alteration of a token")
{
    const token_codec codec{{old_secret}};
    const std::string token = codec.seal(session_id, address);
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .\x7F";
    int tried = 0;
    for (std::size_t i = 0; i < token.size(); ++i) {
        for (const char c : alphabet) {
            if (c == token[i])
                continue;
            std::string altered = token;
            altered[i] = c;
            ++tried;
            if (codec.open(altered)) {
                FAIL("altered token opened at ", i, " with ", c);
                return;
            }
        }
        // Every byte value too, including NUL and non-ASCII.
        for (int b = 0; b < 256; b += 7) {
            std::string altered = token;
            if (altered[i] == static_cast<char>(b))
                continue;
            altered[i] = static_cast<char>(b);
            CHECK_FALSE(codec.open(altered));
        }
    }
    CHECK(tried > 1000);
}

TEST_CASE("token_codec rejects truncated, extended and empty tokens")
{
    const token_codec codec{{old_secret}};
    const std::string token = codec.seal(session_id, address);
    for (std::size_t n = 0; n < token.size(); ++n)
        CHECK_FALSE(codec.open(std::string_view{token}.substr(0, n)));
    CHECK_FALSE(codec.open(std::string_view{token}.substr(1)));
    CHECK_FALSE(codec.open(token + "A"));
    CHECK_FALSE(codec.open(token + "AA"));
    CHECK_FALSE(codec.open(token + "="));
    CHECK_FALSE(codec.open(""));
}

TEST_CASE("token_codec survives random input without opening it")
{
    const token_codec codec{{old_secret}};
    std::mt19937 rng{12345};
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 3000; ++i) {
        const std::size_t length = rng() % 200;
        std::string text(length, '\0');
        const bool base64 = i % 2 == 0; // half plausible, half arbitrary bytes
        for (char& c : text)
            c = base64 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() % 256);
        CHECK_FALSE(codec.open(text));
    }
    // Plausible prefix: the right version byte ("AQ" decodes to 0x01, 0x0.) and a valid length.
    for (int i = 0; i < 1000; ++i) {
        std::string text = "AQ";
        const std::size_t length = 40 + rng() % 120;
        while (text.size() < length)
            text += alphabet[rng() % alphabet.size()];
        CHECK_FALSE(codec.open(text));
    }
}

TEST_CASE("token_codec does not open a token sealed with another key")
{
    const token_codec ours{{old_secret}};
    const token_codec theirs{{new_secret}};
    CHECK_FALSE(ours.open(theirs.seal(session_id, address)));
    CHECK_FALSE(theirs.open(ours.seal(session_id, address)));
}

TEST_CASE("token_codec rotation: the first key seals, every key opens")
{
    const token_codec before{{old_secret}};
    const token_codec during{{new_secret, old_secret}};
    const token_codec after{{new_secret}};

    // Sessions sealed before the rotation keep working during it.
    const auto old_token = before.seal(session_id, address);
    const auto opened = during.open(old_token);
    REQUIRE(opened);
    CHECK(opened->original_id == session_id);
    CHECK(opened->backend_address == address);

    // New sessions are sealed with the new key: the old key alone cannot open them...
    const auto new_token = during.seal(session_id, address);
    CHECK_FALSE(before.open(new_token));
    // ...but the codec without the old key can, once it is removed.
    CHECK(after.open(new_token));
    CHECK(during.open(new_token));
    CHECK_FALSE(after.open(old_token));
}

TEST_CASE("token_codec rejects no key and short keys")
{
    CHECK_THROWS_AS(token_codec{std::vector<std::string>{}}, std::invalid_argument);
    CHECK_THROWS_AS(token_codec{{"fifteen bytes.."}}, std::invalid_argument);
    CHECK_THROWS_AS(token_codec({old_secret, "short"}), std::invalid_argument);
    CHECK_NOTHROW(token_codec{{"sixteen bytes..."}});
}

TEST_CASE("token_codec from_file skips comments and blank lines and trims line ends")
{
    const temp_file file{"# turnout token keys\n"
                         "\n"
                         "   \n" +
                         new_secret + "  \r\n" + "# the old one, remove after the sessions are gone\r\n" +
                         old_secret + "\t\n"};
    const token_codec from_file = token_codec::from_file(file.path());
    const token_codec direct{{new_secret, old_secret}};
    const token_codec only_old{{old_secret}};
    const token_codec only_new{{new_secret}};

    // Same keys, same order: the first (new) one seals, both open, whitespace was trimmed.
    CHECK(from_file.open(direct.seal(session_id, address)));
    CHECK(from_file.open(only_old.seal(session_id, address)));
    const auto token = from_file.seal(session_id, address);
    CHECK(only_new.open(token));
    CHECK_FALSE(only_old.open(token));
}

TEST_CASE("token_codec from_file reports errors with the path and the line")
{
    const std::string missing =
        (std::filesystem::temp_directory_path() / "turnout-no-such-file.key").string();
    CHECK(error_of(missing).starts_with(missing + ": "));

    const temp_file empty{"# only a comment\n\n"};
    CHECK(error_of(empty.path()).starts_with(empty.path() + ": "));
    CHECK(error_of(empty.path()).find("no key") != std::string::npos);

    const temp_file short_key{"# keys\n" + old_secret + "\n\ntoo short\n"};
    const std::string error = error_of(short_key.path());
    CHECK(error.starts_with(short_key.path() + ":4: "));
    CHECK(error.find("16 bytes") != std::string::npos);
}

// --- compact tokens (version 2) and ids too long for one ------------------------------------

namespace {

const std::string visible_ascii = [] {
    std::string s;
    for (char c = 0x21; c <= 0x7E; ++c)
        s += c;
    return s;
}();

std::string random_id(std::mt19937& rng, std::size_t size, std::string_view chars)
{
    std::string id;
    for (std::size_t i = 0; i < size; ++i)
        id += chars[rng() % chars.size()];
    return id;
}

} // namespace

TEST_CASE("token_codec packs ids and IP addresses: a UUID behind IPv4 takes 86 characters")
{
    const token_codec codec{{old_secret}};
    // Version 1 carried both as text: 108 characters for the same id and address.
    const std::string token = codec.seal(session_id, "127.0.0.1:3001");
    CHECK(token.size() == 86);
    const auto opened = codec.open(token);
    REQUIRE(opened);
    CHECK(opened->original_id == session_id);
    CHECK(opened->backend_address == "127.0.0.1:3001");
}

TEST_CASE("token_codec round trips every id form and address form exactly")
{
    const token_codec codec{{old_secret}};
    std::mt19937 rng(7);
    const std::vector<std::string> addresses = {
        "127.0.0.1:3001", "[::1]:8080", "[2001:db8::42]:443", "backend.internal:9000",
        "127.0.0.1:03001", // a leading zero: binary would not render it back, so kept as text
        "[::ffff:1.2.3.4]:1", "10.0.0.1:65535", "10.0.0.1:0"};
    const std::vector<std::string_view> alphabets = {"0123456789abcdef",
                                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                                     visible_ascii, "0123456789ABCDEF"};
    int checked = 0;
    for (const auto& address : addresses) {
        for (const auto chars : alphabets) {
            for (std::size_t size : {1, 2, 3, 4, 5, 31, 32, 36, 100, 141, 150, 200, 255, 256}) {
                const auto id = random_id(rng, size, chars);
                const auto token = codec.seal(id, address);
                const auto opened = codec.open(token);
                REQUIRE(opened);
                CHECK(opened->original_id == id);
                CHECK(opened->backend_address == address);
                ++checked;
            }
        }
    }
    CHECK(checked == 8 * 4 * 14);
}

TEST_CASE("token_codec tokens stay valid session ids for every id up to 256 bytes")
{
    // Version 1 went past 256 characters from a 142-byte id behind a 20-byte address.
    const token_codec codec{{old_secret}};
    std::mt19937 rng(11);
    const std::string long_host = std::string(200, 'h') + ".example:8080";
    for (const auto& address : {std::string(address), std::string("[2001:db8::42]:443"), long_host}) {
        for (const std::string_view chars : {std::string_view(visible_ascii), std::string_view("0123456789abcdef")}) {
            for (std::size_t size = 1; size <= 256; ++size) {
                const auto id = random_id(rng, size, chars);
                const auto token = codec.seal(id, address);
                CAPTURE(size);
                CHECK(token.size() <= 256);
                CHECK(is_valid_session_id(token));
                const auto opened = codec.open(token);
                REQUIRE(opened);
                CHECK(opened->original_id == id);
                CHECK(opened->backend_address == address);
            }
        }
    }
}

TEST_CASE("token_codec keeps ids too long for a token in this process, oldest out first")
{
    const token_codec codec{{old_secret}};
    std::mt19937 rng(13);
    const auto first_id = random_id(rng, 256, visible_ascii);
    const auto first = codec.seal(first_id, address);
    CHECK(first.size() == 62); // version, nonce, form, handle, tag
    REQUIRE(codec.open(first));
    CHECK(codec.open(first)->original_id == first_id);
    // Another codec of the same key (a reload) still opens it: the ids are kept per process.
    const token_codec reloaded{{old_secret}};
    REQUIRE(reloaded.open(first));
    CHECK(reloaded.open(first)->backend_address == address);

    // 16384 ids are kept: after that many more, the first is gone and opens to nothing (404).
    std::string last, last_id;
    for (int i = 0; i < 16'384; ++i) {
        last_id = random_id(rng, 200, visible_ascii);
        last = codec.seal(last_id, address);
    }
    CHECK_FALSE(codec.open(first));
    REQUIRE(codec.open(last));
    CHECK(codec.open(last)->original_id == last_id);
    // A short id never goes through the registry: it opens in any process.
    CHECK(codec.seal(session_id, address).size() < 256);
}

TEST_CASE("token_codec still opens version 1 tokens (sealed before the compact layout)")
{
    // Sealed by the version 1 code with old_secret: session_id behind "10.200.300.400:65535".
    const std::string v1 = "Acane2dFwI7BWGfeHxbLxmdLxkhfN871x0AXUxXH5V8b5KSUAGgQr6FK77SyuHBXWuwZHG5v_GUlIwclwK0boWbI7uhZuuVHABRCkQP3qbPMDNpp1Ek";
    const token_codec codec{{old_secret}};
    const auto opened = codec.open(v1);
    REQUIRE(opened);
    CHECK(opened->original_id == session_id);
    CHECK(opened->backend_address == address);
    std::string altered = v1;
    altered[40] = altered[40] == 'A' ? 'B' : 'A';
    CHECK_FALSE(codec.open(altered));
}
