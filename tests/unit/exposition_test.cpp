// The Prometheus text exposition writer: HELP and TYPE once per family, label values escaped as
// the format requires, samples as the format spells them.

#include "turnout/metrics/exposition.hpp"
#include "turnout/metrics/proxy_metrics.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

using namespace turnout::metrics;

namespace {

std::size_t occurrences(const std::string& text, const std::string& what)
{
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("exposition: label values escape backslash, quote and newline, nothing else")
{
    CHECK(escape_label_value("plain-1.2_3") == "plain-1.2_3");
    CHECK(escape_label_value("a\\b") == "a\\\\b");
    CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
    CHECK(escape_label_value("two\nlines") == "two\\nlines");
    CHECK(escape_label_value("tab\tand ünïcode") == "tab\tand ünïcode");
    labels l;
    l.add("upstream", "mcp").add("version", "1.4 \"beta\"\n");
    CHECK(l.text() == "upstream=\"mcp\",version=\"1.4 \\\"beta\\\"\\n\"");
    const auto more = l.with("le", "+Inf");
    CHECK(more.text() == l.text() + ",le=\"+Inf\"");
    CHECK(l.text().find("le=") == std::string::npos); // with() leaves the original alone
}

TEST_CASE("exposition: HELP and TYPE once per family, however often it is declared")
{
    exposition out;
    out.family("turnout_x", family_type::gauge, "An x.");
    out.sample("turnout_x", labels{}.add("a", "1"), std::int64_t{3});
    out.family("turnout_x", family_type::gauge, "An x.");
    out.sample("turnout_x", labels{}.add("a", "2"), std::int64_t{-4});
    out.family("turnout_y_total", family_type::counter, "Ys.");
    out.sample("turnout_y_total", std::int64_t{7});
    const auto& text = out.text();
    CHECK(occurrences(text, "# HELP turnout_x ") == 1);
    CHECK(occurrences(text, "# TYPE turnout_x gauge\n") == 1);
    CHECK(text == "# HELP turnout_x An x.\n"
                  "# TYPE turnout_x gauge\n"
                  "turnout_x{a=\"1\"} 3\n"
                  "turnout_x{a=\"2\"} -4\n"
                  "# HELP turnout_y_total Ys.\n"
                  "# TYPE turnout_y_total counter\n"
                  "turnout_y_total 7\n");
}

TEST_CASE("exposition: histogram series and float values")
{
    exposition out;
    out.family("turnout_d_seconds", family_type::histogram, "Durations.");
    const auto l = labels{}.add("b", "x");
    out.sample("turnout_d_seconds_bucket", l.with("le", "0.5"), std::uint64_t{1});
    out.sample("turnout_d_seconds_bucket", l.with("le", "+Inf"), std::uint64_t{2});
    out.sample("turnout_d_seconds_sum", l, 0.75);
    out.sample("turnout_d_seconds_count", l, std::uint64_t{2});
    CHECK(out.take() == "# HELP turnout_d_seconds Durations.\n"
                        "# TYPE turnout_d_seconds histogram\n"
                        "turnout_d_seconds_bucket{b=\"x\",le=\"0.5\"} 1\n"
                        "turnout_d_seconds_bucket{b=\"x\",le=\"+Inf\"} 2\n"
                        "turnout_d_seconds_sum{b=\"x\"} 0.75\n"
                        "turnout_d_seconds_count{b=\"x\"} 2\n");
    exposition special;
    special.sample("v", labels{}, std::numeric_limits<double>::infinity());
    special.sample("v", labels{}, -std::numeric_limits<double>::infinity());
    CHECK(special.text() == "v +Inf\nv -Inf\n");
}

TEST_CASE("exposition: turnout's metrics declare each family once, its samples together")
{
    using namespace turnout;
    runtime::snapshot s;
    runtime::upstream_state u;
    u.config.name = "mcp";
    for (const auto& [pool, address, id] :
         {std::tuple{"blue", "127.0.0.1:3001", 0}, {"green", "127.0.0.1:3011", 1}}) {
        runtime::pool p;
        p.name = pool;
        p.version = "1.0 \"rc\"";
        p.backends.push_back(std::make_shared<upstream::backend>(address, boost::asio::ip::tcp::endpoint{},
                                                                 static_cast<std::uint16_t>(id)));
        u.pools.push_back(std::move(p));
    }
    u.pools[0].backends[0]->tool_calls().add("search", upstream::tool_outcome::ok);
    u.pools[0].backends[0]->tool_calls().add("search", upstream::tool_outcome::tool_error);
    u.pools[0].backends[0]->tool_calls().add("made_up_by_a_client", upstream::tool_outcome::ok);
    s.upstreams.push_back(std::move(u));
    runtime::runtime_state state;
    state.upstreams.push_back({"mcp", {}, std::nullopt, std::nullopt});
    state.upstreams[0].rollout = runtime::rollout_runtime{};
    state.upstreams[0].rollout->pool = "green";
    state.upstreams[0].rollout->steps = {{25, 1000}, {100, 0}};
    const std::map<std::string, std::array<std::uint64_t, 3>, std::less<>> verdicts{{"mcp", {4, 1, 2}}};
    const auto announced = [](const runtime::pool& p) {
        return p.name == "blue" ? std::vector<std::string>{"search"} : std::vector<std::string>{};
    };
    const auto text = metrics::render(s, {12, false, 3, 1, 2, 4}, {&state, &verdicts, announced});

    // Every sample line belongs to the family whose TYPE came last.
    std::string family;
    std::set<std::string> seen;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("# TYPE ", 0) == 0) {
            family = line.substr(7, line.find(' ', 7) - 7);
            CHECK_MESSAGE(seen.insert(family).second, family << " declared twice");
        } else if (line.rfind("# HELP ", 0) != 0) {
            const auto name = line.substr(0, line.find_first_of("{ "));
            CHECK_MESSAGE(name.rfind(family, 0) == 0, name << " outside its family " << family);
        }
    }
    CHECK(seen.size() == 29);
    // The runtime store: 1 while it answers, 0 while a shared one (etcd) is unreachable.
    CHECK(text.find("turnout_store_connected 1\n") != std::string::npos);
    CHECK(metrics::render(s, {12, false, 3, 1, 2, 4, nullptr, false}).find("turnout_store_connected 0\n") != std::string::npos);
    // Tool labels: announced names as they are, anything else folded into `other`.
    CHECK(text.find("turnout_tool_calls_total{upstream=\"mcp\",pool=\"blue\",version=\"1.0 \\\"rc\\\"\","
                    "tool=\"search\",outcome=\"tool_error\"} 1\n") != std::string::npos);
    CHECK(text.find("tool=\"other\",outcome=\"ok\"} 1\n") != std::string::npos);
    CHECK(text.find("made_up_by_a_client") == std::string::npos);
    CHECK(text.find("turnout_rollout_weight{upstream=\"mcp\",pool=\"green\"} 25\n") != std::string::npos);
    CHECK(text.find("turnout_rollout_state{upstream=\"mcp\",state=\"running\"} 1\n") != std::string::npos);
    CHECK(text.find("turnout_rollout_interval_verdicts_total{upstream=\"mcp\",verdict=\"fail\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("turnout_uptime_seconds 12\n") != std::string::npos);
    CHECK(text.find("turnout_backend_sessions{upstream=\"mcp\",pool=\"green\",backend=\"127.0.0.1:3011\","
                    "version=\"1.0 \\\"rc\\\"\"} 0\n") != std::string::npos);
    CHECK(text.find("turnout_backend_request_duration_seconds_bucket{upstream=\"mcp\",pool=\"blue\","
                    "backend=\"127.0.0.1:3001\",version=\"1.0 \\\"rc\\\"\",le=\"+Inf\"} 0\n") !=
          std::string::npos);
}
