#pragma once
// The nginx translation's upstream side: upstream blocks (servers, down, backup, weights,
// max_fails/fail_timeout, hash, ip_hash, least_conn, keepalive), split_clients over upstreams
// and map on the host, reported; and the turnout upstreams proxy_pass needs, made once.

#include "turnout/nginx/translation_state.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace turnout::nginx {

class upstream_translation {
public:
    /// common: reports a directive valid anywhere (include, ...); false when d is not one.
    upstream_translation(translation_state& st, std::function<bool(const directive&)> common)
        : st_(st), common_(std::move(common))
    {
    }

    void upstream_block(const directive& d);
    void split_block(const directive& d);
    void map_block(const directive& d);

    /// The turnout upstream for an nginx upstream, or a host:port, behind proxy_pass.
    std::string ensure_upstream(const std::string& name, bool tls);
    /// The turnout upstream for a split_clients variable: a pool per upstream it names.
    std::string ensure_split(const std::string& var, bool tls);
    /// After the walk: upstreams nothing named are kept (nothing is lost), and weighted pools
    /// come first.
    void finish();

private:
    /// in_split: the upstream is a share of a split_clients (its pools join one upstream).
    void upstream_member(const directive& s, const upstream_def& def, bool uneven_weights, bool in_split);
    void add_pools(toml_model::upstream& u, const upstream_def& def, const std::string& pool, std::uint32_t weight);

    translation_state& st_;
    std::function<bool(const directive&)> common_;
};

} // namespace turnout::nginx
