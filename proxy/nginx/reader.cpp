#include "turnout/nginx/reader.hpp"

#include <glob.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

namespace turnout::nginx {

namespace fs = std::filesystem;

namespace {

// Deep enough for any real configuration (nginx's own contexts nest four or five deep), and
// small enough that walking the tree recursively can never exhaust the stack.
constexpr std::size_t max_block_depth = 64;
constexpr int max_include_depth = 16;

std::string where(const std::string& file, int line)
{
    return file + ":" + std::to_string(line);
}

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// nginx's unescaping (ngx_conf_read_token): \" \' \\ \t \r \n; any other backslash stays.
std::string unescape(std::string_view raw)
{
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size()) {
            switch (raw[i + 1]) {
            case '"':
            case '\'':
            case '\\': out += raw[++i]; continue;
            case 't': out += '\t'; ++i; continue;
            case 'r': out += '\r'; ++i; continue;
            case 'n': out += '\n'; ++i; continue;
            default: break;
            }
        }
        out += raw[i];
    }
    return out;
}

class tokenizer {
public:
    tokenizer(std::string_view text, const std::string& file) : text_(text), file_(file) {}

    std::vector<directive> run()
    {
        std::vector<directive> top;
        std::vector<std::vector<directive>*> open{&top};
        std::vector<std::string> words;
        int first_line = 0;
        while (skip_blanks_and_comments()) {
            const char c = text_[pos_];
            if (c == ';' || c == '{') {
                if (words.empty())
                    fail(std::string("unexpected \"") + c + "\"");
                if (words.front().empty()) // "" as a name: nginx knows no such directive either
                    throw parse_error(file_, first_line, "unknown directive \"\"");
                ++pos_;
                directive d;
                d.name = std::move(words.front());
                d.args.assign(std::make_move_iterator(words.begin() + 1), std::make_move_iterator(words.end()));
                d.file = file_;
                d.line = first_line;
                d.has_block = c == '{';
                words.clear();
                open.back()->push_back(std::move(d));
                if (c == '{') {
                    if (open.size() > max_block_depth)
                        fail("blocks nested too deeply (more than " + std::to_string(max_block_depth) + ")");
                    open.push_back(&open.back()->back().block);
                }
                continue;
            }
            if (c == '}') {
                if (!words.empty() || open.size() == 1)
                    fail("unexpected \"}\"");
                ++pos_;
                open.pop_back();
                continue;
            }
            if (words.empty())
                first_line = line_;
            words.push_back(c == '"' || c == '\'' ? quoted_word(c) : bare_word());
        }
        if (!words.empty())
            fail("unexpected end of file, expecting \";\" or \"}\"");
        if (open.size() > 1)
            fail("unexpected end of file, expecting \"}\"");
        return top;
    }

private:
    [[noreturn]] void fail(const std::string& message) const { throw parse_error(file_, line_, message); }

    void advance()
    {
        if (text_[pos_] == '\n')
            ++line_;
        ++pos_;
    }

    // Skips white space and comments; false at the end of the text.
    bool skip_blanks_and_comments()
    {
        while (pos_ < text_.size()) {
            if (is_space(text_[pos_])) {
                advance();
            } else if (text_[pos_] == '#') {
                while (pos_ < text_.size() && text_[pos_] != '\n')
                    ++pos_;
            } else {
                return true;
            }
        }
        return false;
    }

    // "..." or '...': a backslash keeps the next character (the closing quote included) in the
    // word; after the closing quote comes a blank, ';' or '{' (nginx's "need space").
    std::string quoted_word(char quote)
    {
        const auto start = ++pos_;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            if (text_[pos_] == '\\' && pos_ + 1 < text_.size())
                advance();
            advance();
        }
        if (pos_ >= text_.size())
            fail("unexpected end of file, expecting \";\" or \"}\"");
        const auto raw = text_.substr(start, pos_ - start);
        ++pos_;
        if (pos_ < text_.size() && !is_space(text_[pos_]) && text_[pos_] != ';' && text_[pos_] != '{')
            fail(std::string("unexpected \"") + text_[pos_] + "\"");
        return unescape(raw);
    }

    // Up to a blank, ';' or '{' — except the '{' of "${name}". A backslash keeps the next
    // character; quotes and '#' inside a word are ordinary characters, as in nginx.
    std::string bare_word()
    {
        const auto start = pos_;
        bool dollar = false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == '\\') {
                if (pos_ + 1 >= text_.size())
                    fail("unexpected end of file, expecting \";\" or \"}\"");
                advance();
                advance();
                dollar = false;
                continue;
            }
            if (is_space(c) || c == ';' || (c == '{' && !dollar))
                break;
            dollar = c == '$';
            advance();
        }
        return unescape(text_.substr(start, pos_ - start));
    }

    std::string_view text_;
    const std::string& file_;
    std::size_t pos_ = 0;
    int line_ = 1;
};

