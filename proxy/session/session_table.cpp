#include "turnout/session/session_table.hpp"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <utility>

namespace turnout::session {

// 24 bytes, no padding: the bytes-per-session budget (64) rests on it.
static_assert(sizeof(session_entry) == 24, "session_entry must stay 24 bytes");

namespace {

constexpr std::size_t initial_capacity = 16; // slots per shard; a power of two
constexpr std::uint16_t max_streams = 0xFFFF;
constexpr std::size_t npos = static_cast<std::size_t>(-1);

// The empty slot is the all-zero key, so no real key may be {0,0}. XXH3 yields it with
// probability 2^-128, but keys also come from callers (restore, tests): map it the same way
// everywhere so that lookups, inserts and restores agree.
constexpr session_key canonical(session_key key) noexcept
{
    if ((key.low | key.high) == 0)
        key.low = 1;
    return key;
}

constexpr bool is_empty(const session_entry& e) noexcept
{
    return (e.key.low | e.key.high) == 0;
}

bool idle(const session_entry& e, std::uint32_t now, std::uint32_t timeout) noexcept
{
    // A last use "in the future" (a clock that stepped back) is not idle: wrongly forgetting
    // a live session breaks its client, keeping an idle one a little longer costs 24 bytes.
    return e.streams == 0 && timeout > 0 && now > e.last_use && now - e.last_use > timeout;
}

// count_hook calls for bulk removals, tallied under the lock and made after it.
using removal_tally = std::vector<std::pair<backend_id, std::size_t>>;

void tally(removal_tally& t, backend_id owner)
{
    for (auto& [o, n] : t) {
        if (o == owner) {
            ++n;
            return;
        }
    }
    t.emplace_back(owner, 1);
}

} // namespace

// One open-addressing table with Robin Hood probing: the home slot is key.low & mask (the
// shard was picked from key.high, so the two choices use independent bits). Robin Hood keeps
// probe sequences short at a high load factor and lets a miss stop early; deletion shifts the
// following entries back, so there are no tombstones and no periodic rehash.
// Aligned to a cache line so that two workers on different shards never share one.
//
// A std::mutex, not a spinlock: a test-and-set spinlock measured faster with one thread but
// no faster with two, and a worker preempted while holding it (this runs on shared 2-core
// machines; a growth rehashes a whole shard) would leave the others spinning a timeslice.
struct alignas(64) session_table::shard {
    std::mutex mutex;
    std::vector<session_entry> slots = std::vector<session_entry>(initial_capacity);
    std::size_t size = 0;

    std::size_t mask() const noexcept { return slots.size() - 1; }
    std::size_t home(const session_key& key) const noexcept { return key.low & mask(); }
    std::size_t distance(const session_entry& e, std::size_t i) const noexcept
    {
        return (i - home(e.key)) & mask();
    }

    /// Slot of key, or npos.
    std::size_t locate(const session_key& key) const noexcept
    {
        const auto m = mask();
        for (std::size_t i = home(key), dist = 0;; i = (i + 1) & m, ++dist) {
            const auto& e = slots[i];
            if (e.key == key)
                return i;
            // An entry closer to its home than we are to ours means key would have taken
            // this slot: it is not in the table.
            if (is_empty(e) || distance(e, i) < dist)
                return npos;
        }
    }

    /// Places an entry whose key is not in the table; the table must have a free slot.
    void place(session_entry entry) noexcept
    {
        const auto m = mask();
        for (std::size_t i = home(entry.key), dist = 0;; i = (i + 1) & m, ++dist) {
            auto& e = slots[i];
            if (is_empty(e)) {
                e = entry;
                return;
            }
            // Take from the rich: the resident nearer its home yields the slot and moves on.
            if (const auto d = distance(e, i); d < dist) {
                std::swap(e, entry);
                dist = d;
            }
        }
    }

    /// Adds a new key, growing first if needed.
    void add(const session_entry& entry)
    {
        // Grow ×2 beyond a load of 0.8: Robin Hood probes stay short there, and right after a
        // growth (load 0.4) a session costs at most 24 / 0.4 = 60 bytes, within the budget.
        if ((size + 1) * 5 > slots.size() * 4)
            grow();
        place(entry);
        ++size;
    }

    void grow()
    {
        std::vector<session_entry> old(slots.size() * 2);
        old.swap(slots);
        for (const auto& e : old)
            if (!is_empty(e))
                place(e);
    }

    /// Removes the entry at i by shifting the rest of its run back one slot.
    void remove_at(std::size_t i) noexcept
    {
        const auto m = mask();
        for (auto next = (i + 1) & m; !is_empty(slots[next]) && distance(slots[next], next) > 0;
             next = (next + 1) & m) {
            slots[i] = slots[next];
            i = next;
        }
        slots[i] = session_entry{};
        --size;
    }

