#include "ConstantLifter.h"

#include <algorithm>
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

bool isWidget(const std::string& name) { return name == "hslider" || name == "vslider" || name == "nentry"; }

// A widget's label as FAUST passes it to the UI: the string without its quotes, metadata `[...]` removed,
// surrounding blanks trimmed.
std::string widgetLabel(const std::string& quoted)
{
    std::string label;
    int depth = 0;
    for (size_t k = 1; k + 1 < quoted.size(); ++k) {
        if (quoted[k] == '[') depth++;
        else if (quoted[k] == ']' && depth > 0) depth--;
        else if (depth == 0) label.push_back(quoted[k]);
    }
    const size_t first = label.find_first_not_of(" \t");
    const size_t last = label.find_last_not_of(" \t");
    return first == std::string::npos ? std::string() : label.substr(first, last - first + 1);
}

// The ring buffer a delay of n samples is compiled with: room for lengths up to the power of two >= 2n.
double capacityFor(long n)
{
    long c = 1;
    while (c < 2 * n) c <<= 1;
    return double(c);
}

// One open '(' or '{'.
struct Frame {
    bool excluded = false;
    int widget = -1;    // index in LiftedCode::widgets when the parentheses hold a widget's arguments
    int arg = 0;        // widget frames: the argument being read, its tokens, and its number literals
    int argTokens = 0;  // written to the skeleton as '$' (position, text)
    std::vector<std::pair<size_t, std::string>> placeholders;
    std::optional<double> number;
};

}  // namespace

