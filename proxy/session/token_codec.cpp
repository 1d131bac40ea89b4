#include "turnout/session/token_codec.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <utility>

namespace turnout::session {

namespace {

// Token layout, before base64url: version | nonce | ciphertext | tag.
// The version byte is also the AAD, so a token cannot be replayed under another format.
constexpr unsigned char version = 0x01;
constexpr std::size_t nonce_size = 12; // the GCM standard nonce: no extra GHASH pass
constexpr std::size_t tag_size = 16;
constexpr std::size_t key_size = 32; // AES-256
constexpr std::size_t min_secret_size = 16;
// Plaintext: address length (1 byte) | address (at least 1 byte) | original id.
constexpr std::size_t min_plaintext_size = 2;
constexpr std::size_t max_address_size = 255;
constexpr std::size_t overhead = 1 + nonce_size + tag_size;

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
std::optional<bytes> encrypt(const std::string& key, const bytes& plaintext)
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
    bytes plaintext;
    plaintext.reserve(1 + backend_address.size() + original_id.size());
    plaintext.push_back(static_cast<unsigned char>(backend_address.size()));
    plaintext.insert(plaintext.end(), backend_address.begin(), backend_address.end());
    plaintext.insert(plaintext.end(), original_id.begin(), original_id.end());

    auto token = encrypt(keys_.front(), plaintext);
    if (!token)
        throw std::runtime_error("token: AES-256-GCM encryption failed");
    return base64url_encode(*token);
}

std::optional<token_codec::opened> token_codec::open(std::string_view token) const
{
    auto raw = base64url_decode(token);
    if (!raw || raw->size() < overhead + min_plaintext_size || (*raw)[0] != version)
        return std::nullopt;
    // Every key opens: the first seals, the others are older ones still being rotated out.
    for (const std::string& key : keys_)
        if (auto plaintext = decrypt(key, *raw))
            return parse_plaintext(*plaintext);
    return std::nullopt;
}

} // namespace turnout::session
