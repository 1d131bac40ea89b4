#pragma once
// Every backend this process has ever been configured with, by address, each with a small
// stable id. Session table entries name their owner by that id (2 bytes instead of a pointer
// that could dangle), and a backend removed from the configuration keeps its id, so its
// sessions can be recognised and answered 404. Reads from workers are lock-free: ids index an
// array of atomic pointers that only ever grows; backends are never freed.

#include "turnout/upstream/backend.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace turnout::upstream {

class backend_registry {
public:
    static constexpr std::size_t capacity = 65535;

    /// The backend at address, created (and resolved by the caller) on first sight.
    /// Throws std::length_error when the registry is full.
    std::shared_ptr<backend> obtain(const std::string& address, const boost::asio::ip::tcp::endpoint& endpoint);

    /// The backend known by address, or null (control thread).
    std::shared_ptr<backend> find(const std::string& address) const;

    /// The backend with id, or null. Lock-free.
    backend* get(std::uint16_t id) const noexcept
    {
        return id < capacity ? slots_[id].load(std::memory_order_acquire) : nullptr;
    }

    /// Calls f(backend&) for every backend ever registered (control thread).
    template <class F>
    void for_each(F&& f) const
    {
        std::lock_guard lock(mutex_);
        for (const auto& [address, b] : by_address_)
            f(*b);
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<backend>> by_address_;
    std::array<std::atomic<backend*>, capacity> slots_{};
    std::uint16_t next_id_ = 0;
};

} // namespace turnout::upstream
