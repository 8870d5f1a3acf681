// A mutation fuzz driver for the runtime's loader (issue 22): the loader reads files from disk and watched paths,
// so any text must either load or be refused with adac::runtime::Error, and a loaded model must play.
//
//   adac-runtime-fuzz-load [--runs N] [--seed S] [--only I] [--dump I] [--samples N] [--crash FILE] [--report N]
//                          [--reasons] SEED.json...
//
// Mutant i (of N) is made from one seed document by 1-4 stacked mutations drawn from an RNG seeded by (S, i), so
// `--only I` replays exactly mutant I and `--dump I` writes its text to stdout. Mutations: on the parsed document
// (numbers replaced by huge / negative / -0 / NaN-like / 1e400 / integer tokens or scaled, strings and kinds
// replaced, values of the wrong type, keys deleted, arrays shrunk / grown / emptied, "in"/"out" and sizes made
// huge, nodes swapped / copied / wrapped in deep series or in delay-free loops) and on its text (bit flips,
// truncation, spans deleted / duplicated / spliced from another seed, deep brackets, stray bytes).
// Each mutant goes to load(); a loaded one plays in Processor<float> and Processor<double> (maxBlock 64, blocks of
// 1..150 samples of noise, the macro-controls moved, including out of range and NaN).
//
// Failures (exit 1): any exception other than adac::runtime::Error, a refusal whose message is empty, overlong or
// not printable ASCII, an unmutated seed refused or not finite.
// Sanitizer reports abort the process (built with -fno-sanitize-recover); the mutant is then written to --crash.
// A mutant whose output is not finite is reported (a mutated model may be legitimately unstable); the last line
// on stdout is a summary: `mutants N loaded L refused R played P nonfinite F failures X` (--report N lists up to N
// non-finite mutants with their peaks, --reasons tallies the refusals' messages).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "adac/runtime/model.h"
#include "adac/runtime/processor.h"

#if defined(__has_include)
#if __has_include(<sanitizer/common_interface_defs.h>) && (defined(__SANITIZE_ADDRESS__) || defined(ADAC_FUZZ_SANITIZED))
#include <sanitizer/common_interface_defs.h>
#define ADAC_FUZZ_DEATH_CALLBACK 1
#endif
#endif

using nlohmann::json;
namespace rt = adac::runtime;

namespace {

// ------------------------------------------------------------------------------------------------------------
// randomness (its own helpers: the same mutants on every standard library)

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    uint64_t next() { return g(); }
    size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
    bool chance(double p) { return double(next() >> 11) * (1.0 / 9007199254740992.0) < p; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * (double(next() >> 11) * (1.0 / 9007199254740992.0)); }
    template <class T> const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

// Raw number tokens (some are not JSON, some overflow, some are not integers): written into the text as is.
const std::vector<std::string> kTokens = {
    "1e400", "-1e400", "NaN", "nan", "Infinity", "-Infinity", "1e309", "-0", "-0.0", "4.9e-324", "1e-400",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "1e999999999", "0x10", "01", "1.", ".5", "+1", "2147483647", "2147483648",
    "-2147483649", "1e9", "1000000000", "4194304", "4194305", "4194303.5", "33554432", "1024", "1025", "0", "1",
    "-1", "0.5", "1.0", "2", "3", "8", "15", "255", "256", "1e38", "3.5e38", "1e300", "-1e300", "1e-45",
    "2.5e-308", "1e-320", "0.999999", "1.000001", "100000", "1e6", "3.4028235e38", "1.7976931348623157e308"};

const std::vector<std::string> kKinds = {"series", "parallel", "recursion", "delay", "gain_delay", "gain",
                                         "householder", "fir", "sos", "Delay", "unknown", "", "series ",
                                         "gain\u00e9", "lowpass", "node", "graph"};

const std::vector<std::string> kKeys = {"kind", "in", "out", "diagonal", "integer", "samples", "gains", "matrix",
                                        "u", "taps", "sections", "children", "sum_output", "feedforward", "feedback",
                                        "path", "format", "version", "fs", "input_channels", "output_channels",
                                        "graph", "realisation", "fractional_order", "controls", "rt60", "dry_wet",
                                        "pre_delay", "default", "min", "max", "trained", "gamma_max", "law", "name"};

json wrongType(Rng& r)
{
    switch (r.below(12)) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return false;
    case 3: return "";
    case 4: return "x";
    case 5: return json::array();
    case 6: return json::object();
    case 7: return json::array({1});
    case 8: return json{{"kind", "gain"}};
    case 9: return "1";
    case 10: return 1.5;
    default: return json::array({json::array({0.5})});
    }
}

