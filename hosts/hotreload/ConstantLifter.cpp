#include "ConstantLifter.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

namespace adac {

namespace {

bool identStart(char c) { return std::isalpha((unsigned char) c) || c == '_'; }
bool identChar(char c) { return std::isalnum((unsigned char) c) || c == '_' || c == '.'; }

// Calls whose arguments must stay compile-time constants (or are pattern-matched).
const std::set<std::string>& excludedContexts()
{
    static const std::set<std::string> names = {
        "hslider", "vslider", "nentry", "checkbox", "button", "hbargraph", "vbargraph", "soundfile",
        "waveform", "rdtable", "rwtable", "par", "seq", "sum", "prod", "route", "@", "case", "ffunction",
        "fconstant", "fvariable", "component", "library", "import", "declare", "ondemand", "upsampling",
        "downsampling"};
    return names;
}

}  // namespace

LiftedCode liftConstants(const std::string& src)
{
    LiftedCode out;
    std::string code, defs;
    std::string& skel = out.skeleton;
    code.reserve(src.size() + 64);
    skel.reserve(src.size());
    std::vector<std::string> stack;  // name in front of each open '(' / '{'
    int excludedDepth = 0;           // how many open frames are excluded contexts
    std::string lastToken;           // previous significant token (identifier, '#' for a number, or an operator)
    const size_t n = src.size();
    size_t i = 0;
    auto space = [&]() {
        if (!skel.empty() && skel.back() != ' ') skel.push_back(' ');
    };
    while (i < n) {
        const char c = src[i];
        if (c == '/' && i + 1 < n && src[i + 1] == '/') {  // line comment: kept in code, dropped from the skeleton
            const size_t end = src.find('\n', i);
            const size_t stop = end == std::string::npos ? n : end;
            code.append(src, i, stop - i);
            i = stop;
            space();
            continue;
        }
        if (c == '/' && i + 1 < n && src[i + 1] == '*') {
            const size_t end = src.find("*/", i + 2);
            const size_t stop = end == std::string::npos ? n : end + 2;
            code.append(src, i, stop - i);
            i = stop;
            space();
            continue;
        }
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && src[j] != '"') j += (src[j] == '\\' && j + 1 < n) ? 2 : 1;
            j = std::min(n, j + 1);
            code.append(src, i, j - i);
            skel.append(src, i, j - i);
            lastToken = "\"";
            i = j;
            continue;
        }
        if (std::isspace((unsigned char) c)) {
            code.push_back(c);
            space();
            ++i;
            continue;
        }
        if (identStart(c)) {
            size_t j = i;
            while (j < n && identChar(src[j])) ++j;
            lastToken = src.substr(i, j - i);
            code += lastToken;
            skel += lastToken;
            i = j;
            continue;
        }
        const bool digitAt = std::isdigit((unsigned char) c) || (c == '.' && i + 1 < n && std::isdigit((unsigned char) src[i + 1]));
        // a '-' directly in front of a number, where no operand precedes it, is the number's sign
        const bool signedNumber = c == '-' && i + 1 < n &&
                                  (std::isdigit((unsigned char) src[i + 1]) || (src[i + 1] == '.' && i + 2 < n && std::isdigit((unsigned char) src[i + 2]))) &&
                                  (lastToken.empty() || std::strchr("(,+*/:=<>^~!&|%", lastToken[0]) != nullptr) && lastToken != "\"";
        if (digitAt || signedNumber) {
            size_t j = signedNumber ? i + 1 : i;
            bool isFloat = false;
            while (j < n && std::isdigit((unsigned char) src[j])) ++j;
            if (j < n && src[j] == '.') {
                isFloat = true;
                ++j;
                while (j < n && std::isdigit((unsigned char) src[j])) ++j;
            }
            if (j < n && (src[j] == 'e' || src[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (src[k] == '+' || src[k] == '-')) ++k;
                if (k < n && std::isdigit((unsigned char) src[k])) {
                    isFloat = true;
                    j = k;
                    while (j < n && std::isdigit((unsigned char) src[j])) ++j;
                }
            }
            const std::string text = src.substr(i, j - i);
            const bool glued = j < n && identChar(src[j]);  // e.g. 1.0f or a malformed token: leave it alone
            const double value = std::strtod(text.c_str(), nullptr);
            if (isFloat && !glued && excludedDepth == 0 && std::isfinite(value) && std::fabs(value) <= 1e9) {
                const std::string name = std::string(kLiftPrefix) + std::to_string(out.values.size());
                code += name;
                skel += "#";
                char buffer[64];
                std::snprintf(buffer, sizeof buffer, "%.17g", value);
                defs += name + " = hgroup(\"" + kLiftGroup + "\", nentry(\"" + name + "\", " + buffer + ", -1e9, 1e9, 0));\n";
                out.values.push_back(value);
            } else {
                code += text;
                skel += text;
            }
            lastToken = "#";
            i = j;
            continue;
        }
        if (c == '(' || c == '{') {
            const bool excluded = excludedContexts().count(lastToken) > 0;
            stack.push_back(excluded ? "!" : lastToken);
            if (excluded) ++excludedDepth;
        } else if ((c == ')' || c == '}') && !stack.empty()) {
            if (stack.back() == "!") --excludedDepth;
            stack.pop_back();
        }
        code.push_back(c);
        skel.push_back(c);
        lastToken = std::string(1, c);
        ++i;
    }
    if (out.lifted()) {
        out.code = code + "\n// adac hot reload: lifted constants\n" + defs;
    } else {
        out.code = src;
    }
    return out;
}

}  // namespace adac
