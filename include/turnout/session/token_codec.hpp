#pragma once
// affinity = "token": the session id handed to clients is a token that names the owning
// backend, authenticated and encrypted with AES-256-GCM (OpenSSL), so any turnout instance
// with the same key routes it without shared state, a client cannot forge or alter it, and it
// does not reveal the backend's address. The backend's own id travels inside (packed: 4 bits a
// character for hex ids, 6 for base64url-alphabet ones such as UUIDs) and is restored toward the
// backend. Tokens are never longer than a session id may be (256 bytes): an id too long for
// that even packed is kept in this process and the token names it, so its session works with
// this process only (elsewhere, or after a restart, it answers 404 like an unknown token).
//
// Key file: one secret per line (blank lines and lines starting with '#' ignored); the first
// one seals new tokens, every one opens — so a key is rotated by putting the new one first and
// removing the old one once the sessions sealed with it are gone.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::session {

class token_codec {
public:
    /// secrets: at least one, each at least 16 bytes. Throws std::invalid_argument.
    explicit token_codec(std::vector<std::string> secrets);

    /// Reads a key file. Throws std::runtime_error with "PATH: message".
    static token_codec from_file(const std::string& path);

    /// A token: visible ASCII (base64url), at most 256 characters, different for each call
    /// (random nonce).
    std::string seal(std::string_view original_id, std::string_view backend_address) const;

    struct opened {
        std::string original_id;
        std::string backend_address;
    };
    /// nullopt when the token is malformed, altered, or sealed with none of the keys.
    std::optional<opened> open(std::string_view token) const;

private:
    std::vector<std::string> keys_; // 32-byte AES keys derived from the secrets (SHA-256)
};

} // namespace turnout::session
