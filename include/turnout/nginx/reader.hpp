#pragma once
// A reader for nginx's configuration grammar: directives (`name arg ...;`), blocks
// (`name arg ... { ... }`), single and double quotes with nginx's escapes, `#` comments, and
// `include` with globs resolved against the prefix (the main file's folder). Variables stay
// text (`$host`, `${host}`): the reader knows no directive's meaning, the translator does.
// No C++ library reads this grammar; this one follows ngx_conf_read_token's rules.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::nginx {

/// Bad input: what() is "PATH:LINE: message", as nginx names the place of its own errors.
class parse_error : public std::runtime_error {
public:
    parse_error(std::string file, int line, const std::string& message);

    const std::string& file() const noexcept { return file_; }
    int line() const noexcept { return line_; }

private:
    std::string file_;
    int line_;
};

struct directive {
    std::string name;
    std::vector<std::string> args; // quotes removed, escapes resolved
    std::string file;              // where it was written (the main file as given; includes absolute)
    int line = 0;                  // the line of its name
    bool has_block = false;
    std::vector<directive> block;  // the directives inside { }, includes expanded
    /// `include` only: the files it read, in order (their directives follow it in the same list).
    std::vector<std::string> included;

    /// "name arg1 arg2" (args quoted where they hold spaces or are empty): for reports.
    std::string text() const;
};

/// Parses text as the content of file (named in errors). `include` is kept as a directive and
/// not followed. Throws parse_error.
std::vector<directive> parse(std::string_view text, const std::string& file);

/// Reads the file at path and every file its `include`s name (relative patterns against the
/// folder of path; globs expanded in sorted order, a glob that matches nothing is no error,
/// as in nginx). An `include` stays in the list, its files' directives right after it.
/// Throws parse_error (bad grammar, a file that cannot be read, includes nested too deep).
std::vector<directive> read_file(const std::string& path);

} // namespace turnout::nginx