LiftedCode liftConstants(const std::string& src)
{
    LiftedCode out;
    std::string code;
    std::vector<std::string> defs;  // of each lifted constant's name
    std::vector<std::pair<size_t, long>> lines;  // lifted delay lengths not paired yet: (index, length)
    std::string pairs;              // the pairings, for the skeleton
    std::string& skel = out.skeleton;
    code.reserve(src.size() + 64);
    skel.reserve(src.size());
    std::vector<Frame> stack;
    int excludedDepth = 0;           // how many open frames are excluded contexts
    std::string lastToken, prevToken;  // previous significant tokens (identifier, '#' for a number, '"', or an operator)
    const size_t n = src.size();
    size_t i = 0;
    auto space = [&]() {
        if (!skel.empty() && skel.back() != ' ') skel.push_back(' ');
    };
    auto note = [&](const std::string& token) {
        prevToken = lastToken;
        lastToken = token;
    };
    auto widgetFrame = [&]() -> Frame* { return !stack.empty() && stack.back().widget >= 0 ? &stack.back() : nullptr; };
    // a widget argument ends: a lone number literal stays a placeholder (and an init is noted); the numbers
    // of any other argument go back into the skeleton
    auto endArgument = [&](Frame& f) {
        if (f.argTokens == 1 && f.number) {
            if (f.arg == 1) out.widgets[f.widget].init = f.number;
        } else {
            for (auto it = f.placeholders.rbegin(); it != f.placeholders.rend(); ++it) skel.replace(it->first, 1, it->second);
        }
        f.arg++;
        f.argTokens = 0;
        f.placeholders.clear();
        f.number.reset();
    };
    auto name = [](size_t index) { return std::string(kLiftPrefix) + std::to_string(index); };
    auto control = [&](size_t index, const std::string& range) {  // the hidden control of a lifted constant
        return "hgroup(\"" + std::string(kLiftGroup) + "\", nentry(\"" + name(index) + "\", " + range + "))";
    };
    // a delay length's control: the length now, capacities from it
    auto delayControl = [&](size_t index, long length) {
        char range[64];
        std::snprintf(range, sizeof range, "%ld, %ld, %.0f, 1", length, kMinLiftedDelay, capacityFor(length));
        out.capacities.emplace_back(index, capacityFor(length));
        return "int(" + control(index, range) + ")";
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
            const std::string text = src.substr(i, j - i);
            code += text;
            if (prevToken == "declare" && lastToken.compare(0, 5, "adac_") == 0) skel += "\"$\"";  // adac's own metadata
            else skel += text;
            if (Frame* f = widgetFrame()) {
                if (f->arg == 0 && f->argTokens == 0) out.widgets[f->widget].label = widgetLabel(text);
                f->argTokens++;
            }
            note("\"");
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
            note(src.substr(i, j - i));
            code += lastToken;
            skel += lastToken;
            if (Frame* f = widgetFrame()) f->argTokens++;
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
            Frame* f = widgetFrame();
            if (f && !glued) {  // a widget's number: in the code as written, a placeholder in the skeleton
                code += text;
                f->placeholders.emplace_back(skel.size(), text);
                skel += "$";
                f->number = value;
                f->argTokens++;
            } else if (isFloat && !glued && excludedDepth == 0 && std::isfinite(value) && std::fabs(value) <= 1e9) {
                char buffer[64];
                std::snprintf(buffer, sizeof buffer, "%.17g", value);
                code += name(out.values.size());
                defs.push_back(control(defs.size(), std::string(buffer) + ", -1e9, 1e9, 0"));
                out.values.push_back(value);
                skel += "#";
            } else {
                code += text;
                skel += text;
                if (f) f->argTokens++;
            }
            note("#");
            i = j;
            continue;
        }
        if (c == '(' && lastToken == "@" && excludedDepth == 0) {  // `@(N)`: a delay length, lifted with a capacity
            size_t j = i + 1;
            while (j < n && (src[j] == ' ' || src[j] == '\t')) ++j;
            const size_t digits = j;
            while (j < n && std::isdigit((unsigned char) src[j])) ++j;
            const size_t digitsEnd = j;
            while (j < n && (src[j] == ' ' || src[j] == '\t')) ++j;
            const long length = digitsEnd > digits && digitsEnd - digits < 10 ? std::strtol(src.c_str() + digits, nullptr, 10) : -1;
            if (j < n && src[j] == ')' && length >= kMinLiftedDelay && length <= kMaxLiftedDelay) {
                const size_t index = out.values.size();
                // an FDN's line is read twice: in the loop one sample short (the loop's `~` adds it) and at its
                // output. Written as one control (the shorter = the longer - 1), FAUST reads the line once per sample.
                auto partner = std::find_if(lines.begin(), lines.end(), [&](auto& line) { return std::labs(line.second - length) == 1; });
                defs.emplace_back();
                if (partner != lines.end()) {
                    const size_t other = partner->first;
                    const bool longer = length > partner->second;
                    const size_t shorter = longer ? other : index, held = longer ? index : other;
                    out.capacities.erase(std::remove_if(out.capacities.begin(), out.capacities.end(),
                                                        [&](auto& c) { return c.first == other; }),
                                         out.capacities.end());
                    defs[held] = delayControl(held, std::max(length, partner->second));
                    defs[shorter] = name(held) + " - 1";
                    pairs += " " + std::to_string(shorter) + "=" + std::to_string(held) + "-1";
                    lines.erase(partner);
                } else {
                    defs[index] = delayControl(index, length);
                    lines.emplace_back(index, length);
                }
                out.values.push_back(double(length));
                code += "(" + name(index) + ")";
                skel += "(%)";
                note(")");
                i = j + 1;
                continue;
            }
        }
        if (Frame* f = widgetFrame()) {
            if (c == ',') endArgument(*f);
            else if (c != ')') f->argTokens++;
        }
        if (c == '(' || c == '{') {
            Frame frame;
            frame.excluded = excludedContexts().count(lastToken) > 0;
            if (c == '(' && isWidget(lastToken)) {
                frame.widget = int(out.widgets.size());
                out.widgets.emplace_back();
            }
            if (frame.excluded) ++excludedDepth;
            stack.push_back(std::move(frame));
        } else if ((c == ')' || c == '}') && !stack.empty()) {
            if (stack.back().widget >= 0) endArgument(stack.back());
            if (stack.back().excluded) --excludedDepth;
            stack.pop_back();
        }
        code.push_back(c);
        skel.push_back(c);
        note(std::string(1, c));
        ++i;
    }
    if (!pairs.empty()) skel += "\npaired delays:" + pairs;
    if (out.lifted()) {
        out.code = code + "\n// adac hot reload: lifted constants\n";
        for (size_t k = 0; k < defs.size(); ++k) out.code += name(k) + " = " + defs[k] + ";\n";
    } else {
        out.code = src;
    }
    return out;
}

}  // namespace adac
