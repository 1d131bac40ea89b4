#pragma once
// nginx's `return CODE [TEXT|URL]` and `return URL` as a turnout route's fixed answer: the
// status, the Location of a redirect or the text of a body, with the verdict and why of its
// report line. Which routes carry it is the translator's business.

#include "turnout/nginx/reader.hpp"
#include "turnout/nginx/toml_model.hpp"
#include "turnout/nginx/translator.hpp"

#include <optional>
#include <string>

namespace turnout::nginx {

struct return_translation {
    std::optional<toml_model::answer> answer; // nothing: not translated (what says why)
    verdict what = verdict::translated;
    std::string why; // what differs, or why not; the route is named by the caller
    bool malformed = false; // not a return nginx accepts: reported as an unknown directive
};

return_translation translate_return(const directive& d);

} // namespace turnout::nginx
