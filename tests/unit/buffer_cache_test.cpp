#include "turnout/net/buffer_cache.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

using turnout::net::buffer_cache;
using turnout::net::io_buffer;

TEST_CASE("buffer_cache lends both size classes and counts what connections hold")
{
    buffer_cache cache(2048, 4096);
    io_buffer a, b;
    cache.lend_small(a);
    cache.lend_large(b);
    CHECK(a.capacity() == 2048);
    CHECK(b.capacity() == 4096);
    CHECK(cache.held() == 2);

    CHECK(cache.reclaim(a));
    CHECK(a.capacity() == 0);
    CHECK(cache.held() == 1);
    CHECK_FALSE(cache.reclaim(a)); // nothing to take back
    CHECK(cache.held() == 1);
}

TEST_CASE("buffer_cache leaves a buffer with unread bytes where it is, unless the owner goes away")
{
    buffer_cache cache(2048, 4096);
    io_buffer b;
    cache.lend_small(b);
    std::memcpy(b.write_data(), "GET", 3);
    b.commit(3);
    CHECK_FALSE(cache.reclaim(b));
    CHECK(b.size() == 3);
    CHECK(cache.held() == 1);
    cache.reclaim_all(b);
    CHECK(b.capacity() == 0);
    CHECK(cache.held() == 0);
}

TEST_CASE("buffer_cache recycles a returned buffer into its own size class")
{
    buffer_cache cache(2048, 4096);
    io_buffer small, large;
    cache.lend_small(small);
    cache.lend_large(large);
    const char* small_storage = small.write_data();
    const char* large_storage = large.write_data();
    cache.reclaim(small);
    cache.reclaim(large);

    io_buffer again_large, again_small;
    cache.lend_large(again_large);
    cache.lend_small(again_small);
    CHECK(again_large.write_data() == large_storage);
    CHECK(again_large.capacity() == 4096);
    CHECK(again_small.write_data() == small_storage);
    CHECK(again_small.capacity() == 2048);
}

TEST_CASE("buffer_cache keeps a bounded number of free buffers per size class")
{
    buffer_cache cache(64, 128);
    std::vector<io_buffer> small(buffer_cache::keep + 10), large(3);
    for (auto& b : small)
        cache.lend_small(b);
    for (auto& b : large)
        cache.lend_large(b);
    CHECK(cache.kept() == 0);
    for (auto& b : small)
        cache.reclaim(b);
    for (auto& b : large)
        cache.reclaim(b);
    CHECK(cache.held() == 0);
    CHECK(cache.kept() == buffer_cache::keep + 3);
}