std::string read_whole(const std::string& path, const std::string& from_file, int from_line)
{
    std::error_code ec;
    const auto fail = [&](const std::string& why) -> parse_error {
        return from_line > 0 ? parse_error(from_file, from_line, "cannot read \"" + path + "\": " + why)
                             : parse_error(path, 0, why);
    };
    if (fs::is_directory(path, ec))
        throw fail("is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw fail(std::strerror(errno));
    std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    if (in.bad())
        throw fail("read error");
    return text;
}

bool has_glob(std::string_view pattern)
{
    return pattern.find_first_of("*?[") != std::string_view::npos;
}

class includer {
public:
    explicit includer(fs::path prefix) : prefix_(std::move(prefix)) {}

    std::vector<directive> expand(std::vector<directive> in, int depth)
    {
        std::vector<directive> out;
        out.reserve(in.size());
        for (auto& d : in) {
            if (d.has_block)
                d.block = expand(std::move(d.block), depth);
            if (d.name != "include" || d.has_block) {
                out.push_back(std::move(d));
                continue;
            }
            if (d.args.size() != 1)
                throw parse_error(d.file, d.line, "invalid number of arguments in \"include\" directive");
            if (depth >= max_include_depth)
                throw parse_error(d.file, d.line,
                                  "includes nested too deeply (more than " + std::to_string(max_include_depth) +
                                      "; does a file include itself?)");
            std::vector<directive> read;
            for (const auto& file : files_of(d)) {
                auto inner = expand(parse(read_whole(file, d.file, d.line), file), depth + 1);
                d.included.push_back(file);
                read.insert(read.end(), std::make_move_iterator(inner.begin()), std::make_move_iterator(inner.end()));
            }
            out.push_back(std::move(d));
            out.insert(out.end(), std::make_move_iterator(read.begin()), std::make_move_iterator(read.end()));
        }
        return out;
    }

private:
    std::vector<std::string> files_of(const directive& d) const
    {
        const fs::path pattern{d.args.front()};
        const std::string full = (pattern.is_absolute() ? pattern : prefix_ / pattern).lexically_normal().string();
        if (!has_glob(full))
            return {full};
        glob_t g{};
        const int rc = ::glob(full.c_str(), 0, nullptr, &g);
        std::vector<std::string> files;
        if (rc == 0)
            for (std::size_t i = 0; i < g.gl_pathc; ++i)
                files.emplace_back(g.gl_pathv[i]); // sorted by glob()
        ::globfree(&g);
        if (rc == GLOB_NOSPACE)
            throw parse_error(d.file, d.line, "cannot expand \"" + full + "\"");
        return files;
    }

    fs::path prefix_;
};

} // namespace

parse_error::parse_error(std::string file, int line, const std::string& message)
    : std::runtime_error(line > 0 ? where(file, line) + ": " + message : file + ": " + message),
      file_(std::move(file)), line_(line)
{
}

std::string directive::text() const
{
    std::string out = name;
    for (const auto& a : args) {
        out += ' ';
        const bool quote = a.empty() || a.find_first_of(" \t\r\n;{}\"'") != std::string::npos;
        out += quote ? "\"" + a + "\"" : a;
    }
    return out;
}

std::vector<directive> parse(std::string_view text, const std::string& file)
{
    return tokenizer(text, file).run();
}

std::vector<directive> read_file(const std::string& path)
{
    std::error_code ec;
    auto prefix = fs::absolute(fs::path(path), ec).lexically_normal().parent_path();
    if (ec)
        throw parse_error(path, 0, "cannot resolve the file's folder: " + ec.message());
    return includer(std::move(prefix)).expand(parse(read_whole(path, path, 0), path), 0);
}

} // namespace turnout::nginx
