#include "turnout/net/body_hold.hpp"

#include <algorithm>
#include <cstring>

namespace turnout::net {

bool make_room_for_body(io_buffer& in, std::size_t length, buffer_cache& cache)
{
    if (in.capacity() >= length) {
        if (in.size() + in.space() < length)
            in.compact(); // no view into in is live before routing
        return false;
    }
    io_buffer grown;
    cache.lend_sized(grown, std::max(length, in.size()));
    std::memcpy(grown.write_data(), in.data(), in.size());
    grown.commit(in.size());
    in.consume(in.size());
    cache.reclaim(in);
    in = std::move(grown);
    return true;
}

} // namespace turnout::net
