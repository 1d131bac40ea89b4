#include "turnout/session/token_codec.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace turnout::session {

namespace {

// Token layout, before base64url: version | nonce | ciphertext | tag.
// The version byte is also the AAD, so a token cannot be replayed under another format.
// Version 1 (still opened, no longer sealed) carried the address and the id as text; version
// 2 packs both (see "compact plaintext" below), so that the token of any hex session id, and
// of any base64url-alphabet id up to about 200 bytes, stays within SPEC's 256-byte id limit.
constexpr unsigned char version_text = 0x01;
constexpr unsigned char version_packed = 0x02;
constexpr std::size_t nonce_size = 12; // the GCM standard nonce: no extra GHASH pass
constexpr std::size_t tag_size = 16;
constexpr std::size_t key_size = 32; // AES-256
constexpr std::size_t min_secret_size = 16;
// Plaintext (version 1): address length (1 byte) | address (at least 1 byte) | original id.
constexpr std::size_t min_plaintext_size = 2;
constexpr std::size_t max_address_size = 255;
constexpr std::size_t overhead = 1 + nonce_size + tag_size;

// The longest token that is still a valid session id (SPEC: at most 256 bytes).
constexpr std::size_t max_valid_token_chars = 256;

// Large enough for any session id (SPEC: at most 256 bytes) with room to spare; it bounds the
// work open() does on hostile input and keeps sizes within OpenSSL's int lengths.
constexpr std::size_t max_original_id_size = 4096;
constexpr std::size_t max_token_size =
    1 + nonce_size + 1 + max_address_size + max_original_id_size + tag_size;
constexpr std::size_t max_token_chars = (max_token_size * 4 + 2) / 3;

using bytes = std::vector<unsigned char>;

struct cipher_ctx_deleter {
    void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

// --- base64url (RFC 4648 §5), no padding -------------------------------------------------

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table()
{
    std::array<std::int8_t, 256> table{};
    table.fill(-1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return table;
}
constexpr std::array<std::int8_t, 256> decode_table = make_decode_table();

std::string base64url_encode(const bytes& in)
{
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t n = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    const std::size_t rest = in.size() - i;
    if (rest == 1) {
        const std::uint32_t n = std::uint32_t{in[i]} << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
    } else if (rest == 2) {
        const std::uint32_t n = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
    }
    return out;
}

// Strict: only the alphabet, no padding, and the unused low bits of the last character must be
// zero. Without that last rule two spellings would decode to the same bytes, and a client could
// alter a token without it being noticed as altered.
std::optional<bytes> base64url_decode(std::string_view in)
{
    if (in.size() % 4 == 1 || in.size() > max_token_chars)
        return std::nullopt;
    bytes out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        const std::int8_t v = decode_table[static_cast<unsigned char>(c)];
        if (v < 0)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<unsigned char>((acc >> bits) & 0xFF));
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return std::nullopt;
    return out;
}

// --- AES-256-GCM ---------------------------------------------------------------------------

std::string derive_key(const std::string& secret)
{
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(secret.data(), secret.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
        size != key_size)
        throw std::runtime_error("token key: SHA-256 failed");
    std::string key(reinterpret_cast<const char*>(digest.data()), key_size);
    OPENSSL_cleanse(digest.data(), digest.size());
    return key;
}

const unsigned char* key_bytes(const std::string& key)
{
    return reinterpret_cast<const unsigned char*>(key.data());
}

// The returned token bytes, or nullopt if OpenSSL fails (it does not for valid arguments).
std::optional<bytes> encrypt(const std::string& key, unsigned char version, const bytes& plaintext)
{
    bytes out(overhead + plaintext.size(), 0);
    out[0] = version;
    unsigned char* nonce = out.data() + 1;
    unsigned char* ciphertext = nonce + nonce_size;
    unsigned char* tag = ciphertext + plaintext.size();
    if (RAND_bytes(nonce, static_cast<int>(nonce_size)) != 1)
        return std::nullopt;

    cipher_ctx ctx{EVP_CIPHER_CTX_new()};
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_bytes(key), nonce) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, &version, 1) != 1 ||
        EVP_EncryptUpdate(ctx.get(), ciphertext, &len, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), ciphertext + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), tag) != 1)
        return std::nullopt;
    return out;
}

