#pragma once
// The turnout configuration a translation builds, in the shape of turnout's TOML ([proxy],
// [[listen]], [[upstream]] with pools and passive checks, [[route]]), and its text. Only keys
// turnout's loader knows are written; what nginx said that turnout cannot is written as
// comments, so the file shows its own gaps.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace turnout::nginx {

struct toml_model {
    struct setting {
        std::string key;
        std::string value;   // TOML text: "\"30s\"", 8, "\"combined\""
        std::string comment; // where it came from
    };
    struct certificate {
        std::string cert, key;
    };
    struct listener {
        std::string address;
        std::string name; // set when a route is limited to it
        std::string comment;
        std::string cert, key; // default certificate (TLS when set)
        std::vector<certificate> more; // [[listen.certificate]], chosen by SNI
    };
    struct pool {
        std::string name;
        std::uint32_t weight = 0;
        std::vector<std::string> backends;
        bool tls = false;
        std::string comment;
        bool backup = false;
    };
    struct upstream {
        std::string name;
        std::string comment;
        std::vector<pool> pools;
        std::optional<unsigned> passive_failures;
        std::optional<std::string> passive_backoff; // a turnout duration
    };
    struct answer {
        unsigned status = 0;
        std::string location, body;
    };
    struct route {
        std::string host;
        std::string path_prefix;
        std::string upstream; // empty when answer is set
        std::string comment;
        bool exact = false;
        std::vector<std::string> listen; // listener names; empty = every listener
        std::optional<answer> fixed;
    };

    std::string source;                // the nginx file, named in the header comment
    std::vector<setting> proxy;
    std::vector<listener> listeners;
    std::vector<upstream> upstreams;
    std::vector<route> routes;
    std::vector<std::string> gaps;     // report lines of what was not translated

    /// Sets [proxy] key (replacing an earlier value of it).
    void set(const std::string& key, std::string value, std::string comment);
    const setting* find(const std::string& key) const;
    upstream* find_upstream(const std::string& name);
    listener& listener_for(const std::string& address);
    /// The name of the listener on address, given one (derived from the address) if it had none.
    std::string name_listener(const std::string& address);

    /// The TOML text.
    std::string text() const;
};

} // namespace turnout::nginx
