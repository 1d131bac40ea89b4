#include "turnout/session/session_table.hpp"

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

using turnout::session::backend_id;
using turnout::session::session_entry;
using turnout::session::session_key;
using turnout::session::session_table;

namespace {

constexpr std::uint64_t seed = 0x5eed'1234'abcd'0042;

// Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict, bug 105329) on "literal" + string.
std::string id_of(int i, std::string prefix = "session-")
{
    prefix += std::to_string(i);
    return prefix;
}

std::string thread_id_of(backend_id t, int i)
{
    return id_of(i, std::string(1, 't').append(std::to_string(t)).append(1, '-'));
}

/// The sessions each owner holds, as the table itself says.
std::map<backend_id, int> owners_in(const session_table& table)
{
    std::map<backend_id, int> owners;
    table.for_each([&](const session_entry& e) { ++owners[e.owner]; });
    return owners;
}

/// A count_hook that keeps the per-owner sums, as the per-backend counters would.
struct counter {
    std::map<backend_id, int> sums;
    session_table::count_hook hook()
    {
        return [this](backend_id owner, int delta) {
            CHECK((delta == 1 || delta == -1));
            sums[owner] += delta;
            if (sums[owner] == 0)
                sums.erase(owner);
        };
    }
};

// Keys that all hash to home slot `home` of a 16-slot shard: they form one probe run.
session_key colliding_key(std::uint64_t home, std::uint64_t n)
{
    return session_key{home + 16 * n, 0};
}

} // namespace

TEST_CASE("session table: insert, find, erase")
{
    session_table table(seed);
    const auto key = table.key_of("abc");
    CHECK_FALSE(table.find(key, 1).has_value());
    CHECK(table.size() == 0);

    table.insert(key, 3, 10);
    REQUIRE(table.find(key, 11).has_value());
    CHECK(*table.find(key, 11) == 3);
    CHECK(table.size() == 1);
    CHECK_FALSE(table.find(table.key_of("abd"), 11).has_value());

    CHECK(table.erase(key));
    CHECK_FALSE(table.erase(key));
    CHECK_FALSE(table.find(key, 12).has_value());
    CHECK(table.size() == 0);
}

TEST_CASE("session table: find touches last use")
{
    session_table table(seed);
    const auto key = table.key_of("abc");
    table.insert(key, 1, 10);
    CHECK(table.find(key, 42));
    std::uint32_t last_use = 0;
    table.for_each([&](const session_entry& e) { last_use = e.last_use; });
    CHECK(last_use == 42);
}

TEST_CASE("session table: re-pin moves a session to another owner")
{
    counter c;
    session_table table(seed, c.hook());
    const auto key = table.key_of("abc");
    table.insert(key, 1, 10);
    table.insert(key, 1, 11); // same owner: no count change
    CHECK(c.sums == std::map<backend_id, int>{{1, 1}});
    table.insert(key, 2, 12);
    CHECK(*table.find(key, 13) == 2);
    CHECK(table.size() == 1);
    CHECK(c.sums == std::map<backend_id, int>{{2, 1}});
}

TEST_CASE("session table: re-pin keeps open streams")
{
    session_table table(seed);
    const auto key = table.key_of("abc");
    table.insert(key, 1, 10);
    CHECK(table.open_stream(key, 10));
    table.insert(key, 2, 10);
    CHECK(table.expire(1000, [](backend_id) { return 5u; }) == 0);
}

TEST_CASE("session table: key_of is deterministic per seed and differs across seeds")
{
    session_table a(seed), b(seed), c(seed + 1);
    CHECK(a.seed() == seed);
    CHECK(a.key_of("0190f5c2-7a3e-7c4d-9b8a-1f2e3d4c5b6a") ==
          b.key_of("0190f5c2-7a3e-7c4d-9b8a-1f2e3d4c5b6a"));
    CHECK_FALSE(a.key_of("0190f5c2-7a3e-7c4d-9b8a-1f2e3d4c5b6a") ==
                c.key_of("0190f5c2-7a3e-7c4d-9b8a-1f2e3d4c5b6a"));
    CHECK_FALSE(a.key_of("x") == a.key_of("y"));
    CHECK_FALSE(a.key_of("") == session_key{});
}