// a raw token in the tree: a string marked so that the dump writes the token itself (see rawTokens)
json raw(const std::string& token) { return "@@RAW:" + token + "@@"; }

std::string rawTokens(std::string text)
{
    const std::string open = "\"@@RAW:", close = "@@\"";
    for (size_t at = text.find(open); at != std::string::npos; at = text.find(open, at)) {
        const size_t end = text.find(close, at + open.size());
        if (end == std::string::npos) break;
        const std::string token = text.substr(at + open.size(), end - at - open.size());
        text.replace(at, end + close.size() - at, token);
        at += token.size();
    }
    return text;
}

// ------------------------------------------------------------------------------------------------------------
// the parsed document: every value by its JSON pointer

struct Place {
    std::string pointer;
    json::value_t type;
    bool node;  // an object with a "kind"
};

std::string escapeKey(const std::string& key)
{
    std::string out;
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

void walkAll(const json& j, const std::string& pointer, std::vector<Place>& out)
{
    out.push_back({pointer, j.type(), j.is_object() && j.contains("kind")});
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) walkAll(*it, pointer + "/" + escapeKey(it.key()), out);
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) walkAll(j[i], pointer + "/" + std::to_string(i), out);
    }
}

std::vector<const Place*> select(const std::vector<Place>& places, bool (*keep)(const Place&))
{
    std::vector<const Place*> out;
    for (const Place& p : places)
        if (keep(p)) out.push_back(&p);
    return out;
}

json& at(json& doc, const std::string& pointer) { return doc[json::json_pointer(pointer)]; }

bool isPrefix(const std::string& a, const std::string& b)  // a is b or an ancestor of b
{
    return b.compare(0, a.size(), a) == 0 && (b.size() == a.size() || b[a.size()] == '/');
}

// a node of `in` x `out` channels that passes its input through (or, for a loop's feedback, cuts it)
json gainNode(int in, int out, double value, const std::string& path)
{
    json m = json::array();
    for (int o = 0; o < out; ++o) {
        json row = json::array();
        for (int i = 0; i < in; ++i) row.push_back(i == o ? value : 0.0);
        m.push_back(row);
    }
    return {{"kind", "gain"}, {"path", path}, {"in", in}, {"out", out}, {"diagonal", false}, {"matrix", m}};
}

int channels(const json& node, const char* key)
{
    auto it = node.find(key);
    if (it == node.end() || !it->is_number_integer()) return 1;
    return int(std::clamp<long long>(it->get<long long>(), 1, 64));
}

