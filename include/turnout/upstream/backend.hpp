#pragma once
// One backend process: its address and its live counters. Backends are shared between
// snapshots (a reload keeps the same object for the same address), so counters are exact
// across reloads. Counters are relaxed atomics: workers update them without locks, status
// reads them.

#include "turnout/upstream/latency_histogram.hpp"
#include "turnout/upstream/tool_tally.hpp"
#include "turnout/upstream/tool_signature.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <cstdint>
#include <string>
#include <vector>

namespace turnout::upstream {

/// The last word of the active health checks on a backend (status shows it).
struct health_report {
    bool probed = false;               // at least one probe finished
    bool last_ok = false;
    std::string last_error;            // of the last failed probe
    std::int64_t last_probe_unix_ms = 0;
    double last_latency_ms = 0;
    std::optional<std::uint64_t> tools_hash; // mcp probes: of the whole tool set
    std::vector<tool_signature> tools;       // mcp probes: sorted by name, one per name
    unsigned passes_in_row = 0;
    unsigned fails_in_row = 0;
};

struct backend_counters {
    std::atomic<std::int64_t> in_flight{0};   // requests sent, response not finished
    std::atomic<std::int64_t> connections{0}; // open TCP connections to the backend
    std::atomic<std::int64_t> streams{0};     // open text/event-stream responses
    std::atomic<std::int64_t> sessions{0};    // sessions pinned to the backend
    std::atomic<std::uint64_t> requests_total{0};
    std::atomic<std::uint64_t> errors_total{0}; // connect failures, resets, garbage, timeouts
    std::atomic<std::uint64_t> responses_by_class[5]{}; // 1xx..5xx answers forwarded
    std::atomic<std::uint64_t> jsonrpc_errors_total{0}; // answers (JSON or event stream) carrying "error"
    std::atomic<std::uint64_t> tool_errors_total{0};    // tools/call results with "isError": true
    std::atomic<std::uint64_t> connect_failures_total{0}; // connects refused or timed out
    /// Requests that went wrong in any way a rollout counts: a 5xx, no answer (connect,
    /// reset, timeout), a JSON-RPC error or a tool error; at most once per request.
    std::atomic<std::uint64_t> failed_requests_total{0};
    /// Time from sending the request to the answer's head, answers that are not streams.
    latency_histogram head_latency;
    /// Exchange duration histogram (seconds), cumulative on read: bounds in latency_bounds.
    std::atomic<std::uint64_t> latency_buckets[12]{};
    std::atomic<std::uint64_t> latency_sum_us{0};
};

/// Upper bounds (seconds) of the latency histogram's buckets; the last one is +Inf.
inline constexpr double latency_bounds[12] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,   0.25,   0.5,   1,    2.5,   1e300};

/// Passive health defaults (config::passive_health_config holds the configured values).
inline constexpr unsigned passive_failure_threshold = 5;
inline constexpr std::chrono::milliseconds passive_base_backoff{2000};
inline constexpr std::chrono::milliseconds passive_max_backoff{60000};

