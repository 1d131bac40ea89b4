#pragma once
// Tool compatibility between pools (SPEC.md "Health"): a pool's tools against a baseline pool's,
// tool by tool — added, removed, or with another input schema. Only a breaking change (a tool
// removed, an input schema changed) or a pool whose backends disagree keeps a pool from its
// first traffic unless forced; a version that only adds tools is a normal release.
//
// The baseline is always the caller's parameter: the pool with the highest weight by default
// (default_baseline), a rollout's baseline when one runs.

#include "turnout/control/pool_facts.hpp"
#include "turnout/runtime/snapshot.hpp"

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace turnout::control {

struct tool_changes {
    std::vector<std::string> added;   // names, sorted
    std::vector<std::string> removed; // names, sorted
    std::vector<std::string> changed; // names whose input schema differs, sorted

    bool breaking() const noexcept { return !removed.empty() || !changed.empty(); }
    bool empty() const noexcept { return added.empty() && !breaking(); }
};

/// How candidate differs from baseline (both sorted by name, one per name).
tool_changes compare_tools(std::span<const upstream::tool_signature> baseline,
                           std::span<const upstream::tool_signature> candidate);

/// A pool's tools and their changes against a baseline pool.
struct tool_compatibility {
    pool_tools tools;
    /// Of every backend of the pool that listed tools, against the baseline's tools: a backend
    /// that differs from its siblings shows what it would change too. Empty for the baseline
    /// itself, without a baseline, or while either side has no probed tools.
    tool_changes changes;
};

tool_compatibility compatibility(const runtime::pool& p, const runtime::pool* baseline);

/// The pool with the highest weight (> 0; the first of equals) other than excluding, or null:
/// the baseline when no rollout names one.
const runtime::pool* default_baseline(const runtime::upstream_state& u, const runtime::pool* excluding = nullptr);

/// Why target would break the clients of baseline (null: default_baseline(u, &target)), or
/// nullopt: its backends disagree on their tools, or against the baseline a tool is removed
/// or takes another input schema. Added tools are no reason. Unprobed tools are not judged.
std::optional<std::string> breaking_change(const runtime::upstream_state& u, const runtime::pool& target,
                                           const runtime::pool* baseline);

} // namespace turnout::control