// The plaintext if token (already checked for size and version) was sealed with key.
std::optional<bytes> decrypt(const std::string& key, const bytes& token)
{
    const unsigned char version = token[0];
    const unsigned char* nonce = token.data() + 1;
    const unsigned char* ciphertext = nonce + nonce_size;
    const std::size_t ciphertext_size = token.size() - overhead;
    // OpenSSL takes the expected tag through a non-const pointer; it only reads it.
    std::array<unsigned char, tag_size> tag{};
    std::copy_n(ciphertext + ciphertext_size, tag_size, tag.begin());

    bytes plaintext(ciphertext_size, 0);
    cipher_ctx ctx{EVP_CIPHER_CTX_new()};
    int len = 0;
    if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_bytes(key), nonce) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, &version, 1) != 1 ||
        EVP_DecryptUpdate(ctx.get(), plaintext.data(), &len, ciphertext, static_cast<int>(ciphertext_size)) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size), tag.data()) != 1)
        return std::nullopt;
    // Final is where the tag is verified: nothing decrypted is trusted before it passes.
    if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + len, &len) != 1)
        return std::nullopt;
    return plaintext;
}

std::optional<token_codec::opened> parse_plaintext(const bytes& plaintext)
{
    if (plaintext.size() < min_plaintext_size)
        return std::nullopt;
    const std::size_t address_size = plaintext[0];
    if (address_size == 0 || address_size > plaintext.size() - 1)
        return std::nullopt;
    const auto* p = reinterpret_cast<const char*>(plaintext.data()) + 1;
    token_codec::opened result;
    result.backend_address.assign(p, address_size);
    result.original_id.assign(p + address_size, plaintext.size() - 1 - address_size);
    return result;
}

// --- compact plaintext (version 2) -----------------------------------------------------------
//
// form (1 byte: address form in bits 0-1, id form in bits 2-3) | address | id
//   address: text: length (1 byte, 1-255) | text;  IPv4: 4 bytes | port (2, big-endian);
//            IPv6 (written "[...]:port"): 16 bytes | port.  Binary only when it renders back
//            to exactly the same text: the address is matched as text against the registry.
//   id:      raw: the rest;  hex (0-9a-f): count - 1 (1 byte) | 4 bits per character;
//            base64url alphabet (A-Z a-z 0-9 - _): count - 1 | 6 bits per character;
//            handle: 16 bytes naming an id and address kept in this process (see
//            long_id_registry); the address form is then 0 and no address follows.
// A 36-byte UUID session id behind an IPv4 backend thus takes an 86-character token, not 108.

enum address_form : unsigned char { address_text = 0, address_ipv4 = 1, address_ipv6 = 2 };
enum id_form : unsigned char { id_raw = 0, id_hex = 1, id_base64url = 2, id_handle = 3 };

constexpr std::size_t handle_size = 16;
constexpr std::size_t max_packed_id_size = 256; // the count fits one byte

struct binary_address {
    address_form form = address_text;
    std::array<unsigned char, 16> ip{};
    std::uint16_t port = 0;
};

std::string render(const binary_address& a)
{
    std::array<char, INET6_ADDRSTRLEN> text{};
    const int family = a.form == address_ipv4 ? AF_INET : AF_INET6;
    if (!::inet_ntop(family, a.ip.data(), text.data(), text.size()))
        return {};
    const std::string host = a.form == address_ipv4 ? std::string(text.data()) : "[" + std::string(text.data()) + "]";
    return host + ":" + std::to_string(a.port);
}

/// The binary form of "IPv4:port" or "[IPv6]:port" when it renders back to the same text.
std::optional<binary_address> parse_binary_address(std::string_view text)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= text.size())
        return std::nullopt;
    const auto port_text = text.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 0xFFFF)
        return std::nullopt;
    binary_address a;
    a.port = static_cast<std::uint16_t>(port);
    auto host = std::string(text.substr(0, colon));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        a.form = address_ipv6;
        host = host.substr(1, host.size() - 2);
    } else {
        a.form = address_ipv4;
    }
    if (::inet_pton(a.form == address_ipv4 ? AF_INET : AF_INET6, host.c_str(), a.ip.data()) != 1)
        return std::nullopt;
    if (render(a) != text)
        return std::nullopt; // e.g. a leading zero in the port: keep the text as it is
    return a;
}

constexpr std::string_view hex_alphabet = "0123456789abcdef";

/// Packs id (every character in alphabet, whose size is 2^bits) at `bits` bits a character.
void pack(bytes& out, std::string_view id, std::string_view alphabet, int bits)
{
    out.push_back(static_cast<unsigned char>(id.size() - 1));
    std::uint32_t acc = 0;
    int held = 0;
    for (const char c : id) {
        acc = (acc << bits) | static_cast<std::uint32_t>(alphabet.find(c));
        held += bits;
        if (held >= 8) {
            held -= 8;
            out.push_back(static_cast<unsigned char>(acc >> held));
            acc &= (1u << held) - 1;
        }
    }
    if (held > 0)
        out.push_back(static_cast<unsigned char>(acc << (8 - held)));
}