// one mutation of the parsed document
void mutateTree(json& doc, Rng& r)
{
    std::vector<Place> places;
    walkAll(doc, "", places);
    auto numbers = select(places, [](const Place& p) {
        return p.type == json::value_t::number_float || p.type == json::value_t::number_integer ||
               p.type == json::value_t::number_unsigned;
    });
    auto strings = select(places, [](const Place& p) { return p.type == json::value_t::string; });
    auto arrays = select(places, [](const Place& p) { return p.type == json::value_t::array; });
    auto objects = select(places, [](const Place& p) { return p.type == json::value_t::object; });
    auto nodes = select(places, [](const Place& p) { return p.node; });
    const Place* any = &places[r.below(places.size())];

    switch (r.below(18)) {
    case 0:
    case 1:  // a number becomes a raw token
        if (!numbers.empty()) at(doc, r.pick(numbers)->pointer) = raw(r.pick(kTokens));
        return;
    case 2:
    case 3: {  // a number scaled, negated, zeroed, nudged
        if (numbers.empty()) return;
        json& v = at(doc, r.pick(numbers)->pointer);
        const double x = v.get<double>();
        static const double factors[] = {-1, 0, 0.5, 2, 10, 1e6, 1e-6, 1 + 1e-7, 1.5, 100, -1e3};
        const double f = factors[r.below(sizeof factors / sizeof *factors)];
        if (r.chance(0.3)) v = std::round(x * f);
        else if (r.chance(0.3)) v = x + double(int(r.below(7)) - 3);
        else v = x * f;
        return;
    }
    case 4: {  // a string replaced (kinds, other fields' strings)
        if (strings.empty()) return;
        const Place* p = r.pick(strings);
        json& v = at(doc, p->pointer);
        if (r.chance(0.6)) v = r.pick(kKinds);
        else v = std::string(size_t(1) << r.below(12), 'a');
        return;
    }
    case 5: {  // a node's kind replaced
        if (nodes.empty()) return;
        at(doc, r.pick(nodes)->pointer)["kind"] = r.pick(kKinds);
        return;
    }
    case 6: {  // any value of the wrong type (or a raw token)
        if (any->pointer.empty()) return;
        at(doc, any->pointer) = r.chance(0.7) ? wrongType(r) : raw(r.pick(kTokens));
        return;
    }
    case 7: {  // a key deleted, or an unknown / known key added
        if (objects.empty()) return;
        json& o = at(doc, r.pick(objects)->pointer);
        if (!o.empty() && r.chance(0.6)) {
            auto it = o.begin();
            std::advance(it, long(r.below(o.size())));
            o.erase(it);
        } else {
            o[r.pick(kKeys)] = r.chance(0.5) ? wrongType(r) : raw(r.pick(kTokens));
        }
        return;
    }
    case 8: {  // an array shrunk, grown, emptied, repeated, nested
        if (arrays.empty()) return;
        json& a = at(doc, r.pick(arrays)->pointer);
        switch (r.below(6)) {
        case 0:
            if (!a.empty()) a.erase(a.begin() + long(r.below(a.size())));
            break;
        case 1:
            if (!a.empty()) a.push_back(a[r.below(a.size())]);
            break;
        case 2: a = json::array(); break;
        case 3: {
            if (a.empty()) break;
            const size_t times = 2 + r.below(100);
            json grown = json::array();
            for (size_t t = 0; t < times && grown.size() < 100000; ++t)
                for (const json& x : a) grown.push_back(x);
            a = grown;
            break;
        }
        case 4: a = json::array({a}); break;
        default:
            if (a.size() > 1) std::swap(a[0], a[a.size() - 1]);
        }
        return;
    }
    case 9: {  // "in" / "out" / the document's channels or rate made huge, zero, negative, off by one
        if (nodes.empty()) return;
        static const std::vector<std::string> sizes = {"in", "out"};
        json& n = r.chance(0.2) ? doc : at(doc, r.pick(nodes)->pointer);
        const char* key = &n == &doc ? (r.chance(0.4) ? "input_channels" : r.chance(0.5) ? "output_channels" : "fs")
                                     : r.pick(sizes).c_str();
        static const std::vector<std::string> huge = {"1000000000", "0", "-1", "1025", "1024", "2147483648",
                                                      "4294967297", "1e9", "1.5", "-0", "18446744073709551615"};
        if (r.chance(0.5) && n.contains(key) && n[key].is_number_integer()) n[key] = n[key].get<long long>() + (r.chance(0.5) ? 1 : -1);
        else n[key] = raw(r.pick(huge));
        return;
    }
    case 10: {  // two disjoint nodes swapped
        if (nodes.size() < 2) return;
        const Place *a = r.pick(nodes), *b = r.pick(nodes);
        if (isPrefix(a->pointer, b->pointer) || isPrefix(b->pointer, a->pointer)) return;
        json copy = at(doc, a->pointer);
        at(doc, a->pointer) = at(doc, b->pointer);
        at(doc, b->pointer) = copy;
        return;
    }
    case 11: {  // a node replaced by a copy of another (maybe its own ancestor: the graph grows)
        if (nodes.empty()) return;
        json copy = at(doc, r.pick(nodes)->pointer);
        at(doc, r.pick(nodes)->pointer) = copy;
        return;
    }
    case 12: {  // a node wrapped in a deep series (some beyond the depth limit)
        if (nodes.empty()) return;
        json& n = at(doc, r.pick(nodes)->pointer);
        static const size_t depths[] = {1, 2, 10, 45, 49, 50, 51, 99, 101, 150};
        const size_t depth = depths[r.below(sizeof depths / sizeof *depths)];
        json wrapped = n;
        const json in = n.contains("in") ? n["in"] : json(1), out = n.contains("out") ? n["out"] : json(1);
        for (size_t d = 0; d < depth; ++d)
            wrapped = json{{"kind", "series"}, {"path", "wrap" + std::to_string(d)}, {"in", in}, {"out", out},
                           {"children", json::array({std::move(wrapped)})}};
        n = std::move(wrapped);
        return;
    }
    case 13: {  // a node put in a loop: delay-free (refused), or through a delay
        if (nodes.empty()) return;
        json& n = at(doc, r.pick(nodes)->pointer);
        const int in = channels(n, "in"), out = channels(n, "out");
        json feedback = gainNode(out, in, r.chance(0.5) ? 0.5 : 0.0, "loop.feedback");
        if (r.chance(0.5)) {
            json samples = json::array();
            for (int c = 0; c < in; ++c) samples.push_back(r.chance(0.7) ? double(1 + r.below(70)) : r.uniform(0, 3));
            feedback = json{{"kind", "series"}, {"path", "loop.fb"}, {"in", out}, {"out", in},
                            {"children", json::array({feedback, json{{"kind", "delay"}, {"path", "loop.fb.delay"},
                                                                     {"in", in}, {"out", in}, {"diagonal", true},
                                                                     {"integer", false}, {"samples", samples}}})}};
        }
        n = json{{"kind", "recursion"}, {"path", "loop"}, {"in", in}, {"out", out}, {"feedforward", n}, {"feedback", feedback}};
        return;
    }
    case 14: {  // a delay's length or a filter's size made huge
        if (nodes.empty()) return;
        json& n = at(doc, r.pick(nodes)->pointer);
        static const std::vector<std::string> delays = {"4194304", "4194305", "4194303.7", "1e7", "33554432",
                                                        "1e300", "-1", "-0", "0.000001", "1e-300", "2097152.5"};
        if (n.contains("samples") && n["samples"].is_array() && !n["samples"].empty()) {
            json& s = n["samples"];
            json& first = s[r.below(s.size())];
            if (first.is_array() && !first.empty()) first[r.below(first.size())] = raw(r.pick(delays));
            else first = raw(r.pick(delays));
        } else if (n.contains("taps") && n["taps"].is_array() && !n["taps"].empty()) {
            json& t = n["taps"];
            const size_t times = r.chance(0.5) ? 2 + r.below(50) : 1000 + r.below(5000);
            const json tap = t[0];
            for (size_t k = 0; k < times; ++k) t.push_back(tap);
        } else if (n.contains("sections") && n["sections"].is_array() && !n["sections"].empty()) {
            json& s = n["sections"];
            const size_t times = r.chance(0.5) ? 2 + r.below(20) : 4100;
            const json section = s[0];
            for (size_t k = 0; k < times; ++k) s.push_back(section);
        }
        return;
    }
    case 15: {  // the realisation's fields
        json& real = doc["realisation"];
        if (!real.is_object()) real = json::object();
        if (r.chance(0.4)) {
            static const std::vector<std::string> orders = {"0", "1", "2", "3", "15", "31", "64", "128", "254", "255", "256", "-1", "1.5", "1e9"};
            real["fractional_order"] = raw(r.pick(orders));
        } else {
            json& controls = real["controls"];
            if (!controls.is_object()) controls = json::object();
            static const std::vector<std::string> names = {"rt60", "dry_wet", "pre_delay", "bogus"};
            static const std::vector<std::string> fields = {"default", "min", "max", "trained", "gamma_max", "law"};
            json& c = controls[r.pick(names)];
            if (!c.is_object()) c = json::object();
            c[r.pick(fields)] = r.chance(0.5) ? raw(r.pick(kTokens)) : (r.chance(0.5) ? json(r.uniform(-2, 200)) : wrongType(r));
        }
        return;
    }
    case 16: {  // a node's "diagonal" / "integer" / "sum_output" flipped
        if (nodes.empty()) return;
        json& n = at(doc, r.pick(nodes)->pointer);
        for (const char* key : {"diagonal", "integer", "sum_output"})
            if (n.contains(key) && n[key].is_boolean()) {
                n[key] = !n[key].get<bool>();
                return;
            }
        n["diagonal"] = r.chance(0.5);
        return;
    }
    default: {  // the root replaced by something else
        if (r.chance(0.3)) {
            doc = wrongType(r);
        } else if (doc.is_object() && doc.contains("graph")) {
            doc["graph"] = r.chance(0.5) ? wrongType(r) : json(nullptr);
        }
        return;
    }
    }
}

