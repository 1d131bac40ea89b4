#pragma once
// The Prometheus text exposition format (version 0.0.4), written once for everything that
// emits metrics: each family's HELP and TYPE exactly once, before its first sample, however
// many places add samples to it; label values escaped as the format requires.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace turnout::metrics {

/// A label value with backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);

/// A label set, built once and reused for every family that shares it.
class labels {
public:
    labels() = default;
    labels& add(std::string_view name, std::string_view value);
    /// A copy with one more label (a histogram's le, a status class).
    labels with(std::string_view name, std::string_view value) const;
    /// name="value",... without the braces; empty for no labels.
    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
};

enum class family_type { gauge, counter, histogram };

class exposition {
public:
    /// Declares a family; HELP and TYPE are written the first time only.
    void family(std::string_view name, family_type type, std::string_view help);

    /// One sample of name (the family's name, or a histogram's name_bucket/_sum/_count).
    void sample(std::string_view name, const labels& l, std::int64_t value);
    void sample(std::string_view name, const labels& l, std::uint64_t value);
    void sample(std::string_view name, const labels& l, double value);
    void sample(std::string_view name, std::int64_t value) { sample(name, labels{}, value); }

    const std::string& text() const noexcept { return out_; }
    std::string take() noexcept { return std::move(out_); }

private:
    void begin_sample(std::string_view name, const labels& l);

    std::string out_;
    std::unordered_set<std::string> declared_;
};

} // namespace turnout::metrics
