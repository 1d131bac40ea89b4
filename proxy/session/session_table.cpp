#include "turnout/session/session_table.hpp"

#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <memory>
#include <new>
#include <utility>

// Concurrency design
//
// Writers (insert, erase, growth, expiry, stream counts) take their shard's mutex. Readers
// (find) take nothing: a shard has a sequence counter, odd while a writer moves or replaces
// entries, and a reader accepts what it read only if the counter was even and unchanged across
// the read (a seqlock). Every slot field is a std::atomic accessed with relaxed loads and
// stores, so racing reads are not data races; the fences follow Boehm ("Can seqlocks get along
// with programming language memory models?", 2012): the writer's release fence after making
// the counter odd pairs with the reader's acquire fence before re-reading it, so a reader that
// saw any of a writer's stores also sees the counter changed. On x86 none of this is more than
// a plain load or store, so two cores looking up sessions share the shard's cache lines
// instead of bouncing a lock between them.
//
// Growth: a reader may still be reading a slot array that a writer has just replaced. Slot
// arrays are therefore anonymous mappings of their own, and a replaced one is not unmapped but
// handed back to the kernel with madvise(MADV_DONTNEED): its pages are freed (they no longer
// count in memory, which is what the ≤ 64 bytes per session budget is about) while the
// addresses stay readable (as zeros) until the table is destroyed. A late reader thus reads
// zeros or stale slots, never unmapped memory, and its sequence check sends it back to the new
// array. This needs no epoch or hazard bookkeeping on the read path (which would cost a store
// and a full fence per lookup) and no cooperation from the worker threads; the cost is address
// space only: a shard's retired arrays add up to less than its live one, and a shard never
// shrinks, so they are at most log2(capacity) mappings per shard.
//
// Last use: a lookup writes the session's last use only when it differs from the current
// second, so a busy session costs one cache-line write per second, not one per lookup. That
// store is made without the lock; a writer could be moving the entry at that instant and carry
// the old value along. A full fence between the store and a last look at the counter settles
// it (Boehm's store-then-check argument for seq_cst fences, matched by the writer's seq_cst
// fence when it opens a section): either the writer's copy sees the store, or the reader sees
// the counter moved and repeats the touch under the lock. (The stray store may then have given
// another session that took the slot a newer last use: it lives one idle timeout longer, which
// is harmless; a store into a retired array's freed page is dropped again.) The fence is paid
// only by lookups that write, at most once per session per second.

namespace turnout::session {

// 24 bytes, no padding: the bytes-per-session budget (64) rests on it.
static_assert(sizeof(session_entry) == 24, "session_entry must stay 24 bytes");

namespace {

constexpr std::size_t initial_capacity = 16; // slots per shard; a power of two
constexpr std::uint16_t max_streams = 0xFFFF;
constexpr std::size_t npos = static_cast<std::size_t>(-1);
// Optimistic reads of a shard before waiting for its lock: a writer's section lasts a few
// stores (a growth, rarely, a whole rehash), so a reader that keeps meeting writers is better
// off queueing on the mutex than spinning.
constexpr unsigned read_attempts = 4;

constexpr auto relaxed = std::memory_order_relaxed;

// The empty slot is the all-zero key, so no real key may be {0,0}. XXH3 yields it with
// probability 2^-128, but keys also come from callers (restore, tests): map it the same way
// everywhere so that lookups, inserts and restores agree.
constexpr session_key canonical(session_key key) noexcept
{
    if ((key.low | key.high) == 0)
        key.low = 1;
    return key;
}

/// A session_entry as lock-free readers may see it: every field atomic, owner and stream count
/// in one word (the owner is what readers need; streams change under the lock only).
struct slot {
    std::atomic<std::uint64_t> low;
    std::atomic<std::uint64_t> high;
    std::atomic<std::uint32_t> last_use;
    std::atomic<std::uint32_t> owner_streams; // owner in bits 0-15, streams in bits 16-31

