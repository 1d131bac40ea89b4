// Microbenchmark of the session table: bytes per session at 1 million sessions, and lookups
// per second with 1 and 2 threads, of precomputed keys (the table alone) and of 36-byte ids
// (key_of's XXH3 included, as the request path does it). Prints a markdown table.
//
// Two clocks: "every lookup writes" advances the clock at each pass over the working set, so
// that no session is seen twice in one second and every lookup writes its last use (the worst
// case); "real seconds" passes the wall clock's seconds, as the proxy does, so that a session
// found many times a second is written once a second.
//
// Usage: session_table_bench [quick]   quick: precomputed keys only (the table alone)

#include "turnout/session/session_table.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <time.h>
#include <vector>

using turnout::session::backend_id;
using turnout::session::session_key;
using turnout::session::session_table;

namespace {

constexpr std::size_t sessions = 1'000'000;
constexpr std::size_t id_length = 36;
constexpr std::size_t hot_sessions = 10'000;
constexpr std::size_t lookups_per_thread = 10'000'000;

/// 36-character UUID-like ids ("8-4-4-4-12" hex), back to back in one buffer.
std::string make_ids(std::mt19937_64& rng)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string ids;
    ids.reserve(sessions * id_length);
    for (std::size_t n = 0; n < sessions; ++n) {
        auto bits = rng();
        for (std::size_t i = 0; i < id_length; ++i) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                ids.push_back('-');
                continue;
            }
            if (i == 16)
                bits = rng();
            ids.push_back(hex[bits & 15]);
            bits >>= 4;
        }
    }
    return ids;
}

std::string_view id_at(const std::string& ids, std::size_t n)
{
    return std::string_view(ids).substr(n * id_length, id_length);
}

double thread_cpu_seconds()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct run_time {
    double wall = 0; // seconds
    double cpu = 0;  // seconds, summed over the threads
};

/// Runs body(thread index) on `threads` threads. CPU time is kept besides wall time because
/// on a shared machine a descheduled thread stretches the wall clock, not the per-core rate.
template <class Body> run_time timed(unsigned threads, Body body)
{
    std::vector<double> cpu(threads);
    const auto run = [&](unsigned t) {
        const auto c0 = thread_cpu_seconds();
        body(t);
        cpu[t] = thread_cpu_seconds() - c0;
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
        pool.emplace_back(run, t);
    run(0);
    for (auto& th : pool)
        th.join();
    run_time r;
    r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto c : cpu)
        r.cpu += c;
    return r;
}

struct rate {
    double total = 0;    // lookups per wall-clock second, all threads
    double per_core = 0; // lookups per CPU second
};

enum class clock_mode { every_lookup_writes, real_seconds };

std::uint32_t wall_seconds()
{
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

/// Lookups per second of `threads` threads each doing lookups_per_thread finds of the first
/// `working_set` sessions; every find must hit, or the figure would measure something else.
/// The clock as `mode` says (see the top of the file).
template <class Find>
rate lookups_per_second(unsigned threads, std::size_t working_set, clock_mode mode, Find find)
{
    std::vector<std::size_t> hits(threads);
    const auto time = timed(threads, [&](unsigned t) {
        // Keys in insertion order: their slots are scattered by the hash anyway, and reading
        // the key array sequentially keeps its own cache misses out of the figure.
        std::size_t h = 0;
        std::uint32_t now = mode == clock_mode::real_seconds ? wall_seconds() : 2;
        for (std::size_t i = 0, n = t * (working_set / threads); i < lookups_per_thread; ++i) {
            h += find(n, now).has_value();
            if (++n == working_set) {
                n = 0;
                ++now;
            }
            // What the proxy's clock costs: one read per 4096 lookups, not per lookup.
            if (mode == clock_mode::real_seconds && i % 4096 == 0)
                now = wall_seconds();
        }
        hits[t] = h;
    });
    for (const auto h : hits) {
        if (h != lookups_per_thread) {
            std::fprintf(stderr, "lost sessions: %zu of %zu found\n", h, lookups_per_thread);
            std::exit(1);
        }
    }
    const auto n = static_cast<double>(threads * lookups_per_thread);
    return {n / time.wall, n / time.cpu};
}

void print_rate(const char* what, const rate& r)
{
    std::printf("| %s | %.1f M | %.1f M |\n", what, r.total / 1e6, r.per_core / 1e6);
}

} // namespace

int main(int argc, char** argv)
{
    const bool quick = argc > 1 && std::string_view(argv[1]) == "quick";
    std::mt19937_64 rng(42);
    const auto ids = make_ids(rng);
    session_table table(rng());

    std::vector<session_key> keys(sessions);
    const auto fill = timed(1, [&](unsigned) {
        for (std::size_t n = 0; n < sessions; ++n) {
            keys[n] = table.key_of(id_at(ids, n));
            table.insert(keys[n], static_cast<backend_id>(n % 3), 1);
        }
    });
    if (table.size() != sessions) {
        std::fprintf(stderr, "expected %zu sessions, have %zu\n", sessions, table.size());
        return 1;
    }

    const auto by_key = [&](std::size_t n, std::uint32_t now) { return table.find(keys[n], now); };
    const auto by_id = [&](std::size_t n, std::uint32_t now) {
        return table.find(table.key_of(id_at(ids, n)), now);
    };
    const auto bytes = static_cast<double>(table.memory_bytes()) / static_cast<double>(table.size());

    std::printf("session table: %zu sessions, %zu-byte ids, default shards, %u hardware threads\n\n",
                sessions, id_length, std::thread::hardware_concurrency());
    std::printf("| measure | total | per core (CPU time) |\n|---|---|---|\n");
    std::printf("| bytes/session (memory_bytes/size) | %.1f | |\n", bytes);
    print_rate("inserts/s (key_of + insert, growth included)",
               {static_cast<double>(sessions) / fill.wall, static_cast<double>(sessions) / fill.cpu});
    // All sessions, uniformly: nearly every lookup misses the CPU caches (the table is ~50 MB),
    // so this is memory latency. The hot set is the usual case: few sessions busy at a time.
    for (const auto mode : {clock_mode::every_lookup_writes, clock_mode::real_seconds}) {
        for (const auto working_set : {sessions, hot_sessions}) {
            for (const unsigned threads : {1u, 2u}) {
                const auto what = [&](const char* how) {
                    return std::string("lookups/s, ") + how + ", " + std::to_string(working_set / 1000) +
                           "k sessions, " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") +
                           (mode == clock_mode::real_seconds ? ", real seconds" : ", every lookup writes");
                };
                print_rate(what("precomputed keys").c_str(), lookups_per_second(threads, working_set, mode, by_key));
                if (!quick)
                    print_rate(what("key_of(36-byte id) + find").c_str(),
                               lookups_per_second(threads, working_set, mode, by_id));
            }
        }
    }
    return 0;
}
