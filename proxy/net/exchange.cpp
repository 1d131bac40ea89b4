#include "turnout/net/exchange.hpp"

namespace turnout::net {

void exchange::begin_accounting() noexcept
{
    if (accounted)
        return;
    accounted = true;
    auto& c = dest.backend->counters();
    c.in_flight.fetch_add(1, std::memory_order_relaxed);
    c.requests_total.fetch_add(1, std::memory_order_relaxed);
}

void exchange::end_accounting(bool failed_exchange) noexcept
{
    if (!accounted)
        return;
    accounted = false;
    auto& c = dest.backend->counters();
    if (stream)
        c.streams.fetch_sub(1, std::memory_order_relaxed); // in_flight was released when it became one
    else
        c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (failed_exchange)
        c.errors_total.fetch_add(1, std::memory_order_relaxed);
}

void exchange::move_accounting_from(upstream::backend& previous) noexcept
{
    if (!accounted || &previous == dest.backend.get())
        return;
    previous.counters().in_flight.fetch_sub(1, std::memory_order_relaxed);
    auto& c = dest.backend->counters();
    c.in_flight.fetch_add(1, std::memory_order_relaxed);
    c.requests_total.fetch_add(1, std::memory_order_relaxed);
}

void exchange::become_stream() noexcept
{
    // From here on it is an open stream, not a request in flight (SPEC's status counts them
    // apart, and power-of-two-choices should weigh work, not idle streams).
    stream = true;
    auto& c = dest.backend->counters();
    c.streams.fetch_add(1, std::memory_order_relaxed);
    c.in_flight.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

upstream::tool_outcome tool_outcome_of(unsigned status, mcp::rpc_outcome rpc) noexcept
{
    if (rpc == mcp::rpc_outcome::error || status >= 400)
        return upstream::tool_outcome::error;
    return rpc == mcp::rpc_outcome::tool_error ? upstream::tool_outcome::tool_error : upstream::tool_outcome::ok;
}

} // namespace

void exchange::note_failed_request() noexcept
{
    if (failure_noted == dest.backend.get())
        return;
    failure_noted = dest.backend.get();
    dest.backend->counters().failed_requests_total.fetch_add(1, std::memory_order_relaxed);
}

void exchange::record_head_latency(clock::time_point now) noexcept
{
    latency_recorded = true;
    dest.backend->counters().head_latency.record(
        std::chrono::duration_cast<std::chrono::microseconds>(now - upstream_started));
}

void exchange::record_outcome(clock::time_point now) noexcept
{
    if (outcome_recorded)
        return;
    outcome_recorded = true;
    if (!reached_backend() || status < 100 || status > 599 || status == 499)
        return;
    auto& c = dest.backend->counters();
    const auto rpc_outcome = rpc.outcome();
    if (rpc_outcome == mcp::rpc_outcome::error)
        c.jsonrpc_errors_total.fetch_add(1, std::memory_order_relaxed);
    else if (rpc_outcome == mcp::rpc_outcome::tool_error)
        c.tool_errors_total.fetch_add(1, std::memory_order_relaxed);
    if (status >= 500 || rpc_outcome >= mcp::rpc_outcome::tool_error)
        note_failed_request();
    if (rpc.is_tool_call())
        dest.backend->tool_calls().add(rpc.request().name, tool_outcome_of(status, rpc_outcome));
    c.responses_by_class[status / 100 - 1].fetch_add(1, std::memory_order_relaxed);
    const auto elapsed = std::chrono::duration<double>(now - started).count();
    std::size_t bucket = 0;
    while (elapsed > upstream::latency_bounds[bucket])
        ++bucket;
    c.latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    c.latency_sum_us.fetch_add(static_cast<std::uint64_t>(elapsed * 1e6), std::memory_order_relaxed);
}

void exchange::note_backend_failure(clock::time_point now) noexcept
{
    dest.backend->counters().errors_total.fetch_add(1, std::memory_order_relaxed);
    dest.backend->record_failure(upstream::monotonic_ms(now));
    note_failed_request();
}

void exchange::note_connect_failure(clock::time_point now) noexcept
{
    dest.backend->counters().connect_failures_total.fetch_add(1, std::memory_order_relaxed);
    note_backend_failure(now);
}

} // namespace turnout::net
