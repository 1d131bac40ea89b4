#include "turnout/net/deadline_wheel.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <vector>

using turnout::net::deadline_wheel;
using clock_type = deadline_wheel::clock;
using namespace std::chrono_literals;

namespace {

// A fixed origin far from the machine's clock: the wheel is driven by run_due alone, so the
// result cannot depend on how long the machine has been up.
const clock_type::time_point origin = clock_type::time_point{} + 1h;

struct probe final : deadline_wheel::entry {
    std::vector<clock_type::time_point> fired;
    std::function<void(clock_type::time_point)> then;

    using entry::cancel;
    void on_due(clock_type::time_point now) override
    {
        fired.push_back(now);
        if (then)
            then(now);
    }
};

} // namespace

TEST_CASE("deadline_wheel fires at the first tick at or after a deadline, never before")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    probe p;
    wheel.schedule(p, origin + 50ms);
    CHECK(p.scheduled());
    CHECK(wheel.size() == 1);

    wheel.run_due(origin + 49ms);
    CHECK(p.fired.empty());
    wheel.run_due(origin + 63ms); // 50 ms rounds up to the 4th tick of 16 ms
    CHECK(p.fired.empty());
    wheel.run_due(origin + 64ms);
    REQUIRE(p.fired.size() == 1);
    CHECK(p.fired[0] >= origin + 50ms);
    CHECK_FALSE(p.scheduled());
    CHECK(wheel.size() == 0);

    wheel.run_due(origin + 10s); // fired once, not again
    CHECK(p.fired.size() == 1);
}

TEST_CASE("deadline_wheel moves an entry earlier, and leaves a later deadline to its owner's re-check")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    probe p;
    wheel.schedule(p, origin + 10s);
    wheel.schedule(p, origin + 1s); // earlier: moved
    wheel.run_due(origin + 1s + 16ms);
    CHECK(p.fired.size() == 1);

    probe q;
    wheel.schedule(q, origin + 2s);
    wheel.schedule(q, origin + 30s); // later: stays at 2 s; the owner re-checks then
    wheel.run_due(origin + 2s + 16ms);
    CHECK(q.fired.size() == 1);
    CHECK(wheel.size() == 0);
}

TEST_CASE("deadline_wheel passes over deadlines beyond one revolution until their turn")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    const auto revolution = deadline_wheel::tick * deadline_wheel::slot_count;
    probe far, near;
    wheel.schedule(far, origin + revolution + 5 * deadline_wheel::tick);
    wheel.schedule(near, origin + 5 * deadline_wheel::tick); // the same slot, one turn earlier
    wheel.run_due(origin + 5 * deadline_wheel::tick);
    CHECK(near.fired.size() == 1);
    CHECK(far.fired.empty());
    CHECK(far.scheduled());
    wheel.run_due(origin + revolution);
    CHECK(far.fired.empty());
    wheel.run_due(origin + revolution + 5 * deadline_wheel::tick);
    CHECK(far.fired.size() == 1);
}

TEST_CASE("deadline_wheel fires everything due after a jump of several revolutions")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    std::vector<probe> probes(50);
    for (std::size_t i = 0; i < probes.size(); ++i)
        wheel.schedule(probes[i], origin + std::chrono::milliseconds(997 * i * i + 1));
    wheel.run_due(origin + 24h);
    for (const auto& p : probes)
        CHECK(p.fired.size() == 1);
    CHECK(wheel.size() == 0);
}

TEST_CASE("deadline_wheel: cancelled and destroyed entries never fire, and may go while others fire")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    probe a, b, c;
    wheel.schedule(a, origin + 100ms);
    wheel.schedule(b, origin + 100ms);
    wheel.schedule(c, origin + 100ms);
    {
        probe gone;
        wheel.schedule(gone, origin + 100ms);
        CHECK(wheel.size() == 4);
    } // its destructor unlinks it
    CHECK(wheel.size() == 3);
    c.cancel();
    CHECK(wheel.size() == 2);

    // Whichever of a and b fires first cancels the other and reschedules itself.
    a.then = [&](clock_type::time_point now) {
        b.cancel();
        wheel.schedule(a, now + 1s);
    };
    b.then = [&](clock_type::time_point now) {
        a.cancel();
        wheel.schedule(b, now + 1s);
    };
    wheel.run_due(origin + 112ms);
    CHECK(a.fired.size() + b.fired.size() == 1);
    CHECK(c.fired.empty());
    CHECK(wheel.size() == 1);
    wheel.run_due(origin + 2s);
    CHECK(a.fired.size() + b.fired.size() == 2);
}

TEST_CASE("deadline_wheel: a deadline already past fires at the next tick; one before the origin too")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    wheel.run_due(origin + 1s);
    probe p, q;
    wheel.schedule(p, origin + 500ms); // in the past
    wheel.schedule(q, clock_type::time_point{});
    wheel.run_due(origin + 1s); // the tick of 1 s has run already: nothing fires twice in it
    CHECK(p.fired.empty());
    wheel.run_due(origin + 1s + deadline_wheel::tick);
    CHECK(p.fired.size() == 1);
    CHECK(q.fired.size() == 1);

    probe never;
    wheel.schedule(never, clock_type::time_point::max());
    CHECK_FALSE(never.scheduled());
}

TEST_CASE("deadline_wheel outlived by its entries leaves them unlinked")
{
    probe p;
    {
        boost::asio::io_context io;
        deadline_wheel wheel{io, origin};
        wheel.schedule(p, origin + 1s);
        CHECK(p.scheduled());
    }
    CHECK_FALSE(p.scheduled());
    p.cancel(); // harmless
}

TEST_CASE("deadline_wheel wakes for the nearest entry after a handler rescheduled itself far away")
{
    boost::asio::io_context io;
    deadline_wheel wheel{io, origin};
    probe first, second;
    wheel.schedule(first, origin + 100ms);
    wheel.schedule(second, origin + 200ms);
    CHECK(wheel.wakes_at() <= origin + 112ms);
    first.then = [&](clock_type::time_point now) { wheel.schedule(first, now + 60s); };
    wheel.run_due(origin + 112ms);
    REQUIRE(first.fired.size() == 1);
    // The timer must wake for `second`, not sleep until `first`'s new deadline.
    CHECK(wheel.wakes_at() >= origin + 200ms);
    CHECK(wheel.wakes_at() <= origin + 216ms);
}
