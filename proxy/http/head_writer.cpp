#include "turnout/http/head_writer.hpp"

namespace turnout::http {

void head_writer::grow(std::size_t need)
{
    const auto used = static_cast<std::size_t>(at_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + need));
    at_ = out_.data() + used;
    end_ = out_.data() + out_.size();
}

} // namespace turnout::http
