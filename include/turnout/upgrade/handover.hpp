#pragma once
// The hand-over protocol between a running turnout (the predecessor) and the new process it
// started for a zero-downtime upgrade (the successor), over an AF_UNIX stream socketpair.
//
// Every message is one frame: u32 length (little-endian, of what follows), u8 type, payload.
// Listening sockets travel as SCM_RIGHTS ancillary data of their `listener` frame; the
// session table travels in session_store's format, hash seed included, so hashes, rendezvous
// choices and tokens agree in both processes.
//
//   successor                      predecessor
//   hello{version, pid}       ──►
//                             ◄──  listener{kind, address, endpoint} + fd   (one per acceptor)
//                             ◄──  listeners_done{count}
//                             ◄──  rate_limits{table}   (version 4)
//                             ◄──  sessions{table}
//   learned / forgot          ──►  (version 3: from the moment the successor serves, even
//                                   before its ready, until the predecessor exits)
//   ready{pid}                ──►                         (successor serves; predecessor drains)
//                             ◄──  learned{key, owner} / forgot{key}   (until the predecessor exits)
//                             ◄──  touched{keys}   (version 2: once a second, see below)
//
// Both processes serve for a while (the predecessor's keep-alive connections each take one
// more request), so from version 3 each tells the other every session it learns or forgets;
// a change applied from the other process is never sent back to it.
//
// Versions: the predecessor names the highest version it speaks, and its pid, in the
// successor's environment (version_variable = "<version>:<pid>"); the successor answers hello
// with the lower of that and its own, or with 1 when the variable is absent or names another
// pid than its parent's (a predecessor of version 1 names none, and passes on whatever it
// inherited itself), and the predecessor sends only what that version knows. So an upgrade
// works in both directions between neighbouring versions.
//
// This header is pure encoding: no I/O, so every torn or hostile byte sequence can be tested.

#include "turnout/session/session_table.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <variant>
#include <vector>

namespace turnout::upgrade {

/// The highest version this build speaks; bumped whenever a message is added or changed.
///   1: hello .. forgot.   2: touched.   3: learned / forgot from the successor too.
///   4: rate_limits.
constexpr std::uint32_t protocol_version = 4;
/// The lowest version this build still speaks (with either role).
constexpr std::uint32_t min_protocol_version = 1;

/// The environment variable in which a predecessor names its protocol_version.
constexpr const char* version_variable = "TURNOUT_UPGRADE_VERSION";

/// The version a successor whose parent is parent says hello with, given version_variable's
/// value (or nullptr): min(announced, protocol_version) when the value is "<version>:<parent>";
/// 1 when absent, malformed or naming another process; 0 (refused by any predecessor) when
/// below min_protocol_version.
std::uint32_t successor_version(const char* announced, pid_t parent) noexcept;

/// version_variable's value for a predecessor with pid self.
std::string announced_version(pid_t self);

/// Whether a predecessor of this build can serve a successor that said hello with version.
constexpr bool speaks(std::uint32_t version) noexcept
{
    return version >= min_protocol_version && version <= protocol_version;
}

/// Frames above this are refused as damaged (a session table of ~40 M entries still fits).
constexpr std::uint32_t max_frame_bytes = 1u << 30;

enum class message_type : std::uint8_t {
    hello = 1,
    listener = 2,
    listeners_done = 3,
    sessions = 4,
    ready = 5,
    learned = 6,
    forgot = 7,
    touched = 8,
    rate_limits = 9,
};

enum class listener_kind : std::uint8_t { proxy = 0, status = 1 };

struct hello {
    std::uint32_t version = protocol_version;
    std::int32_t pid = 0;
};

/// One listening socket; its fd is attached to the frame. address is the configuration's
/// text (how the successor matches it to its own [[listen]]), endpoint the bound ip:port.
struct listener {
    listener_kind kind = listener_kind::proxy;
    std::string address;
    std::string endpoint;
};

struct listeners_done {
    std::uint32_t count = 0;
};

/// The session table in session_store's encoding.
struct sessions {
    std::string table;
};

struct ready {
    std::int32_t pid = 0;
};

/// A session the predecessor pinned (or re-pinned) after the snapshot; owner is the backend's
/// address (backend ids are per process).
struct learned {
    session::session_key key;
    std::string owner;
};

/// A session the predecessor forgot (DELETE, backend 404) after the snapshot.
struct forgot {
    session::session_key key;
};

/// Sessions still in use at the predecessor (version 2): each has an open stream there, or a
/// request since the last batch. The successor sets their last use to now, so they do not
/// expire while the predecessor alone sees them live; it never creates an entry from this.
struct touched {
    std::vector<session::session_key> keys;
};

/// The rate limiter's key seed and buckets (version 4) in edge/rate_table.hpp's encoding,
/// sent before the session table. Its bytes are the edge's to judge: a table the successor
/// cannot read costs the limits' state, never the upgrade.
struct rate_limits {
    std::string table;
};

/// Keys per touched message: 64 KiB of payload, so a batch never waits behind a huge frame.
constexpr std::size_t max_touched_keys = 4096;

using message = std::variant<hello, listener, listeners_done, sessions, ready, learned, forgot, touched, rate_limits>;

/// The frame of m, ready to write.
std::string encode(const message& m);

/// A human name for logs and errors ("hello", "ready", ...).
std::string_view name_of(const message& m);

/// Splits a byte stream into messages. Bytes may arrive in any pieces; a frame that is too
/// large, of an unknown type, or whose payload does not match its type is an error, after
/// which the decoder stays failed (the stream cannot be resynchronised).
class decoder {
public:
    enum class status { message, need_more, error };

    void feed(std::string_view bytes) { buffer_.append(bytes); }

    /// The next whole message into out; need_more when the buffer holds only part of one.
    status next(message& out);

    /// Why next() answered error.
    const std::string& error() const noexcept { return error_; }
    /// Bytes received and not yet decoded (a torn frame at end of stream shows here).
    std::size_t pending() const noexcept { return buffer_.size() - pos_; }

private:
    std::string buffer_;
    std::size_t pos_ = 0;
    std::string error_;
};

} // namespace turnout::upgrade