/// The id packed from in (exactly all of it), or nullopt.
std::optional<std::string> unpack(std::basic_string_view<unsigned char> in, std::string_view alphabet, int bits)
{
    if (in.empty())
        return std::nullopt;
    const std::size_t count = std::size_t{in[0]} + 1;
    in.remove_prefix(1);
    if (in.size() != (count * static_cast<std::size_t>(bits) + 7) / 8)
        return std::nullopt;
    std::string id;
    id.reserve(count);
    std::uint32_t acc = 0;
    int held = 0;
    for (const unsigned char b : in) {
        acc = (acc << 8) | b;
        held += 8;
        while (held >= bits && id.size() < count) {
            held -= bits;
            id.push_back(alphabet[(acc >> held) & ((1u << bits) - 1)]);
        }
        acc &= (1u << held) - 1;
    }
    return id;
}

bool all_in(std::string_view id, std::string_view alphabet)
{
    return id.find_first_not_of(alphabet) == std::string_view::npos;
}

// Ids whose token would exceed SPEC's 256 bytes even packed (arbitrary characters beyond about
// 150 bytes; or behind a long host name) are kept here with their backend's address, and the
// token carries a random 16-byte handle instead (a 62-character token). Such a session works as long as this process runs and the id has not been
// pushed out (oldest first, beyond `capacity` ids); elsewhere (another instance, after a
// restart) its token opens to nothing, so it answers 404 like any unknown token and the client
// starts a new session. Process-wide, not per codec: a reload builds new codecs.
class long_id_registry {
public:
    static long_id_registry& instance()
    {
        static long_id_registry registry;
        return registry;
    }

    std::string add(std::string_view id, std::string_view address)
    {
        std::string handle(handle_size, '\0');
        if (RAND_bytes(reinterpret_cast<unsigned char*>(handle.data()), static_cast<int>(handle_size)) != 1)
            throw std::runtime_error("token: no random bytes for a handle");
        std::lock_guard lock(mutex_);
        if (order_.size() >= capacity) {
            ids_.erase(order_.front());
            order_.pop_front();
        }
        ids_.emplace(handle, token_codec::opened{std::string(id), std::string(address)});
        order_.push_back(handle);
        return handle;
    }

    std::optional<token_codec::opened> find(std::string_view handle) const
    {
        std::lock_guard lock(mutex_);
        const auto it = ids_.find(std::string(handle));
        if (it == ids_.end())
            return std::nullopt;
        return it->second;
    }

    static constexpr std::size_t capacity = 16384; // at most ~5 MiB of ids of 256 bytes

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, token_codec::opened> ids_;
    std::deque<std::string> order_;
};

void put_address(bytes& out, std::string_view address, const std::optional<binary_address>& binary)
{
    if (!binary) {
        out.push_back(static_cast<unsigned char>(address.size()));
        out.insert(out.end(), address.begin(), address.end());
        return;
    }
    const std::size_t ip_size = binary->form == address_ipv4 ? 4 : 16;
    out.insert(out.end(), binary->ip.begin(), binary->ip.begin() + static_cast<std::ptrdiff_t>(ip_size));
    out.push_back(static_cast<unsigned char>(binary->port >> 8));
    out.push_back(static_cast<unsigned char>(binary->port & 0xFF));
}

/// The version 2 plaintext of id and address, with the id as `form` says.
bytes packed_plaintext(std::string_view id, std::string_view address, const std::optional<binary_address>& binary,
                       id_form form)
{
    bytes out;
    out.reserve(2 + address.size() + id.size());
    const auto a = binary ? binary->form : address_text;
    if (form == id_handle) { // the registry has the address
        out.push_back(static_cast<unsigned char>(form << 2));
        out.insert(out.end(), id.begin(), id.end());
        return out;
    }
    out.push_back(static_cast<unsigned char>(a | (form << 2)));
    put_address(out, address, binary);
    switch (form) {
    case id_hex:
        pack(out, id, hex_alphabet, 4);
        break;
    case id_base64url:
        pack(out, id, alphabet, 6);
        break;
    case id_raw:
    case id_handle:
        out.insert(out.end(), id.begin(), id.end());
        break;
    }
    return out;
}

id_form best_id_form(std::string_view id)
{
    if (id.empty() || id.size() > max_packed_id_size)
        return id_raw;
    if (all_in(id, hex_alphabet))
        return id_hex;
    if (all_in(id, alphabet))
        return id_base64url;
    return id_raw;
}

constexpr std::size_t token_chars(std::size_t plaintext_size)
{
    return ((overhead + plaintext_size) * 4 + 2) / 3;
}