    /// Removes every entry for which pred holds, tallying the owners.
    template <class Pred> std::size_t remove_if(Pred pred, removal_tally& removed)
    {
        std::size_t count = 0;
        for (std::size_t i = 0; i < slots.size();) {
            auto& e = slots[i];
            if (is_empty(e) || !pred(e)) {
                ++i;
                continue;
            }
            tally(removed, e.owner);
            remove_at(i); // the next entry of the run is now at i: look at i again
            ++count;
        }
        return count;
    }
};

namespace {

/// Runs fn on key's entry under the shard's lock. Returns whether key was there.
template <class Shard, class Fn> bool with_entry(Shard& s, const session_key& key, Fn fn) noexcept
{
    std::lock_guard lock(s.mutex);
    const auto i = s.locate(key);
    if (i == npos)
        return false;
    fn(s.slots[i]);
    return true;
}

/// Adds or replaces entry in s, then reports the owner change. The hook is called outside the
/// lock: it is the caller's code and must not lengthen the critical section. A racing insert
/// and erase of one key may thus report -1 before +1; the sums stay exact.
template <class Shard>
void pin(const session_table::count_hook& on_count, Shard& s, session_entry entry, bool keep_streams)
{
    std::optional<backend_id> previous;
    {
        std::lock_guard lock(s.mutex);
        if (const auto i = s.locate(entry.key); i != npos) {
            auto& slot = s.slots[i];
            previous = slot.owner;
            if (keep_streams)
                entry.streams = slot.streams;
            slot = entry;
        } else {
            s.add(entry);
        }
    }
    if (!on_count || previous == entry.owner)
        return;
    if (previous)
        on_count(*previous, -1);
    on_count(entry.owner, +1);
}

/// One -1 per removed session, as the hook's contract says (each is one atomic add).
void notify_removed(const session_table::count_hook& on_count, removal_tally& removed)
{
    if (on_count)
        for (const auto& [owner, n] : removed)
            for (std::size_t k = 0; k < n; ++k)
                on_count(owner, -1);
    removed.clear();
}

} // namespace

session_table::session_table(std::uint64_t seed, count_hook on_count, unsigned shard_count)
    : seed_(seed), on_count_(std::move(on_count))
{
    const auto n = std::bit_ceil(std::max(shard_count, 1u));
    shards_.reserve(n);
    for (unsigned i = 0; i < n; ++i)
        shards_.push_back(std::make_unique<shard>());
    shard_mask_ = n - 1;
}

session_table::~session_table() = default;

session_key session_table::key_of(std::string_view session_id) const noexcept
{
    const auto h = XXH3_128bits_withSeed(session_id.data(), session_id.size(), seed_);
    return canonical(session_key{h.low64, h.high64});
}

session_table::shard& session_table::shard_of(const session_key& key) noexcept
{
    return *shards_[key.high & shard_mask_];
}

std::optional<backend_id> session_table::find(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    std::optional<backend_id> owner;
    with_entry(shard_of(key), key, [&](session_entry& e) {
        // A busy session is found many times a second: storing the same second again would
        // only dirty its cache line, to be written back to memory for nothing.
        if (e.last_use != now)
            e.last_use = now;
        owner = e.owner;
    });
    return owner;
}

void session_table::insert(const session_key& key, backend_id owner, std::uint32_t now)
{
    const session_entry entry{canonical(key), now, owner, 0};
    // A re-pin keeps the session's open streams: they still protect it from expiry.
    pin(on_count_, shard_of(entry.key), entry, true);
    if (auto* o = observer_.load(std::memory_order_seq_cst))
        o->learned(entry.key, owner);
}

void session_table::restore(const session_entry& entry)
{
    auto e = entry;
    e.key = canonical(e.key);
    pin(on_count_, shard_of(e.key), e, false);
}

bool session_table::erase(const session_key& k) noexcept
{
    const auto key = canonical(k);
    backend_id owner = 0;
    {
        auto& s = shard_of(key);
        std::lock_guard lock(s.mutex);
        const auto i = s.locate(key);
        if (i == npos)
            return false;
        owner = s.slots[i].owner;
        s.remove_at(i);
    }
    if (on_count_)
        on_count_(owner, -1);
    if (auto* o = observer_.load(std::memory_order_seq_cst))
        o->forgot(key);
    return true;
}

bool session_table::open_stream(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    return with_entry(shard_of(key), key, [now](session_entry& e) {
        if (e.streams < max_streams)
            ++e.streams;
        e.last_use = now;
    });
}

bool session_table::close_stream(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    return with_entry(shard_of(key), key, [now](session_entry& e) {
        if (e.streams > 0)
            --e.streams;
        e.last_use = now;
    });
}

std::size_t session_table::expire(std::uint32_t now,
                                  const std::function<std::uint32_t(backend_id)>& idle_timeout)
{
    std::size_t count = 0;
    removal_tally removed;
    // idle_timeout runs under a shard lock, once per owner per call, not once per session.
    std::vector<std::pair<backend_id, std::uint32_t>> timeouts;
    const auto timeout_of = [&](backend_id owner) {
        for (const auto& [o, t] : timeouts)
            if (o == owner)
                return t;
        return timeouts.emplace_back(owner, idle_timeout(owner)).second;
    };
    for (auto& s : shards_) {
        {
            std::lock_guard lock(s->mutex);
            count += s->remove_if([&](const session_entry& e) { return idle(e, now, timeout_of(e.owner)); },
                                  removed);
        }
        notify_removed(on_count_, removed);
    }
    return count;
}

std::size_t session_table::erase_owner(backend_id owner)
{
    std::size_t count = 0;
    removal_tally removed;
    for (auto& s : shards_) {
        {
            std::lock_guard lock(s->mutex);
            count += s->remove_if([owner](const session_entry& e) { return e.owner == owner; }, removed);
        }
        notify_removed(on_count_, removed);
    }
    return count;
}

std::size_t session_table::size() const noexcept
{
    std::size_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        n += s->size;
    }
    return n;
}

std::size_t session_table::memory_bytes() const noexcept
{
    std::size_t n = sizeof(*this) + shards_.capacity() * sizeof(shards_[0]);
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        n += sizeof(shard) + s->slots.capacity() * sizeof(session_entry);
    }
    return n;
}

void session_table::for_each(const std::function<void(const session_entry&)>& visit) const
{
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        for (const auto& e : s->slots)
            if (!is_empty(e))
                visit(e);
    }
}

} // namespace turnout::session