/// A steady-clock reading as the milliseconds passive health works in.
inline std::int64_t monotonic_ms(std::chrono::steady_clock::time_point t) noexcept
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class backend {
public:
    backend(std::string address, boost::asio::ip::tcp::endpoint endpoint, std::uint16_t id = 0)
        : address_(std::move(address)), endpoint_(endpoint), id_(id)
    {}
    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;

    /// As written in the configuration ("127.0.0.1:3001").
    const std::string& address() const noexcept { return address_; }
    const boost::asio::ip::tcp::endpoint& endpoint() const noexcept { return endpoint_; }
    /// Its id in the backend registry (what session table entries store).
    std::uint16_t id() const noexcept { return id_; }

    /// Whether the current configuration still lists it. Sessions of a backend that left
    /// answer 404: its process, and so their state, is no longer ours to reach.
    bool in_service() const noexcept { return in_service_.load(std::memory_order_relaxed); }
    void set_in_service(bool s) noexcept { in_service_.store(s, std::memory_order_relaxed); }

    /// Seconds a session of this backend may stay unused (no open stream) before it is
    /// forgotten; from its upstream's session_idle_timeout. 0 = never.
    std::uint32_t session_idle_timeout_s() const noexcept
    {
        return session_idle_timeout_s_.load(std::memory_order_relaxed);
    }
    void set_session_idle_timeout_s(std::uint32_t s) noexcept
    {
        session_idle_timeout_s_.store(s, std::memory_order_relaxed);
    }

    bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }
    void set_healthy(bool h) noexcept { healthy_.store(h, std::memory_order_relaxed); }

    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
    void set_draining(bool d) noexcept { draining_.store(d, std::memory_order_relaxed); }

    /// Every pool listing it has drained past its deadline: nothing new goes there, and no
    /// keep-alive connection to it is kept.
    bool retired() const noexcept { return retired_.load(std::memory_order_relaxed); }
    void set_retired(bool r) noexcept { retired_.store(r, std::memory_order_relaxed); }

    /// Worth keeping idle connections to.
    bool wanted() const noexcept { return in_service() && !retired(); }

    /// May take new sessions at now (monotonic_ms).
    bool available(std::int64_t now) const noexcept { return healthy() && !draining() && !retired() && !ejected(now); }

    /// Passive health settings (control thread, from the upstream's configuration):
    /// `failures` in a row eject the backend (0 = off) for `backoff`, doubled at each ejection
    /// that follows without a good answer in between, at most `backoff_max`.
    void set_passive(unsigned failures, std::chrono::milliseconds backoff, std::chrono::milliseconds backoff_max) noexcept
    {
        passive_failures_.store(failures, std::memory_order_relaxed);
        passive_backoff_ms_.store(backoff.count(), std::memory_order_relaxed);
        passive_backoff_max_ms_.store(backoff_max.count(), std::memory_order_relaxed);
        if (failures == 0) {
            // Turned off: nothing may stay ejected by a rule that no longer exists.
            ejected_until_ms_.store(0, std::memory_order_relaxed);
            ejections_.store(0, std::memory_order_relaxed);
            failures_in_row_.store(0, std::memory_order_relaxed);
        }
    }
    unsigned passive_failures() const noexcept { return passive_failures_.load(std::memory_order_relaxed); }

    // Passive health (workers, lock-free). Every decision that depends on time takes `now`
    // (monotonic_ms) from its caller, who has usually read the clock for the step already,
    // and so that tests can drive a synthetic clock without the real one leaking in.
    void record_success(std::int64_t now) noexcept
    {
        // Loads first: every worker answers through here, and there is rarely anything to
        // reset, so the shared cache line stays unwritten.
        if (failures_in_row_.load(std::memory_order_relaxed) != 0)
            failures_in_row_.store(0, std::memory_order_relaxed);
        if (ejections_.load(std::memory_order_relaxed) != 0 && !ejected(now))
            ejections_.store(0, std::memory_order_relaxed);
    }
    void record_failure(std::int64_t now) noexcept
    {
        const auto threshold = passive_failures_.load(std::memory_order_relaxed);
        if (threshold == 0)
            return;
        const auto until = ejected_until_ms_.load(std::memory_order_relaxed);
        if (until != 0 && now < until)
            return; // already out: late answers of requests sent before do not lengthen it
        // Back from an ejection with no good answer since: one more failure sends it out
        // again, for longer, instead of letting it fail `threshold` more clients first.
        const bool on_probation = ejections_.load(std::memory_order_relaxed) != 0;
        if (!on_probation && failures_in_row_.fetch_add(1, std::memory_order_relaxed) + 1 < threshold)
            return;
        failures_in_row_.store(0, std::memory_order_relaxed);
        const auto doublings = ejections_.fetch_add(1, std::memory_order_relaxed);
        const auto max = passive_backoff_max_ms_.load(std::memory_order_relaxed);
        auto backoff = passive_backoff_ms_.load(std::memory_order_relaxed);
        for (unsigned i = 0; i < doublings && backoff < max; ++i)
            backoff *= 2;
        backoff = std::min(backoff, max);
        ejected_until_ms_.store(now + backoff, std::memory_order_relaxed);
    }
    bool ejected(std::int64_t now) const noexcept
    {
        const auto until = ejected_until_ms_.load(std::memory_order_relaxed);
        return until != 0 && now < until;
    }
    /// Ejections in a row (without a good answer in between); 0 = not on probation.
    unsigned ejections() const noexcept { return ejections_.load(std::memory_order_relaxed); }
    std::int64_t ejected_until_ms() const noexcept { return ejected_until_ms_.load(std::memory_order_relaxed); }

    /// Active checks: the last probe's report (control thread writes, anyone reads).
    health_report report() const
    {
        std::lock_guard lock(report_mutex_);
        return report_;
    }
    void set_report(health_report r)
    {
        std::lock_guard lock(report_mutex_);
        report_ = std::move(r);
    }

    backend_counters& counters() noexcept { return counters_; }
    const backend_counters& counters() const noexcept { return counters_; }
    tool_tally& tool_calls() noexcept { return tool_calls_; }
    const tool_tally& tool_calls() const noexcept { return tool_calls_; }

private:
    std::string address_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::uint16_t id_;
    std::atomic<bool> in_service_{true};
    std::atomic<bool> retired_{false};
    std::atomic<unsigned> failures_in_row_{0};
    std::atomic<unsigned> ejections_{0};
    std::atomic<std::int64_t> ejected_until_ms_{0};
    std::atomic<unsigned> passive_failures_{passive_failure_threshold};
    std::atomic<std::int64_t> passive_backoff_ms_{passive_base_backoff.count()};
    std::atomic<std::int64_t> passive_backoff_max_ms_{passive_max_backoff.count()};
    std::atomic<std::uint32_t> session_idle_timeout_s_{1800};
    std::atomic<bool> healthy_{true};
    std::atomic<bool> draining_{false};
    backend_counters counters_;
    tool_tally tool_calls_;
    mutable std::mutex report_mutex_;
    health_report report_;
};

} // namespace turnout::upstream
