#include "turnout/upstream/backend_registry.hpp"

#include <stdexcept>

namespace turnout::upstream {

std::shared_ptr<backend> backend_registry::obtain(const std::string& address,
                                                  const boost::asio::ip::tcp::endpoint& endpoint)
{
    std::lock_guard lock(mutex_);
    auto& b = by_address_[address];
    if (b)
        return b;
    if (next_id_ >= capacity) {
        by_address_.erase(address);
        throw std::length_error("too many distinct backends (65535) in one turnout process");
    }
    b = std::make_shared<backend>(address, endpoint, next_id_);
    slots_[next_id_].store(b.get(), std::memory_order_release);
    ++next_id_;
    return b;
}

std::shared_ptr<backend> backend_registry::find(const std::string& address) const
{
    std::lock_guard lock(mutex_);
    const auto it = by_address_.find(address);
    return it == by_address_.end() ? nullptr : it->second;
}

} // namespace turnout::upstream
