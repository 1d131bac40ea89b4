// libFuzzer target: session ids and tokens as clients send them.
//   - session::is_valid_session_id against its definition (visible ASCII, 1 to 256 bytes);
//   - http::query_parameter / replace_query_parameter / session::legacy_session_id on an
//     arbitrary target: replacing a present parameter then reading it gives the new value,
//     replacing an absent one changes nothing;
//   - session::token_codec: open() on arbitrary bytes (never succeeds without the key), and
//     seal → open gives back the id and the address; any plaintext sealed with the key (the
//     packed and text plaintext readers behind the tag) opens without crashing.
//
// Input: three strings separated by NUL bytes: a target (or token), a parameter name, a value.

#include "fuzz_support.hpp"

#include "turnout/http/target.hpp"
#include "turnout/session/session_id.hpp"
#include "turnout/session/token_codec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace turnout;

namespace {

bool visible_ascii(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b >= 0x21 && b <= 0x7e;
    });
}

const session::token_codec& codec()
{
    static const session::token_codec c{{"fuzzing-secret-0123456789", "an-older-secret-still-opening"}};
    return c;
}

const session::token_codec& other_codec()
{
    static const session::token_codec c{{"a-different-secret-entirely!"}};
    return c;
}

// A token of the given version around plaintext, sealed with codec()'s first key as
// token_codec.cpp does (version | nonce | AES-256-GCM ciphertext | tag, version as AAD,
// base64url without padding), but with any plaintext and a fixed nonce.
std::string seal_raw(unsigned char version, std::string_view plaintext)
{
    static const std::string key = [] {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        const std::string secret = "fuzzing-secret-0123456789";
        EVP_Digest(secret.data(), secret.size(), digest, &n, EVP_sha256(), nullptr);
        return std::string(reinterpret_cast<const char*>(digest), n);
    }();
    std::vector<unsigned char> out(1 + 12 + plaintext.size() + 16, 0);
    out[0] = version;
    unsigned char* nonce = out.data() + 1;
    unsigned char* ciphertext = nonce + 12;
    unsigned char* tag = ciphertext + plaintext.size();
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    FUZZ_CHECK(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.data()),
                                  nonce) == 1);
    FUZZ_CHECK(EVP_EncryptUpdate(ctx, nullptr, &len, &version, 1) == 1);
    FUZZ_CHECK(EVP_EncryptUpdate(ctx, ciphertext, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                                 static_cast<int>(plaintext.size())) == 1);
    FUZZ_CHECK(EVP_EncryptFinal_ex(ctx, ciphertext + len, &len) == 1);
    FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);

    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string token;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const unsigned char b : out) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            token += alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        token += alphabet[(acc << (6 - bits)) & 63];
    return token;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input{reinterpret_cast<const char*>(data), size};
    std::string_view parts[3];
    std::size_t at = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        const auto end = i == 2 ? input.size() : std::min(input.size(), input.find('\0', at));
        parts[i] = input.substr(std::min(at, input.size()), end - std::min(at, input.size()));
        at = end + 1;
    }
    const fuzz::exact_copy target_copy{parts[0]};
    const std::string_view target = target_copy.view();
    const std::string_view name = parts[1];
    const std::string_view value = parts[2];

    // Session ids.
    for (const auto s : parts)
        FUZZ_CHECK(session::is_valid_session_id(s) == (!s.empty() && s.size() <= 256 && visible_ascii(s)));

    // Query parameters.
    const auto present = http::query_parameter(target, name);
    if (present) {
        FUZZ_CHECK(present->data() >= target.data() && present->data() + present->size() <= target.data() + target.size());
        fuzz::touch(*present);
    }
    const auto replaced = http::replace_query_parameter(target, name, value);
    if (!present) {
        FUZZ_CHECK(replaced == target);
    } else if (value.find_first_of("&#") == std::string_view::npos) {
        const auto again = http::query_parameter(replaced, name);
        FUZZ_CHECK(again.has_value() && *again == value);
        // Putting the old value back gives the target back (up to a bare name's new '=').
        const auto restored = http::replace_query_parameter(replaced, name, *present);
        FUZZ_CHECK(restored == target || restored.size() == target.size() + 1);
    }
    if (const auto legacy = session::legacy_session_id(target)) {
        FUZZ_CHECK(legacy->name == "sessionId" || legacy->name == "session_id");
        const auto direct = http::query_parameter(target, legacy->name);
        FUZZ_CHECK(direct.has_value() && *direct == legacy->value);
    }

    // Tokens: arbitrary bytes do not open (a forgery would need the key) and do not crash.
    for (const auto s : parts) {
        const auto opened = codec().open(s);
        FUZZ_CHECK(!opened.has_value() || s.size() >= 16);
    }
    // Seal → open round trip with the fuzzed id and address.
    const std::string_view id = parts[1].substr(0, 4096);
    const std::string_view address = parts[2].substr(0, 255);
    if (!address.empty()) {
        const auto token = codec().seal(id, address);
        FUZZ_CHECK(session::is_valid_session_id(token));
        const auto opened = codec().open(token);
        FUZZ_CHECK(opened.has_value());
        FUZZ_CHECK(opened->original_id == id);
        FUZZ_CHECK(opened->backend_address == address);
        FUZZ_CHECK(!other_codec().open(token).has_value());
        // One character changed: the token no longer opens (strict base64url, then the tag).
        std::string altered = token;
        const std::size_t i = (size * 7919) % altered.size();
        altered[i] = altered[i] == 'A' ? 'B' : 'A';
        FUZZ_CHECK(!codec().open(altered).has_value());
    }

    // The plaintext readers behind the tag: the input sealed as it is with the key (what only a
    // holder of the key could make), in either token version. Whatever opens seals again.
    if (const auto forged = codec().open(seal_raw(size % 2 ? 0x01 : 0x02, input.substr(0, 4400)))) {
        fuzz::touch(forged->original_id);
        fuzz::touch(forged->backend_address);
        if (!forged->backend_address.empty() && forged->backend_address.size() <= 255 &&
            forged->original_id.size() <= 4096) {
            const auto again = codec().open(codec().seal(forged->original_id, forged->backend_address));
            FUZZ_CHECK(again && again->original_id == forged->original_id &&
                       again->backend_address == forged->backend_address);
        }
    }
    return 0;
}