// one mutation of the text
void mutateText(std::string& text, Rng& r, const std::vector<std::string>& seeds)
{
    if (text.empty()) {
        text = "{";
        return;
    }
    const size_t n = text.size();
    switch (r.below(10)) {
    case 0: {  // bit flips
        const size_t flips = 1 + r.below(4);
        for (size_t f = 0; f < flips; ++f) text[r.below(n)] ^= char(1u << r.below(8));
        return;
    }
    case 1: {  // a byte set to a JSON-significant or odd byte
        static const char bytes[] = "{}[],:\"-0123456789eE.+ \\\ttnfu";
        char c = r.chance(0.15) ? char(r.below(256)) : bytes[r.below(sizeof bytes - 1)];
        text[r.below(n)] = c;
        return;
    }
    case 2:  // truncation
        text.resize(r.below(n));
        return;
    case 3: {  // a span deleted
        const size_t a = r.below(n), len = 1 + r.below(std::min<size_t>(n - a, r.chance(0.5) ? 16 : 4096));
        text.erase(a, len);
        return;
    }
    case 4: {  // a span duplicated
        const size_t a = r.below(n), len = 1 + r.below(std::min<size_t>(n - a, 2048));
        text.insert(r.below(n + 1), text.substr(a, len));
        return;
    }
    case 5: {  // a span of another seed spliced in
        const std::string& other = r.pick(seeds);
        if (other.empty()) return;
        const size_t a = r.below(other.size()), len = 1 + r.below(std::min<size_t>(other.size() - a, 2048));
        const size_t where = r.below(n + 1), cut = r.below(std::min<size_t>(n - std::min(n, where) + 1, 64));
        text.replace(where, cut, other.substr(a, len));
        return;
    }
    case 6: {  // deep brackets somewhere (or around a value)
        static const size_t depths[] = {50, 99, 100, 101, 1000, 10000, 100000};
        const size_t depth = depths[r.below(sizeof depths / sizeof *depths)];
        const char open = r.chance(0.5) ? '[' : '{';
        std::string deep;
        if (open == '[') deep = std::string(depth, '[') + "1" + std::string(depth, ']');
        else for (size_t d = 0; d < depth; ++d) deep += "{\"a\":";
        if (open == '{') deep += "1" + std::string(depth, '}');
        // at a value position when there is one (after a colon), else anywhere
        size_t where = text.find(':', r.below(n));
        where = where == std::string::npos ? r.below(n + 1) : where + 1;
        text.insert(where, deep);
        return;
    }
    case 7: {  // a number token replaced in the text
        size_t where = r.below(n);
        while (where < n && !(std::isdigit((unsigned char)text[where]) || text[where] == '-')) ++where;
        if (where >= n) return;
        size_t end = where;
        while (end < n && std::strchr("0123456789+-.eE", text[end])) ++end;
        text.replace(where, end - where, r.pick(kTokens));
        return;
    }
    case 8: {  // stray bytes (NUL, invalid UTF-8, escapes)
        static const std::vector<std::string> stray = {std::string(1, '\0'), "\xff", "\xc3", "\xed\xa0\x80", "\\u0000",
                                                       "\\ud800", "\\", "\"", "/*", "//", "\xef\xbb\xbf", "\r\n"};
        text.insert(r.below(n + 1), r.pick(stray));
        return;
    }
    default: {  // a key or field duplicated in some object (later wins)
        const size_t where = text.find('{', r.below(n));
        if (where == std::string::npos) return;
        static const std::vector<std::string> fields = {
            "\"in\":1000000000,", "\"out\":0,", "\"kind\":\"recursion\",", "\"kind\":\"delay\",", "\"in\":2,",
            "\"samples\":[1e400],", "\"children\":[],", "\"diagonal\":\"yes\",", "\"path\":\"\\u0000\",",
            "\"path\":{\"a\":1},", "\"kind\":null,", "\"in\":1,\"in\":3,"};
        text.insert(where + 1, r.pick(fields));
    }
    }
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz_load: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// the mutant `index` of the run seeded `seed`
std::string mutant(uint64_t seed, uint64_t index, const std::vector<std::string>& seeds, const std::vector<json>& parsed)
{
    Rng r(seed * 0x9E3779B97F4A7C15ull + index * 0xD1B54A32D192ED03ull + 1);
    const size_t which = r.below(seeds.size());
    const size_t mutations = 1 + r.below(4);
    const bool text = r.chance(0.35);
    std::string out;
    if (text && r.chance(0.5)) {
        out = seeds[which];
    } else {
        json doc = parsed[which];
        const size_t treeMutations = text ? 1 : mutations;
        for (size_t m = 0; m < treeMutations; ++m) {
            try {
                mutateTree(doc, r);
            } catch (const json::exception&) {
                // a mutation that does not apply to what earlier ones made (e.g. a field of a root that is no object)
            }
        }
        out = rawTokens(doc.dump());
    }
    if (text)
        for (size_t m = 0; m < mutations; ++m) mutateText(out, r, seeds);
    return out;
}

// ------------------------------------------------------------------------------------------------------------
// playing a loaded model

struct Played {
    bool finite = true;
    double peak = 0;
};

template <class R> Played play(const rt::Model& model, uint64_t seed, int samples)
{
    Rng r(seed);
    rt::Processor<R> p(model);
    const rt::Plan& plan = p.plan();
    const double rates[] = {48000, 44100, 96000, 8000, 192000, 1000000};
    p.prepare(r.chance(0.7) ? double(plan.fs) : rates[r.below(6)], 64);
    std::vector<std::vector<R>> in(size_t(plan.inputs)), out(size_t(plan.outputs));
    std::vector<const R*> ip(size_t(plan.inputs));
    std::vector<R*> op(size_t(plan.outputs));
    Played result;
    for (int done = 0; done < samples;) {
        const int n = std::min(samples - done, int(1 + r.below(150)));
        for (size_t c = 0; c < in.size(); ++c) {
            in[c].resize(size_t(n));
            for (R& x : in[c]) x = R(r.uniform(-1, 1));
            ip[c] = in[c].data();
        }
        for (size_t c = 0; c < out.size(); ++c) {
            out[c].assign(size_t(n), R(0));
            op[c] = out[c].data();
        }
        if (r.chance(0.3)) {
            const int which = int(r.below(4)) - (r.chance(0.1) ? 1 : 0);  // -1 and 3: no such control
            const rt::Controls& c = p.values().controls;
            const rt::ControlSpec& spec = which == rt::kRt60 ? c.rt60 : which == rt::kDryWet ? c.dryWet : c.preDelay;
            double value = r.uniform(spec.min, spec.max);
            if (r.chance(0.2)) value = r.chance(0.5) ? spec.max * 10 + 1 : spec.min - 1;
            if (r.chance(0.05)) value = std::nan("");
            if (r.chance(0.05)) value = r.chance(0.5) ? INFINITY : -INFINITY;
            p.setControl(which, value);
        }
        if (r.chance(0.02)) p.reset();
        p.process(n, ip.data(), op.data());
        for (const auto& channel : out)
            for (R y : channel) {
                if (!std::isfinite(y)) result.finite = false;
                else result.peak = std::max(result.peak, double(std::abs(y)));
            }
        done += n;
    }
    return result;
}

// the mutant being tried, for a sanitizer's death callback
const std::string* current = nullptr;
uint64_t currentIndex = 0;
std::string crashPath;

void onDeath()
{
    std::fprintf(stderr, "fuzz_load: died on mutant %llu\n", (unsigned long long)currentIndex);
    if (current && !crashPath.empty()) {
        std::ofstream out(crashPath, std::ios::binary);
        out << *current;
        std::fprintf(stderr, "fuzz_load: the mutant is in %s\n", crashPath.c_str());
    }
}

}  // namespace

