#pragma once
// etcd's v3 JSON gateway, as bytes: the bodies turnout sends to /v3/kv/range, /v3/kv/txn and
// /v3/watch, and what it reads back. Keys and values travel base64-encoded; 64-bit integers
// arrive as JSON strings (and fields holding their default — 0, false, PUT — are left out).
// Pure functions, no sockets: control/etcd_client does the talking.

#include <boost/json/value.hpp>
#include <boost/json/stream_parser.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::control::etcd {

/// etcd answered, but not with what the request asks for (an error object, a malformed body).
class protocol_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string base64_encode(std::string_view bytes);
/// nullopt for text that is not standard base64 (with padding, as the gateway writes it).
std::optional<std::string> base64_decode(std::string_view text);

/// The first key after every key that starts with prefix (etcd's range_end for a prefix):
/// the last byte below 0xff incremented, what follows it dropped; "\0" when there is none
/// (all keys from prefix on).
std::string prefix_end(std::string_view prefix);

struct key_value {
    std::string key;
    std::string value;
    std::int64_t mod_revision = 0; // 0: the key does not exist
    std::int64_t lease = 0;        // the lease the key is attached to (0: none)
};

/// POST /v3/kv/range for one key.
std::string range_request(std::string_view key);
struct range_result {
    std::int64_t revision = 0; // the store's revision when it answered
    std::optional<key_value> kv;
};
range_result parse_range(std::string_view body);

/// POST /v3/kv/txn: put value at key if the key's mod_revision is still expected (0: the key
/// must not exist), else read the key as it is.
std::string compare_and_put_request(std::string_view key, std::string_view value, std::int64_t expected);
struct txn_result {
    bool succeeded = false;
    std::int64_t revision = 0;      // succeeded: the revision of the put
    std::optional<key_value> current; // failed: the key as it is (nullopt: absent)
};
txn_result parse_txn(std::string_view body);

/// POST /v3/watch: every change of the keys under prefix from start_revision on.
std::string watch_request(std::string_view prefix, std::int64_t start_revision);
/// POST /v3/watch: every change of the keys in [key, range_end) from start_revision on.
std::string watch_range_request(std::string_view key, std::string_view range_end, std::int64_t start_revision);

/// POST /v3/kv/range for every key under prefix.
std::string range_prefix_request(std::string_view prefix);
/// Every kv of a range answer, in key order.
std::vector<key_value> parse_range_all(std::string_view body);

/// POST /v3/kv/put: value at key, attached to lease (0: none).
std::string put_request(std::string_view key, std::string_view value, std::int64_t lease);
/// POST /v3/kv/txn: put value at key with lease only if the key does not exist, else read the
/// key as it is (parse_txn reads the answer): an election.
std::string create_with_lease_request(std::string_view key, std::string_view value, std::int64_t lease);

/// POST /v3/lease/grant.
std::string lease_grant_request(std::int64_t ttl_s);
struct lease_grant {
    std::int64_t id = 0;
    std::int64_t ttl_s = 0; // as etcd granted it (it may raise a TTL below its minimum)
};
lease_grant parse_lease_grant(std::string_view body);
/// POST /v3/lease/keepalive (one message of the stream) and POST /v3/lease/revoke.
std::string lease_id_request(std::int64_t id);
/// The TTL the lease has again after a keep-alive; 0 when it had expired (it is gone).
std::int64_t parse_keepalive_ttl(std::string_view body);

/// POST /v3/auth/authenticate with etcd's user and password.
std::string authenticate_request(std::string_view user, std::string_view password);
/// The token to send as the Authorization header.
std::string parse_token(std::string_view body);

struct watch_event {
    bool deleted = false;
    key_value kv; // for a delete: the key, and mod_revision the revision of the delete
};
struct watch_message {
    std::int64_t revision = 0;
    bool created = false;
    bool canceled = false;
    std::int64_t compact_revision = 0; // > 0: the start revision was compacted away
    std::string cancel_reason;
    std::vector<watch_event> events;
};
watch_message parse_watch_message(const boost::json::value& v);

/// The watch answer is one long body of JSON objects, one after the other, cut anywhere by
/// the network. feed() returns the objects completed by these bytes; throws protocol_error
/// for bytes that are not JSON.
class json_sequence {
public:
    std::vector<boost::json::value> feed(std::string_view bytes);

private:
    boost::json::stream_parser parser_;
    bool started_ = false; // the parser holds part of a value
};

} // namespace turnout::control::etcd