    session_key key() const noexcept { return {low.load(relaxed), high.load(relaxed)}; }
    bool empty() const noexcept { return (low.load(relaxed) | high.load(relaxed)) == 0; }
    backend_id owner() const noexcept { return static_cast<backend_id>(owner_streams.load(relaxed)); }
    std::uint16_t streams() const noexcept
    {
        return static_cast<std::uint16_t>(owner_streams.load(relaxed) >> 16);
    }
    void set(backend_id owner, std::uint16_t streams) noexcept
    {
        owner_streams.store(std::uint32_t{owner} | std::uint32_t{streams} << 16, relaxed);
    }
    session_entry get() const noexcept { return {key(), last_use.load(relaxed), owner(), streams()}; }
    void put(const session_entry& e) noexcept
    {
        low.store(e.key.low, relaxed);
        high.store(e.key.high, relaxed);
        last_use.store(e.last_use, relaxed);
        set(e.owner, e.streams);
    }
};
static_assert(sizeof(slot) == sizeof(session_entry), "a slot must cost what an entry does");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free);

std::size_t page_size() noexcept
{
    static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t mapped_bytes(std::size_t capacity) noexcept
{
    const auto page = page_size();
    return (capacity * sizeof(slot) + page - 1) / page * page;
}

/// A new zeroed slot array in a mapping of its own (see "Growth" above).
slot* map_slots(std::size_t capacity)
{
    void* p = ::mmap(nullptr, mapped_bytes(capacity), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc();
    return std::uninitialized_value_construct_n(static_cast<slot*>(p), capacity), static_cast<slot*>(p);
}

/// Frees the pages of [p, p + bytes) and leaves the addresses readable as zeros.
void drop_pages(void* p, std::size_t bytes) noexcept
{
    ::madvise(p, bytes, MADV_DONTNEED);
}

/// A slot array and its index mask, as readers load it: one word, so that a reader never pairs
/// an array with another array's mask (which could index past its end). Mappings are
/// page-aligned, so the low bits of the address hold log2(capacity).
struct slot_view {
    slot* slots = nullptr;
    std::size_t mask = 0;

    static std::uintptr_t encode(slot* slots, std::size_t capacity) noexcept
    {
        return reinterpret_cast<std::uintptr_t>(slots) | static_cast<std::uintptr_t>(std::countr_zero(capacity));
    }
    static slot_view decode(std::uintptr_t word) noexcept
    {
        constexpr std::uintptr_t log_bits = 63;
        return {reinterpret_cast<slot*>(word & ~log_bits), (std::size_t{1} << (word & log_bits)) - 1};
    }

    std::size_t home(const session_key& key) const noexcept { return key.low & mask; }

    /// Slot of key, or npos. Robin Hood probing: the home slot is key.low & mask (the shard was
    /// picked from key.high, so the two choices use independent bits), and an entry closer to
    /// its home than we are to ours means key would have taken its place: key is absent. Safe
    /// on a torn array (a reader's view during a write): indices stay masked and the probe
    /// stops after one lap; the caller's sequence check discards the answer.
    std::size_t locate(const session_key& key) const noexcept
    {
        for (std::size_t i = home(key), dist = 0; dist <= mask; i = (i + 1) & mask, ++dist) {
            const auto k = slots[i].key();
            if (k == key)
                return i;
            if ((k.low | k.high) == 0 || ((i - (k.low & mask)) & mask) < dist)
                return npos;
        }
        return npos;
    }
};

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

// One open-addressing table with Robin Hood probing, which keeps probe sequences short at a
// high load factor and lets a miss stop early; deletion shifts the following entries back, so
// there are no tombstones and no periodic rehash. Aligned to a cache line so that two workers
// on different shards never share one.
//
// A std::mutex for writers, not a spinlock: a worker preempted while holding it (this runs on
// shared 2-core machines; a growth rehashes a whole shard) would leave the others spinning a
// timeslice. Readers never touch it.
struct alignas(64) session_table::shard {
    std::mutex mutex;
    std::atomic<std::uint32_t> seq{0};    // odd while a writer moves or replaces entries
    std::atomic<std::uintptr_t> table{0}; // slot_view::encode of the live array, for readers
    // The writer's own view of the live array (under mutex).
    slot_view live;
    std::size_t size = 0;
    std::vector<std::pair<slot*, std::size_t>> retired; // emptied arrays (capacity), see above

    shard() : live{map_slots(initial_capacity), initial_capacity - 1}
    {
        table.store(slot_view::encode(live.slots, initial_capacity), std::memory_order_release);
    }
    ~shard()
    {
        ::munmap(live.slots, mapped_bytes(live.mask + 1));
        for (const auto& [slots, capacity] : retired)
            ::munmap(slots, mapped_bytes(capacity));
    }
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    /// The live array as a reader sees it. Acquire: the array's construction (and contents
    /// placed before publication) happen before the reader's loads.
    slot_view view() const noexcept { return slot_view::decode(table.load(std::memory_order_acquire)); }

    std::size_t capacity() const noexcept { return live.mask + 1; }
    std::size_t locate(const session_key& key) const noexcept { return live.locate(key); }
    slot& at(std::size_t i) noexcept { return live.slots[i]; }

    /// Opens a writer's section (mutex held): readers that overlap it will retry. The seq_cst
    /// fence (a release fence, and more) orders the odd counter before the section's loads
    /// too, which the readers' last-use store relies on.
    void begin_write() noexcept
    {
        seq.store(seq.load(relaxed) + 1, relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    void end_write() noexcept { seq.store(seq.load(relaxed) + 1, std::memory_order_release); }

    /// Places an entry whose key is not in the table; the table must have a free slot.
    void place(session_entry entry) noexcept
    {
        const auto m = live.mask;
        for (std::size_t i = live.home(entry.key), dist = 0;; i = (i + 1) & m, ++dist) {
            auto& e = live.slots[i];
            if (e.empty()) {
                e.put(entry);
                return;
            }
            // Take from the rich: the resident nearer its home yields the slot and moves on.
            if (const auto d = (i - live.home(e.key())) & m; d < dist) {
                const auto resident = e.get();
                e.put(entry);
                entry = resident;
                dist = d;
            }
        }
    }

    /// Adds a new key, growing first if needed (inside a write section).
    void add(const session_entry& entry)
    {
        // Grow ×2 beyond a load of 0.8: Robin Hood probes stay short there, and right after a
        // growth (load 0.4) a session costs at most 24 / 0.4 = 60 bytes, within the budget.
        if ((size + 1) * 5 > capacity() * 4)
            grow();
        place(entry);
        ++size;
    }

    void grow()
    {
        const auto old = live;
        const auto capacity = (old.mask + 1) * 2;
        retired.reserve(retired.size() + 1); // the only step that may throw after the mapping
        live = slot_view{map_slots(capacity), capacity - 1};
        for (std::size_t i = 0; i <= old.mask; ++i)
            if (!old.slots[i].empty())
                place(old.slots[i].get());
        table.store(slot_view::encode(live.slots, capacity), std::memory_order_release);
        drop_pages(old.slots, mapped_bytes(old.mask + 1));
        retired.emplace_back(old.slots, old.mask + 1);
    }

    /// Whether p lies in an array that growth retired (so a store there dirtied a freed page).
    bool in_retired(const void* p) const noexcept
    {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        return std::any_of(retired.begin(), retired.end(), [a](const auto& r) {
            const auto begin = reinterpret_cast<std::uintptr_t>(r.first);
            return a >= begin && a < begin + r.second * sizeof(slot);
        });
    }

    /// Removes the entry at i by shifting the rest of its run back one slot (inside a write
    /// section).
    void remove_at(std::size_t i) noexcept
    {
        const auto m = live.mask;
        for (auto next = (i + 1) & m; !at(next).empty() && ((next - live.home(at(next).key())) & m) > 0;
             next = (next + 1) & m) {
            at(i).put(at(next).get());
            i = next;
        }
        at(i).put(session_entry{});
        --size;
    }

    /// Removes every entry for which pred holds, tallying the owners. One write section per
    /// removal, so that readers of this shard are held back for a few stores, not a whole pass.
    template <class Pred> std::size_t remove_if(Pred pred, removal_tally& removed)
    {
        std::size_t count = 0;
        for (std::size_t i = 0; i < capacity();) {
            const auto e = at(i).get();
            if ((e.key.low | e.key.high) == 0 || !pred(e)) {
                ++i;
                continue;
            }
            tally(removed, e.owner);
            begin_write();
            remove_at(i); // the next entry of the run is now at i: look at i again
            end_write();
            ++count;
        }
        return count;
    }

    /// Sets key's last use under the lock, after a lock-free store may have been lost to a
    /// writer moving the entry. stray is where that store went: if it was an array that growth
    /// has since emptied, the store brought a freed page back, which is dropped again.
    void touch_locked(const session_key& key, std::uint32_t now, const void* stray) noexcept
    {
        std::lock_guard lock(mutex);
        if (const auto i = locate(key); i != npos)
            at(i).last_use.store(now, relaxed);
        if (in_retired(stray)) {
            const auto page = page_size();
            const auto a = reinterpret_cast<std::uintptr_t>(stray) / page * page;
            drop_pages(reinterpret_cast<void*>(a), page);
        }
    }
};

namespace {

/// Runs fn on key's slot under the shard's lock. Returns whether key was there. For changes of
/// single fields in place (stream counts, last use): readers see each field whole, old or new,
/// so no write section is needed.
template <class Shard, class Fn> bool with_slot(Shard& s, const session_key& key, Fn fn) noexcept
{
    std::lock_guard lock(s.mutex);
    const auto i = s.locate(key);
    if (i == npos)
        return false;
    fn(s.at(i));
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
        s.begin_write();
        struct closer {
            Shard& s;
            ~closer() { s.end_write(); } // also if growth throws
        } close{s};
        if (const auto i = s.locate(entry.key); i != npos) {
            auto& slot = s.at(i);
            previous = slot.owner();
            if (keep_streams)
                entry.streams = slot.streams();
            slot.put(entry);
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
    if (auto owner = find_here(k, now))
        return owner;
    // Unknown here. During an upgrade the other process may have pinned it an instant ago,
    // its message still unread: the observer reads it now, and then the table knows.
    auto* o = observer_.load(std::memory_order_acquire);
    if (o && o->missed(canonical(k)))
        return find_here(k, now);
    return std::nullopt;
}

std::optional<backend_id> session_table::find_here(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    auto& s = shard_of(key);
    for (unsigned attempt = 0; attempt < read_attempts; ++attempt) {
        const auto seq = s.seq.load(std::memory_order_acquire);
        if (seq & 1)
            continue; // a writer is in the shard
        const auto view = s.view();
        const auto i = view.locate(key);
        std::uint32_t owner_streams = 0;
        std::uint32_t last_use = now;
        if (i != npos) {
            owner_streams = view.slots[i].owner_streams.load(relaxed);
            last_use = view.slots[i].last_use.load(relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.seq.load(relaxed) != seq)
            continue; // overlapped a write: what was read may be torn
        if (i == npos)
            return std::nullopt;
        // A busy session is found many times a second: storing the same second again would
        // only dirty its cache line, to be written back to memory for nothing.
        if (last_use != now) {
            auto& stored = view.slots[i].last_use;
            stored.store(now, relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (s.seq.load(relaxed) != seq)
                s.touch_locked(key, now, &stored);
        }
        return static_cast<backend_id>(owner_streams);
    }
    // Writers kept the shard busy: wait for them.
    std::optional<backend_id> owner;
    with_slot(s, key, [&](slot& e) {
        if (e.last_use.load(relaxed) != now)
            e.last_use.store(now, relaxed);
        owner = e.owner();
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
        owner = s.at(i).owner();
        s.begin_write();
        s.remove_at(i);
        s.end_write();
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
    return with_slot(shard_of(key), key, [now](slot& e) {
        if (const auto n = e.streams(); n < max_streams)
            e.set(e.owner(), static_cast<std::uint16_t>(n + 1));
        e.last_use.store(now, relaxed);
    });
}

bool session_table::close_stream(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    return with_slot(shard_of(key), key, [now](slot& e) {
        if (const auto n = e.streams(); n > 0)
            e.set(e.owner(), static_cast<std::uint16_t>(n - 1));
        e.last_use.store(now, relaxed);
    });
}

bool session_table::touch(const session_key& k, std::uint32_t now) noexcept
{
    const auto key = canonical(k);
    return with_slot(shard_of(key), key, [now](slot& e) { e.last_use.store(now, relaxed); });
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
    // Retired arrays hold no pages (see "Growth"): only their bookkeeping counts.
    std::size_t n = sizeof(*this) + shards_.capacity() * sizeof(shards_[0]);
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        n += sizeof(shard) + mapped_bytes(s->capacity()) + s->retired.capacity() * sizeof(s->retired[0]);
    }
    return n;
}

void session_table::for_each(const std::function<void(const session_entry&)>& visit) const
{
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mutex);
        for (std::size_t i = 0; i < s->capacity(); ++i)
            if (const auto e = s->live.slots[i].get(); (e.key.low | e.key.high) != 0)
                visit(e);
    }
}

} // namespace turnout::session