std::optional<token_codec::opened> parse_packed_plaintext(const bytes& plaintext)
{
    if (plaintext.empty())
        return std::nullopt;
    const auto a = static_cast<address_form>(plaintext[0] & 3);
    const auto f = static_cast<id_form>((plaintext[0] >> 2) & 3);
    if (plaintext[0] >> 4 || a > address_ipv6)
        return std::nullopt;
    std::basic_string_view<unsigned char> rest(plaintext.data() + 1, plaintext.size() - 1);
    if (f == id_handle) {
        if (a != address_text || rest.size() != handle_size)
            return std::nullopt;
        return long_id_registry::instance().find(std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()));
    }
    token_codec::opened result;
    if (a == address_text) {
        if (rest.empty() || rest[0] == 0 || rest[0] > rest.size() - 1)
            return std::nullopt;
        result.backend_address.assign(reinterpret_cast<const char*>(rest.data()) + 1, rest[0]);
        rest.remove_prefix(1 + std::size_t{rest[0]});
    } else {
        binary_address b;
        b.form = a;
        const std::size_t ip_size = a == address_ipv4 ? 4 : 16;
        if (rest.size() < ip_size + 2)
            return std::nullopt;
        std::copy_n(rest.begin(), ip_size, b.ip.begin());
        b.port = static_cast<std::uint16_t>(rest[ip_size] << 8 | rest[ip_size + 1]);
        result.backend_address = render(b);
        if (result.backend_address.empty())
            return std::nullopt;
        rest.remove_prefix(ip_size + 2);
    }
    std::optional<std::string> id;
    switch (f) {
    case id_raw:
        id.emplace(reinterpret_cast<const char*>(rest.data()), rest.size());
        break;
    case id_hex:
        id = unpack(rest, hex_alphabet, 4);
        break;
    case id_base64url:
        id = unpack(rest, alphabet, 6);
        break;
    case id_handle: // handled above
        break;
    }
    if (!id)
        return std::nullopt;
    result.original_id = std::move(*id);
    return result;
}

// --- key file ------------------------------------------------------------------------------

std::string_view trim_trailing(std::string_view line)
{
    const auto end = line.find_last_not_of(" \t\r\n\v\f");
    return end == std::string_view::npos ? std::string_view{} : line.substr(0, end + 1);
}

} // namespace

token_codec::token_codec(std::vector<std::string> secrets)
{
    if (secrets.empty())
        throw std::invalid_argument("token key: no key given");
    for (const std::string& secret : secrets)
        if (secret.size() < min_secret_size)
            throw std::invalid_argument("token key: a key is shorter than 16 bytes");
    keys_.reserve(secrets.size());
    for (std::string& secret : secrets) {
        keys_.push_back(derive_key(secret));
        // Only the derived keys are needed from here on; do not leave the secrets in freed memory.
        OPENSSL_cleanse(secret.data(), secret.size());
    }
}

token_codec token_codec::from_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error(path + ": cannot open the key file");
    std::vector<std::string> secrets;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        const std::string_view secret = trim_trailing(line);
        if (secret.empty() || secret.front() == '#')
            continue;
        if (secret.size() < min_secret_size)
            throw std::runtime_error(path + ":" + std::to_string(number) + ": key is shorter than 16 bytes");
        secrets.emplace_back(secret);
    }
    OPENSSL_cleanse(line.data(), line.size());
    if (in.bad())
        throw std::runtime_error(path + ": cannot read the key file");
    if (secrets.empty())
        throw std::runtime_error(path + ": no key in the key file");
    return token_codec{std::move(secrets)};
}

std::string token_codec::seal(std::string_view original_id, std::string_view backend_address) const
{
    if (backend_address.empty() || backend_address.size() > max_address_size)
        throw std::invalid_argument("token: backend address must be 1 to 255 bytes");
    if (original_id.size() > max_original_id_size)
        throw std::invalid_argument("token: session id longer than 4096 bytes");
    const auto binary = parse_binary_address(backend_address);
    auto plaintext = packed_plaintext(original_id, backend_address, binary, best_id_form(original_id));
    if (token_chars(plaintext.size()) > max_valid_token_chars) {
        // Too long to be a session id: the id stays here, the token names it (see the registry).
        const auto handle = long_id_registry::instance().add(original_id, backend_address);
        plaintext = packed_plaintext(handle, backend_address, binary, id_handle);
    }

    auto token = encrypt(keys_.front(), version_packed, plaintext);
    if (!token)
        throw std::runtime_error("token: AES-256-GCM encryption failed");
    return base64url_encode(*token);
}

std::optional<token_codec::opened> token_codec::open(std::string_view token) const
{
    auto raw = base64url_decode(token);
    if (!raw || raw->size() < overhead + 1)
        return std::nullopt;
    const auto version = (*raw)[0];
    if (version != version_packed && (version != version_text || raw->size() < overhead + min_plaintext_size))
        return std::nullopt;
    // Every key opens: the first seals, the others are older ones still being rotated out.
    for (const std::string& key : keys_)
        if (auto plaintext = decrypt(key, *raw))
            return version == version_packed ? parse_packed_plaintext(*plaintext) : parse_plaintext(*plaintext);
    return std::nullopt;
}

} // namespace turnout::session
