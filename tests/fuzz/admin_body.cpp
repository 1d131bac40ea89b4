// libFuzzer target: admin::handle_request (the admin API's routing and request-body checks,
// rollout bodies included) with a control that accepts everything.
//
// Input: byte 0 picks the method, byte 1 the route (with the input's next path segment in
// place of the upstream); the rest is the request body.
//
// Invariants: every request gets an answer, never an exception or a crash; an answer that is
// not 2xx carries {"error": "<sentence>"} with a non-empty sentence; a body the route refused
// (4xx) never reached control.

#include "fuzz_support.hpp"

#include "turnout/admin/admin_api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/src.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace turnout::admin;
namespace json = boost::json;

namespace {

/// Accepts every change; counts the calls that reached it.
class accepting_control : public control {
public:
    json::object status() const override { return {{"version", "0.1.0"}}; }
    std::string metrics() const override { return "turnout_up 1\n"; }
    bool ready() const override { return true; }
    result set_weights(std::string_view, const std::vector<std::pair<std::string, std::int64_t>>&, bool) override
    {
        return hit();
    }
    result switch_to(std::string_view, std::string_view, bool) override { return hit(); }
    result rollback(std::string_view) override { return hit(); }
    result drain(std::string_view, std::string_view, std::optional<turnout::config::duration>) override { return hit(); }
    result undrain(std::string_view, std::string_view) override { return hit(); }
    result drain_backend(std::string_view, std::string_view, std::string_view address,
                         std::optional<turnout::config::duration>) override
    {
        FUZZ_CHECK(!address.empty());
        return hit();
    }
    result undrain_backend(std::string_view, std::string_view, std::string_view address) override
    {
        FUZZ_CHECK(!address.empty());
        return hit();
    }
    result set_backends(std::string_view, std::string_view, const std::vector<std::string>&) override { return hit(); }
    result watch_switch(std::string_view, std::string_view, bool, turnout::config::duration) override { return hit(); }
    result start_rollout(std::string_view, const turnout::control::rollout_request& r) override
    {
        FUZZ_CHECK(!r.pool.empty());
        return hit();
    }
    result rollout(std::string_view) override { return hit(); }
    result rollout_command(std::string_view, turnout::control::rollout_command) override { return hit(); }
    result reload() override { return hit(); }
    result upgrade(const std::optional<std::string>&) override { return hit(); }

    unsigned calls = 0;

private:
    result hit()
    {
        ++calls;
        return result::ok();
    }
};

constexpr std::array<std::string_view, 4> methods{"GET", "POST", "PUT", "DELETE"};
constexpr std::array<std::string_view, 14> routes{
    "/v1/status", "/v1/upstreams/{u}/weights", "/v1/upstreams/{u}/switch", "/v1/upstreams/{u}/rollback",
    "/v1/upstreams/{u}/pools/blue/drain", "/v1/upstreams/{u}/pools/blue/undrain", "/v1/upstreams/{u}/pools/blue/backends",
    "/v1/upstreams/{u}/pools/blue/backends/127.0.0.1%3A3001/drain",
    "/v1/upstreams/{u}/pools/blue/backends/%5B%3A%3A1%5D:3001/undrain",
    "/v1/upstreams/{u}/rollout", "/v1/upstreams/{u}/rollout/promote", "/v1/reload", "/v1/upgrade", "/metrics"};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return 0;
    const auto method = methods[data[0] % methods.size()];
    std::string target(routes[data[1] % routes.size()]);
    const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
    if (const auto at = target.find("{u}"); at != std::string::npos)
        target.replace(at, 3, data[1] >= 128 ? "mcp" : "m%2Fc");

    accepting_control c;
    const auto answer = handle_request(c, method, target, body);
    FUZZ_CHECK(answer.status >= 200 && answer.status < 600);
    if (answer.status >= 300 && answer.content_type == "application/json") {
        boost::system::error_code ec;
        const auto v = json::parse(answer.body, ec);
        FUZZ_CHECK(!ec && v.is_object());
        const auto* error = v.get_object().if_contains("error");
        FUZZ_CHECK(error && error->is_string() && !error->get_string().empty());
    }
    if (answer.status >= 400 && answer.status < 500)
        FUZZ_CHECK(c.calls == 0);
    return 0;
}
