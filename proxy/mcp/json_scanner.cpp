#include "turnout/mcp/json_scanner.hpp"

namespace turnout::mcp {
namespace {

constexpr bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

constexpr bool is_literal_char(char c) noexcept
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '+' || c == '.';
}

constexpr bool starts_literal(char c) noexcept
{
    return (c >= '0' && c <= '9') || c == '-' || c == 't' || c == 'f' || c == 'n';
}

constexpr int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace

json_event json_scanner::fail() noexcept
{
    state_ = state::error;
    return json_event::error;
}

json_event json_scanner::open(bool object) noexcept
{
    if (depth_ == max_depth)
        return fail();
    if (object)
        objects_ |= 1u << depth_;
    else
        objects_ &= ~(1u << depth_);
    ++depth_;
    state_ = object ? state::first_key : state::first_value;
    return object ? json_event::begin_object : json_event::begin_array;
}

json_event json_scanner::close(bool object) noexcept
{
    --depth_;
    return value_ended(object ? json_event::end_object : json_event::end_array);
}

json_event json_scanner::value_ended(json_event e) noexcept
{
    state_ = depth_ == 0 ? state::done : state::after_value;
    return e;
}

void json_scanner::append(char c)
{
    if (text_.size() < max_text_)
        text_.push_back(c);
    else
        truncated_ = true;
}

void json_scanner::append_code_point(std::uint32_t cp)
{
    if (cp < 0x80) {
        append(static_cast<char>(cp));
    } else if (cp < 0x800) {
        append(static_cast<char>(0xC0 | (cp >> 6)));
        append(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        append(static_cast<char>(0xE0 | (cp >> 12)));
        append(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        append(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        append(static_cast<char>(0xF0 | (cp >> 18)));
        append(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        append(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        append(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

json_event json_scanner::next()
{
    const auto consume = [this](std::size_t n) {
        input_.remove_prefix(n);
        offset_ += n;
    };
    while (true) {
        if (state_ == state::done)
            return json_event::done;
        if (state_ == state::error)
            return json_event::error;
        if (input_.empty())
            return json_event::need_more;
        const char c = input_.front();
        switch (state_) {
        case state::in_string: {
            // Runs of plain characters are copied (up to max_text) in one go.
            const auto stop = input_.find_first_of("\"\\");
            const auto run = input_.substr(0, stop);
            for (const char r : run) {
                if (static_cast<unsigned char>(r) < 0x20)
                    return fail(); // control characters must be escaped
                append(r);
            }
            consume(run.size());
            if (input_.empty())
                continue;
            const char end = input_.front();
            consume(1);
            if (end == '\\') {
                state_ = state::in_escape;
                continue;
            }
            if (string_is_key_) {
                state_ = state::colon;
                return json_event::key;
            }
            return value_ended(json_event::string);
        }
        case state::in_escape: {
            consume(1);
            state_ = state::in_string;
            switch (c) {
            case '"': case '\\': case '/': append(c); break;
            case 'b': append('\b'); break;
            case 'f': append('\f'); break;
            case 'n': append('\n'); break;
            case 'r': append('\r'); break;
            case 't': append('\t'); break;
            case 'u':
                state_ = state::in_unicode;
                unicode_digits_ = 0;
                unicode_ = 0;
                break;
            default: return fail();
            }
            continue;
        }
        case state::in_unicode: {
            const int v = hex_value(c);
            if (v < 0)
                return fail();
            consume(1);
            unicode_ = unicode_ << 4 | static_cast<std::uint32_t>(v);
            if (++unicode_digits_ < 4)
                continue;
            state_ = state::in_string;
            if (unicode_ >= 0xD800 && unicode_ <= 0xDBFF) {
                high_surrogate_ = unicode_; // its low half follows as another escape
            } else if (unicode_ >= 0xDC00 && unicode_ <= 0xDFFF && high_surrogate_ != 0) {
                append_code_point(0x10000 + ((high_surrogate_ - 0xD800) << 10) + (unicode_ - 0xDC00));
                high_surrogate_ = 0;
            } else {
                append_code_point(unicode_ >= 0xD800 && unicode_ <= 0xDFFF ? 0xFFFD : unicode_);
                high_surrogate_ = 0;
            }
            continue;
        }
        case state::in_literal:
            if (is_literal_char(c)) {
                append(c);
                consume(1);
                continue;
            }
            if (is_space(c) || c == ',' || c == ']' || c == '}')
                return value_ended(json_event::literal);
            return fail();
        default:
            break;
        }

        // Between tokens.
        if (is_space(c)) {
            consume(1);
            continue;
        }
        switch (state_) {
        case state::value:
        case state::first_value:
            if (c == '{' || c == '[') {
                consume(1);
                return open(c == '{');
            }
            if (c == ']' && state_ == state::first_value) {
                consume(1);
                return close(false);
            }
            text_.clear();
            truncated_ = false;
            if (c == '"') {
                consume(1);
                string_is_key_ = false;
                high_surrogate_ = 0;
                state_ = state::in_string;
                continue;
            }
            if (starts_literal(c)) {
                state_ = state::in_literal;
                continue;
            }
            return fail();
        case state::key:
        case state::first_key:
            if (c == '"') {
                consume(1);
                text_.clear();
                truncated_ = false;
                string_is_key_ = true;
                high_surrogate_ = 0;
                state_ = state::in_string;
                continue;
            }
            if (c == '}' && state_ == state::first_key) {
                consume(1);
                return close(true);
            }
            return fail();
        case state::colon:
            if (c != ':')
                return fail();
            consume(1);
            state_ = state::value;
            continue;
        case state::after_value:
            consume(1);
            if (c == ',') {
                state_ = in_object() ? state::key : state::value;
                continue;
            }
            if (c == '}' && in_object())
                return close(true);
            if (c == ']' && !in_object())
                return close(false);
            return fail();
        default:
            return fail();
        }
    }
}

} // namespace turnout::mcp