int main(int argc, char** argv)
{
    uint64_t runs = 1000, seed = 1;
    long long only = -1, dump = -1;
    int samples = 300;
    uint64_t report = 20;   // --report N: how many non-finite mutants are listed
    bool reasons = false;  // --reasons: a tally of the refusals' messages (digits and paths elided) at the end
    std::map<std::string, int> tally;
    std::vector<std::string> files;
    for (int a = 1; a < argc; ++a) {
        const std::string arg = argv[a];
        auto value = [&]() -> std::string {
            if (a + 1 >= argc) {
                std::fprintf(stderr, "fuzz_load: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++a];
        };
        if (arg == "--runs") runs = std::stoull(value());
        else if (arg == "--seed") seed = std::stoull(value());
        else if (arg == "--only") only = std::stoll(value());
        else if (arg == "--dump") dump = std::stoll(value());
        else if (arg == "--samples") samples = std::stoi(value());
        else if (arg == "--crash") crashPath = value();
        else if (arg == "--reasons") reasons = true;
        else if (arg == "--report") report = std::stoull(value());
        else files.push_back(arg);
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: fuzz_load [--runs N] [--seed S] [--only I] [--dump I] [--samples N] [--crash FILE] [--report N] [--reasons] SEED.json...\n");
        return 2;
    }
#ifdef ADAC_FUZZ_DEATH_CALLBACK
    __sanitizer_set_death_callback(onDeath);
#endif
    std::vector<std::string> seeds;
    std::vector<json> parsed;
    for (const std::string& f : files) {
        seeds.push_back(readFile(f));
        try {
            parsed.push_back(json::parse(seeds.back()));
        } catch (const json::exception& e) {
            std::fprintf(stderr, "fuzz_load: the seed %s is not JSON: %s\n", f.c_str(), e.what());
            return 2;
        }
    }
    if (dump >= 0) {
        const std::string text = mutant(seed, uint64_t(dump), seeds, parsed);
        std::fwrite(text.data(), 1, text.size(), stdout);
        return 0;
    }

    int failures = 0;
    // the seeds themselves: they load and play finite
    for (size_t s = 0; s < seeds.size(); ++s) {
        try {
            const rt::Model m = rt::load(seeds[s]);
            const Played f = play<float>(m, s, samples), d = play<double>(m, s, samples);
            if (!f.finite || !d.finite) {
                std::fprintf(stderr, "FAILURE: the seed %s plays non-finite samples\n", files[s].c_str());
                ++failures;
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "FAILURE: the seed %s is refused: %s\n", files[s].c_str(), e.what());
            ++failures;
        }
    }

    uint64_t loaded = 0, refused = 0, played = 0, nonfinite = 0, reported = 0;
    const uint64_t first = only >= 0 ? uint64_t(only) : 0, last = only >= 0 ? uint64_t(only) + 1 : runs;
    for (uint64_t i = first; i < last; ++i) {
        const std::string text = mutant(seed, i, seeds, parsed);
        current = &text;
        currentIndex = i;
        rt::Model model;
        try {
            model = rt::load(text);
            ++loaded;
        } catch (const rt::Error& e) {
            ++refused;
            if (only >= 0) std::printf("refused: %s\n", e.what());
            const std::string what = e.what();
            if (reasons) {
                std::string key = what;
                const size_t colon = key.find(": ");
                if (colon != std::string::npos && key.compare(0, 3, "IR:") != 0) key = key.substr(colon + 2);
                for (char& c : key)
                    if (std::isdigit((unsigned char)c)) c = '#';
                ++tally[key.substr(0, 90)];
            }
            // a message for a person: one printable line, naming something, not the document quoted at length
            const bool printable = std::all_of(what.begin(), what.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
            if (what.empty() || what.size() > 1000 || !printable) {
                std::fprintf(stderr, "FAILURE: mutant %llu refused with an empty, overlong or unprintable message\n",
                             (unsigned long long)i);
                onDeath();
                ++failures;
            }
            continue;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "FAILURE: mutant %llu: load threw %s: %s\n", (unsigned long long)i, typeid(e).name(), e.what());
            onDeath();
            ++failures;
            continue;
        } catch (...) {
            std::fprintf(stderr, "FAILURE: mutant %llu: load threw something that is not a std::exception\n", (unsigned long long)i);
            onDeath();
            ++failures;
            continue;
        }
        try {
            const Played f = play<float>(model, i, samples), d = play<double>(model, i, samples);
            ++played;
            if (!f.finite || !d.finite) {
                ++nonfinite;
                if (reported++ < report || only >= 0)
                    std::printf("nonfinite: mutant %llu (float %s, double %s; finite peak %g / %g)\n", (unsigned long long)i,
                                f.finite ? "finite" : "not finite", d.finite ? "finite" : "not finite", f.peak, d.peak);
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "FAILURE: mutant %llu: playing threw %s\n", (unsigned long long)i, e.what());
            onDeath();
            ++failures;
        }
    }
    current = nullptr;
    if (reasons) {
        std::vector<std::pair<int, std::string>> sorted;
        for (const auto& [k, v] : tally) sorted.push_back({v, k});
        std::sort(sorted.rbegin(), sorted.rend());
        for (const auto& [v, k] : sorted) std::printf("%6d  %s\n", v, k.c_str());
    }
    std::printf("mutants %llu loaded %llu refused %llu played %llu nonfinite %llu failures %d\n",
                (unsigned long long)(last - first), (unsigned long long)loaded, (unsigned long long)refused,
                (unsigned long long)played, (unsigned long long)nonfinite, failures);
    return failures ? 1 : 0;
}