TEST_CASE("session table: the all-zero key is usable")
{
    // {0,0} marks empty slots; the table must still treat it as an ordinary key.
    session_table table(seed, {}, 1);
    table.insert(session_key{}, 7, 1);
    CHECK(table.size() == 1);
    REQUIRE(table.find(session_key{}, 2).has_value());
    CHECK(*table.find(session_key{}, 2) == 7);
    CHECK(table.erase(session_key{}));
    CHECK(table.size() == 0);
}

TEST_CASE("session table: 100k sessions force growth and are all found")
{
    constexpr int n = 100'000;
    for (unsigned shards : {1u, 64u}) {
        CAPTURE(shards);
        session_table table(seed, {}, shards);
        const auto empty_bytes = table.memory_bytes();
        for (int i = 0; i < n; ++i)
            table.insert(table.key_of(id_of(i)), static_cast<backend_id>(i % 7), 1);
        CHECK(table.size() == n);
        CHECK(table.memory_bytes() > empty_bytes);
        CHECK(table.memory_bytes() / table.size() <= 64);
        int found = 0;
        for (int i = 0; i < n; ++i) {
            const auto owner = table.find(table.key_of(id_of(i)), 2);
            found += owner && *owner == i % 7;
        }
        CHECK(found == n);
        int strangers = 0;
        for (int i = n; i < n + 10'000; ++i)
            strangers += table.find(table.key_of(id_of(i)), 2).has_value();
        CHECK(strangers == 0);
    }
}

TEST_CASE("session table: erase shifts back and keeps the others findable")
{
    constexpr int n = 50'000;
    session_table table(seed, {}, 2);
    for (int i = 0; i < n; ++i)
        table.insert(table.key_of(id_of(i)), 1, 1);
    for (int i = 0; i < n; i += 2)
        CHECK(table.erase(table.key_of(id_of(i))));
    CHECK(table.size() == n / 2);
    int found = 0, gone = 0;
    for (int i = 0; i < n; ++i) {
        const bool there = table.find(table.key_of(id_of(i)), 2).has_value();
        (i % 2 ? found : gone) += (i % 2 ? there : !there);
    }
    CHECK(found == n / 2);
    CHECK(gone == n / 2);
}

TEST_CASE("session table: erase in one probe run, wrapping the end of the slots")
{
    // Six keys with the same home slot (15 of 16): the run wraps to slots 0..4.
    session_table table(seed, {}, 1);
    for (std::uint64_t k = 0; k < 6; ++k)
        table.insert(colliding_key(15, k), static_cast<backend_id>(k), 1);
    // Keys of home 0 and 1 are displaced by the run; they must survive its shifts too.
    table.insert(colliding_key(0, 9), 100, 1);
    table.insert(colliding_key(1, 9), 101, 1);

    CHECK(table.erase(colliding_key(15, 0)));
    CHECK(table.erase(colliding_key(15, 3)));
    CHECK_FALSE(table.erase(colliding_key(15, 3)));
    for (std::uint64_t k : {1, 2, 4, 5}) {
        CAPTURE(k);
        REQUIRE(table.find(colliding_key(15, k), 2).has_value());
        CHECK(*table.find(colliding_key(15, k), 2) == k);
    }
    CHECK(*table.find(colliding_key(0, 9), 2) == 100);
    CHECK(*table.find(colliding_key(1, 9), 2) == 101);
    CHECK_FALSE(table.find(colliding_key(15, 0), 2).has_value());
    CHECK(table.size() == 6);
}

TEST_CASE("session table: open streams keep a session from expiring")
{
    session_table table(seed);
    const auto key = table.key_of("streaming");
    const auto idle = table.key_of("idle");
    table.insert(key, 1, 100);
    table.insert(idle, 1, 100);
    CHECK(table.open_stream(key, 100));
    CHECK(table.open_stream(key, 100));
    CHECK_FALSE(table.open_stream(table.key_of("unknown"), 100));

    const auto timeout = [](backend_id) { return 10u; };
    CHECK(table.expire(200, timeout) == 1); // only the idle one
    CHECK_FALSE(table.find(idle, 200));
    CHECK(table.close_stream(key, 200));
    CHECK(table.expire(300, timeout) == 0); // one stream still open
    CHECK(table.close_stream(key, 300));
    CHECK(table.close_stream(key, 300));    // saturates at 0
    CHECK(table.expire(310, timeout) == 0); // closing touched it: 10 s is not more than 10 s
    CHECK(table.expire(311, timeout) == 1);
    CHECK(table.size() == 0);
    CHECK_FALSE(table.close_stream(key, 311));
}

TEST_CASE("session table: touch refreshes a known session's last use and never creates one")
{
    session_table table(seed);
    const auto key = table.key_of("used elsewhere");
    table.insert(key, 1, 100);
    const auto timeout = [](backend_id) { return 10u; };
    CHECK(table.touch(key, 105));
    CHECK(table.expire(115, timeout) == 0); // 10 s after the touch: not more than 10 s
    CHECK(table.expire(116, timeout) == 1);
    // Forgotten or never known: stays so.
    CHECK_FALSE(table.touch(key, 117));
    CHECK_FALSE(table.touch(table.key_of("unknown"), 117));
    CHECK(table.size() == 0);
}

TEST_CASE("session table: stream count saturates")
{
    session_table table(seed);
    const auto key = table.key_of("many");
    table.insert(key, 1, 1);
    for (int i = 0; i < 70'000; ++i)
        table.open_stream(key, 1);
    std::uint16_t streams = 0;
    table.for_each([&](const session_entry& e) { streams = e.streams; });
    CHECK(streams == 65535);
}

TEST_CASE("session table: expire by per-owner timeout, 0 = never")
{
    counter c;
    session_table table(seed, c.hook());
    for (int i = 0; i < 300; ++i)
        table.insert(table.key_of(id_of(i)), static_cast<backend_id>(i % 3), 1000);
    // owner 0: 60 s, owner 1: 600 s, owner 2: never.
    const auto timeout = [](backend_id owner) -> std::uint32_t {
        static constexpr std::array<std::uint32_t, 3> t{60, 600, 0};
        return t.at(owner);
    };
    CHECK(table.expire(1060, timeout) == 0);
    CHECK(table.expire(1061, timeout) == 100);
    CHECK(table.expire(1601, timeout) == 100);
    CHECK(table.expire(4'000'000'000u, timeout) == 0);
    CHECK(table.size() == 100);
    CHECK(owners_in(table) == std::map<backend_id, int>{{2, 100}});
    CHECK(c.sums == owners_in(table));
    // A last use after now (a clock that stepped back) is not idle.
    table.insert(table.key_of("future"), 0, 5000);
    CHECK(table.expire(100, timeout) == 0);
}

TEST_CASE("session table: erase_owner")
{
    counter c;
    session_table table(seed, c.hook());
    for (int i = 0; i < 1000; ++i)
        table.insert(table.key_of(id_of(i)), static_cast<backend_id>(i % 4), 1);
    CHECK(table.erase_owner(2) == 250);
    CHECK(table.erase_owner(2) == 0);
    CHECK(table.size() == 750);
    CHECK(owners_in(table) == std::map<backend_id, int>{{0, 250}, {1, 250}, {3, 250}});
    CHECK(c.sums == owners_in(table));
    for (int i = 0; i < 1000; ++i) {
        const auto owner = table.find(table.key_of(id_of(i)), 2);
        CHECK(owner.has_value() == (i % 4 != 2));
    }
}

TEST_CASE("session table: count_hook deltas are exact")
{
    counter c;
    session_table table(seed, c.hook(), 4);
    std::uint64_t x = 12345;
    const auto next = [&x] { // xorshift: a fixed pseudo-random walk of operations
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    for (int step = 0; step < 20'000; ++step) {
        const auto key = table.key_of(id_of(static_cast<int>(next() % 2000)));
        const auto owner = static_cast<backend_id>(next() % 5);
        switch (next() % 6) {
        case 0:
        case 1:
        case 2:
            table.insert(key, owner, 1);
            break;
        case 3:
            table.erase(key);
            break;
        case 4:
            table.open_stream(key, 1);
            break;
        default:
            if (next() % 50 == 0)
                table.erase_owner(owner);
        }
    }
    table.expire(100, [](backend_id owner) { return owner == 1 ? 10u : 0u; });
    table.restore(session_entry{table.key_of("restored"), 1, 4, 0});
    CHECK(c.sums == owners_in(table));
    int total = 0;
    for (const auto& [owner, n] : c.sums)
        total += n;
    CHECK(static_cast<std::size_t>(total) == table.size());
}

TEST_CASE("session table: for_each visits every session once")
{
    session_table table(seed, {}, 8);
    std::map<std::uint64_t, int> expected;
    for (int i = 0; i < 5000; ++i) {
        const auto key = table.key_of(id_of(i));
        table.insert(key, static_cast<backend_id>(i), 1);
        expected[key.low] = i;
    }
    std::map<std::uint64_t, int> seen;
    table.for_each([&](const session_entry& e) { CHECK(seen.emplace(e.key.low, e.owner).second); });
    CHECK(seen == expected);
}

TEST_CASE("session table: restore adds entries as they are")
{
    counter c;
    session_table saved(seed);
    for (int i = 0; i < 1000; ++i)
        saved.insert(saved.key_of(id_of(i)), static_cast<backend_id>(i % 3), static_cast<std::uint32_t>(i));
    saved.open_stream(saved.key_of(id_of(7)), 7);

    session_table loaded(seed, c.hook(), 16);
    saved.for_each([&](const session_entry& e) { loaded.restore(e); });
    CHECK(loaded.size() == 1000);
    CHECK(c.sums == owners_in(saved));

    std::map<std::uint64_t, std::array<std::uint32_t, 3>> a, b;
    saved.for_each([&](const session_entry& e) { a[e.key.low] = {e.last_use, e.owner, e.streams}; });
    loaded.for_each([&](const session_entry& e) { b[e.key.low] = {e.last_use, e.owner, e.streams}; });
    CHECK(a == b);
    // Restored keys are found by the id (same seed).
    CHECK(*loaded.find(loaded.key_of(id_of(5)), 2000) == 2);
    // Restoring a known key replaces it, counts included.
    loaded.restore(session_entry{loaded.key_of(id_of(5)), 9, 1, 0});
    CHECK(*loaded.find(loaded.key_of(id_of(5)), 2000) == 1);
    CHECK(loaded.size() == 1000);
    CHECK(c.sums == owners_in(loaded));
}

TEST_CASE("session table: two threads with disjoint keys lose nothing")
{
    constexpr int per_thread = 20'000;
    std::array<std::atomic<int>, 2> sums{};
    session_table table(
        seed, [&](backend_id owner, int delta) { sums.at(owner) += delta; }, 4);

    const auto work = [&](backend_id t) {
        const auto id = [t](int i) { return thread_id_of(t, i); };
        int misses = 0;
        for (int i = 0; i < per_thread; ++i) {
            table.insert(table.key_of(id(i)), t, 1);
            misses += table.find(table.key_of(id(i)), 2) != t;
            if (i % 3 == 0) // erase every third one, right after inserting it
                CHECK(table.erase(table.key_of(id(i))));
            // An older one of ours: there unless it was erased, whatever the other thread does.
            const int j = i / 2;
            misses += table.find(table.key_of(id(j)), 2).has_value() != (j % 3 != 0);
            table.open_stream(table.key_of(id(j)), 3);
        }
        CHECK(misses == 0);
    };
    std::thread other(work, backend_id{1});
    work(0);
    other.join();

    constexpr int kept = per_thread - (per_thread + 2) / 3;
    CHECK(table.size() == 2 * kept);
    CHECK(sums[0] == kept);
    CHECK(sums[1] == kept);
    for (backend_id t = 0; t < 2; ++t) {
        int found = 0;
        for (int i = 0; i < per_thread; ++i) {
            const auto owner = table.find(table.key_of(thread_id_of(t, i)), 4);
            found += owner.has_value() && *owner == t && i % 3 != 0;
        }
        CHECK(found == kept);
    }
}

// Keys whose home slot is `home` in any shard of up to 2^20 slots (home = low & mask): they
// stay in one probe run however much the shard grows. n < 2^40.
session_key run_key(std::uint64_t home, std::uint64_t n)
{
    return session_key{home + (n << 20), 0};
}

// The lock-free read path: finds run while a writer inserts, erases, grows and shifts runs in
// the same shard. Every answer must be one the table held at some instant: stable keys always
// found with their owner, keys never inserted never found, churning keys found with their own
// owner or not at all. To make readers meet writers often, one long probe run is kept where
// every insert or erase of a churning key shifts all the stable keys of the run.
TEST_CASE("session table: concurrent finds during inserts, erases and growth")
{
    constexpr int run_stable = 60;   // home 101: displaced by every churning key of home 100
    constexpr int hashed_stable = 1'000;
    constexpr int strangers = 200;   // half in the run, half hashed
    constexpr int churn = 40'000;    // growths from 16 to 64k slots
    constexpr int reader_rounds_max = 2'000; // bound, whatever the writer's pace
    session_table table(seed, {}, 1);

    std::vector<session_key> stable_keys, stranger_keys;
    for (int i = 0; i < run_stable; ++i)
        stable_keys.push_back(run_key(101, 1 + i));
    for (int i = 0; i < hashed_stable; ++i)
        stable_keys.push_back(table.key_of(id_of(i, "stable-")));
    for (int i = 0; i < strangers / 2; ++i) {
        stranger_keys.push_back(run_key(101, 100'000 + i));
        stranger_keys.push_back(table.key_of(id_of(i, "stranger-")));
    }
    const auto stable_owner = [](std::size_t i) { return static_cast<backend_id>(i % 5); };
    for (std::size_t i = 0; i < stable_keys.size(); ++i)
        table.insert(stable_keys[i], stable_owner(i), 1);

    constexpr backend_id churn_owner = 50;
    std::atomic<bool> writing{true};
    std::atomic<int> stable_wrong{0}, stranger_found{0}, churn_wrong{0}, rounds_during_writes{0};
    const auto reader = [&] {
        for (int round = 0; round < reader_rounds_max; ++round) {
            const bool during = writing.load();
            int sw = 0, sf = 0, cw = 0;
            for (std::size_t i = 0; i < stable_keys.size(); ++i)
                sw += table.find(stable_keys[i], 5) != stable_owner(i);
            for (const auto& key : stranger_keys)
                sf += table.find(key, 5).has_value();
            for (int j = 0; j < 64; ++j) {
                const auto owner = table.find(run_key(100, 1'000 + j), 5);
                cw += owner.has_value() && *owner != churn_owner;
            }
            stable_wrong += sw;
            stranger_found += sf;
            churn_wrong += cw;
            if (!during)
                break;
            ++rounds_during_writes;
        }
    };
    std::thread r1(reader), r2(reader);
    // The writer: churning keys in the run (each insert shifts the stable ones forward, each
    // erase back), re-pins, hashed keys that make the shard grow, and stream counts in place.
    for (int j = 0; j < churn; ++j) {
        const auto in_run = run_key(100, 1'000 + j % 64);
        table.insert(in_run, churn_owner, 5);
        if (j % 2 == 0)
            table.erase(in_run);
        table.insert(in_run, churn_owner, 5); // inserted again or re-pinned
        table.erase(run_key(100, 1'000 + (j + 32) % 64));
        table.insert(table.key_of(id_of(j, "churn-")), churn_owner, 5);
        if (j % 5 == 0) {
            table.open_stream(stable_keys[j % stable_keys.size()], 5);
            table.close_stream(stable_keys[j % stable_keys.size()], 5);
        }
    }
    table.erase_owner(churn_owner); // and removal in bulk
    writing = false;
    r1.join();
    r2.join();

    CHECK(stable_wrong.load() == 0);
    CHECK(stranger_found.load() == 0);
    CHECK(churn_wrong.load() == 0);
    MESSAGE("reader rounds during writes: " << rounds_during_writes.load());
    // And the table is whole afterwards.
    CHECK(table.size() == stable_keys.size());
    for (std::size_t i = 0; i < stable_keys.size(); ++i)
        CHECK(table.find(stable_keys[i], 6) == stable_owner(i));
}

// A lookup writes a session's last use without the lock. A writer moving that entry at the
// same instant (a growth, a shift after an erase) must not lose the store: after each round of
// touches, every touched session shows that round's time.
TEST_CASE("session table: last-use touches racing with growth and shifts are not lost")
{
    constexpr int run_stable = 60; // shifted by every insert and erase of the writer's run keys
    constexpr int hashed_stable = 500;
    constexpr int rounds = 300;
    constexpr backend_id stable_owner = 7;
    session_table table(seed, {}, 1);
    std::vector<session_key> keys;
    for (int i = 0; i < run_stable; ++i)
        keys.push_back(run_key(201, 1 + i));
    for (int i = 0; i < hashed_stable; ++i)
        keys.push_back(table.key_of(id_of(i, "touched-")));
    for (const auto& key : keys)
        table.insert(key, stable_owner, 1);
    std::atomic<bool> touching{true};
    std::thread writer([&] {
        // Shifts the run and grows the shard, bounded in count.
        for (int j = 0; j < 200'000 && touching.load(); ++j) {
            const auto in_run = run_key(200, 1'000 + j % 16);
            table.insert(in_run, 1, 1);
            table.erase(run_key(200, 1'000 + (j + 8) % 16));
            if (j % 4 == 0)
                table.insert(table.key_of(id_of(j, "mover-")), 1, 1);
        }
    });
    int stale = 0, missing = 0;
    for (int round = 0; round < rounds; ++round) {
        const auto now = static_cast<std::uint32_t>(10 + round);
        for (const auto& key : keys)
            missing += table.find(key, now) != stable_owner;
        table.for_each([&](const session_entry& e) {
            if (e.owner == stable_owner)
                stale += e.last_use != now;
        });
    }
    touching = false;
    writer.join();
    CHECK(missing == 0);
    CHECK(stale == 0);
}
/// The process's resident memory in bytes (VmRSS), or 0 if unreadable.
std::size_t resident_bytes()
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stoul(line.substr(6)) * 1024;
    return 0;
}

TEST_CASE("session table: slot arrays retired by growth give their memory back")
{
    // One shard grown to 2^19 slots (12 MiB live): the arrays it outgrew (16 to 2^18 slots)
    // add up to as much again, and must neither stay resident nor count in memory_bytes.
    constexpr int n = 300'000;
    constexpr std::size_t live = (std::size_t{1} << 19) * 24;
    const auto before = resident_bytes();
    REQUIRE(before > 0);
    session_table table(seed, {}, 1);
    for (int i = 0; i < n; ++i)
        table.insert(table.key_of(id_of(i)), 1, 1);
    const auto grown = resident_bytes() - before;
    CAPTURE(grown);
    CHECK(grown >= live * 9 / 10);
    CHECK(grown < live * 3 / 2);
    CHECK(table.memory_bytes() >= live);
    CHECK(table.memory_bytes() < live + 64 * 1024);
}
