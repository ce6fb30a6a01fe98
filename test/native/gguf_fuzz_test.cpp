// Hostile model files (issue 12): named regression cases for what a fuzz campaign found, then
// a bounded, seeded fuzz stage. Every input goes through Model::load (what the addon's
// loadModel runs) and, when it loads, info_json(), a tokenize and a two-token decode. The only
// acceptable outcomes are success or a moe::Error with a code and a sentence; any other
// exception, an ASan/UBSan report, an allocation past 512 MiB (an ASan error here, see
// __asan_default_options) or a case running past kCaseLimitS is a failure.
//
// The fuzz stage starts from a small valid SmallThinker GGUF (gguf_writer.h; the loader accepts
// it, so mutations reach deep validation) and makes MOE_FUZZ_ITERS (default 2000) mutations from
// MOE_FUZZ_SEED (default 12, printed): truncations at random points and at item boundaries, bit
// flips, edits of the header counts, string and array lengths, value and element types,
// tensor dimension counts, dimensions, types and offsets, u32 metadata, NaN/Inf/odd floats in
// float metadata and in weights, and general.alignment; a third stack two or three of these.
// A failing input is kept in build/test/gguf_fuzz_failures/ with its seed and iteration (also
// when the process dies: a sanitizer death callback saves the case running), to be turned into
// a named case below. MOE_FUZZ_ONLY=<substring> runs only the stages whose name contains it
// (u8-array, fifo, not-regular, metadata-budget, alignment, float-hparams, tensor-layout, fuzz).
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/common.h"
#include "model/gguf.h"
#include "model/model.h"
#include "engine/session.h"
#include "check.h"
#include "gguf_writer.h"

// A single allocation past 512 MiB is a failure of this test (ASan reports it and exits); an
// ASAN_OPTIONS in the environment still wins for the flags it names.
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=512:allocator_may_return_null=0"; }

using namespace moe;
using testgguf::Built;
using testgguf::Field;
using testgguf::FieldKind;
using testgguf::Spec;
using testgguf::Writer;

namespace {

constexpr double kCaseLimitS = 5.0;  // one load + decode under ASan takes a few milliseconds

std::string g_tmp;       // this run's temp directory
std::string g_keep_dir;  // where failing inputs are kept

// The case running, for the watchdog and the sanitizer death callback.
std::atomic<int64_t> g_case_start_ms{-1};
char g_case_name[256] = "";
char g_case_file[512] = "";

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Copies the running case's file into the keep directory (plain syscalls: also called from the
// sanitizer death callback and the watchdog).
void keep_current_case() {
    if (!g_case_file[0] || g_keep_dir.empty()) return;
    mkdir(g_keep_dir.c_str(), 0755);
    char dst[1024];
    std::snprintf(dst, sizeof dst, "%s/%s.gguf", g_keep_dir.c_str(), g_case_name);
    for (char* p = dst + g_keep_dir.size() + 1; *p; ++p)
        if (*p == '/' || *p == ' ') *p = '_';
    int in = ::open(g_case_file, O_RDONLY), out = ::open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in >= 0 && out >= 0) {
        char buf[65536];
        ssize_t n;
        while ((n = ::read(in, buf, sizeof buf)) > 0)
            if (::write(out, buf, static_cast<size_t>(n)) != n) break;
        std::fprintf(stderr, "gguf_fuzz: the failing input is kept as %s\n", dst);
    }
    if (in >= 0) ::close(in);
    if (out >= 0) ::close(out);
}

void on_death() {
    std::fprintf(stderr, "gguf_fuzz: died in case '%s'\n", g_case_name);
    keep_current_case();
}

void watchdog() {
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const int64_t t0 = g_case_start_ms.load();
        if (t0 >= 0 && now_ms() - t0 > static_cast<int64_t>(kCaseLimitS * 1000)) {
            std::printf("FAIL: case '%s' still running after %.0f s (a hang)\n", g_case_name, kCaseLimitS);
            keep_current_case();
            std::printf("gguf_fuzz: %d passed, %d failed\n", g_pass, g_fail + 1);
            std::fflush(stdout);
            _exit(1);
        }
    }
}

struct Outcome {
    bool ok = false;   // loaded and ran
    std::string code;  // moe::Error code when it did not
    std::string message;
    std::string other;  // set when something other than moe::Error was thrown
    bool acceptable() const { return other.empty() && (ok || (!code.empty() && message.size() >= 10)); }
    std::string describe() const {
        if (!other.empty()) return "non-moe exception: " + other;
        return ok ? "loaded" : code + ": " + message;
    }
};

// Loads `path` as the addon does and, when that works, runs what a client does first
// (vocab_only: as `moe-engine tokenize` loads it, then tokenizes).
Outcome load_and_run(const std::string& path, const std::string& name, bool vocab_only = false) {
    std::snprintf(g_case_name, sizeof g_case_name, "%s", name.c_str());
    std::snprintf(g_case_file, sizeof g_case_file, "%s", path.c_str());
    g_case_start_ms = now_ms();
    Outcome o;
    try {
        LoadOptions lo;
        lo.vocab_only = vocab_only;
        std::unique_ptr<Model> m = Model::load(path, lo);
        // info_json() prints these as JSON numbers: NaN or Inf there breaks the addon's info()
        const HParams& hp = m->hparams();
        if (!std::isfinite(hp.rms_eps) || !std::isfinite(hp.rope_freq_base) || !std::isfinite(hp.rope_freq_base_swa))
            throw std::runtime_error("a loaded model has a non-finite float hyperparameter");
        (void)m->info_json();
        std::vector<int32_t> ids = m->tokenizer().encode("hello world; def f(x):\n  return x", false);
        (void)m->tokenizer().decode(ids);
        if (vocab_only) {
            g_case_start_ms = -1;
            o.ok = true;
            return o;
        }
        SessionParams sp;
        sp.n_ctx = 8;
        sp.n_batch = 4;
        sp.n_threads = 1;
        Session s(*m, sp);
        std::vector<int32_t> toks = {1, 2};
        std::vector<float> logits;
        s.decode(toks.data(), toks.size(), LogitsMode::Last, logits);
        o.ok = true;
    } catch (const Error& e) {
        o.code = e.code;
        o.message = e.what();
    } catch (const std::exception& e) {
        o.other = e.what();
    } catch (...) {
        o.other = "an unknown exception";
    }
    g_case_start_ms = -1;
    return o;
}

Outcome load_bytes(const std::vector<uint8_t>& bytes, const std::string& name, bool vocab_only = false) {
    std::string path = testgguf::write_file(bytes, g_tmp, "case");
    if (path.empty()) {
        Outcome o;
        o.other = "cannot write the test file";
        return o;
    }
    Outcome o = load_and_run(path, name, vocab_only);
    if (!o.acceptable()) keep_current_case();
    unlink(path.c_str());
    g_case_file[0] = 0;
    return o;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

long max_rss_kib() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

const std::string A = "smallthinker.";

// The base of the fuzz stage: every kind of metadata the loader reads (sliding window with a
// per-layer bool pattern, rope.freq_base_swa, general.alignment) in a file it accepts.
Spec base_spec() {
    Spec s;
    s.sliding = true;
    s.write_alignment = true;
    // a few merges, so the tokenizer's BPE runs on what load_and_run encodes
    s.tokens = {"he", "ll", "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor", "ld", "\xc4\xa0world", "re", "ret"};
    s.merges = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or", "l d", "\xc4\xa0wor ld", "r e", "re t"};
    s.extra_kvs.push_back([](Writer& w) { w.kv_f32(A + "rope.freq_base_swa", 1e4f); });
    s.extra_kvs.push_back([](Writer& w) { w.kv_arr_bytes(A + "attention.sliding_window_pattern", 7, 2, 1); });
    s.extra_kvs.push_back([](Writer& w) { w.kv_u32("tokenizer.ggml.eos_token_id", 299); });
    return s;
}

// ---------------------------------------------------------------- regression cases

// Finding 1: a FIFO as the model path blocked forever in open(). The load runs on a thread;
// if it has not finished after 2 s the FIFO is opened for writing (which frees a blocked
// open) and the case fails.
void case_fifo() {
    const std::string fifo = g_tmp + "/model.fifo";
    check(mkfifo(fifo.c_str(), 0600) == 0, "mkfifo");
    const std::string link = g_tmp + "/fifo_link.gguf";
    check(symlink(fifo.c_str(), link.c_str()) == 0, "symlink to the FIFO");
    for (const std::string& path : {fifo, link}) {
        std::atomic<bool> done{false};
        Outcome o;
        std::thread t([&] {
            o = load_and_run(path, "fifo");
            done = true;
        });
        const int64_t t0 = now_ms();
        while (!done && now_ms() - t0 < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const bool hung = !done;
        if (hung) {
            int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
            while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (w >= 0) ::close(w);
        }
        t.join();
        check(!hung, "loading a FIFO (" + path + ") returns at once instead of waiting for a writer");
        check(o.code == "io" && contains(o.message, "not a regular file (a FIFO)"), "a FIFO is refused clearly: " + o.describe());
    }
    unlink(link.c_str());
    unlink(fifo.c_str());
}

// Finding 1 (same fix): directories and devices get a clear error too.
void case_not_regular() {
    Outcome o = load_and_run(g_tmp, "directory");
    check(o.code == "io" && contains(o.message, "not a regular file (a directory)"), "a directory is refused clearly: " + o.describe());
    o = load_and_run("/dev/zero", "dev-zero");
    check(o.code == "io" && contains(o.message, "not a regular file (a character device)"),
          "/dev/zero is refused clearly: " + o.describe());
    o = load_and_run("/dev/null", "dev-null");
    check(o.code == "io" && contains(o.message, "not a regular file"), "/dev/null is refused clearly: " + o.describe());
    // stdin may be anything (a terminal, a pipe, /dev/null, a file): no hang, a clear outcome
    o = load_and_run("/dev/stdin", "dev-stdin");
    check(o.acceptable(), "/dev/stdin gives a clear outcome: " + o.describe());
    o = load_and_run(g_tmp + "/missing.gguf", "missing");
    check(o.code == "io" && contains(o.message, "No such file"), "a missing file: " + o.describe());
}

// Finding 2: metadata arrays took ~90 bytes of memory per element; a 32 MiB u8 array drove
// `moe-engine info` past 1.8 GB. Now arrays stay in the file: peak RSS may grow by at most
// 64 MiB over the file's size. Runs first, while the process's peak RSS is still low.
void case_huge_u8_array() {
    const uint64_t n = 32ull << 20;
    Spec s;
    s.extra_kvs.push_back([n](Writer& w) { w.kv_arr_bytes("general.fuzz_blob", 0, n, 0x5a); });
    std::string path;
    uint64_t file_size = 0;
    {
        Built b = testgguf::build(s);
        file_size = b.bytes.size();
        path = testgguf::write_file(b.bytes, g_tmp, "u8array");
    }
    const long before = max_rss_kib();
    const auto t0 = std::chrono::steady_clock::now();
    Outcome o = load_and_run(path, "u8-array-32MiB");
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long growth_mib = (max_rss_kib() - before) / 1024;
    std::printf("  32 MiB u8 array: %s in %.2f s, peak RSS +%ld MiB (file %llu MiB)\n", o.describe().c_str(), secs, growth_mib,
                (unsigned long long)(file_size >> 20));
    check(o.ok, "a model with a 32 MiB u8 metadata array loads: " + o.describe());
    check(growth_mib < static_cast<long>(file_size >> 20) + 64,
          "a 32 MiB u8 array costs at most 64 MiB above the file size (+" + std::to_string(growth_mib) + " MiB)");
    check(secs < 5.0, "a 32 MiB u8 array loads in under 5 s");
    unlink(path.c_str());

    // the same array is still readable element by element
    Spec s2;
    s2.extra_kvs.push_back([](Writer& w) { w.kv_arr_bytes("general.fuzz_blob", 0, 1000, 7); });
    std::vector<uint8_t> bytes = testgguf::make_gguf(s2);
    auto f = GgufFile::parse(bytes.data(), bytes.size(), "blob");
    const GgufValue* v = f->find("general.fuzz_blob");
    check(v && v->is_array() && v->n_elems == 1000 && v->element(999).u == 7 && v->elem_type == GgufType::U8,
          "array elements are decoded on access");
    check(f->get_str_arr("tokenizer.ggml.tokens").size() == 300 && f->get_str_arr("tokenizer.ggml.tokens")[98] == "b",
          "string arrays decode");
    check(f->get_i32_arr("tokenizer.ggml.token_type").size() == 300, "integer arrays decode");
}

// Finding 2 (same fix): what the engine allocates is bounded, not what the file claims.
void case_metadata_budget() {
    // one 80 MiB string value: refused before it is copied
    Spec s;
    s.extra_kvs.push_back([](Writer& w) { w.kv_str("general.huge_license", std::string(80u << 20, 'x')); });
    Outcome o = load_bytes(testgguf::make_gguf(s), "string-80MiB");
    check(o.code == "bad_gguf" && contains(o.message, "general.huge_license") && contains(o.message, "MiB"),
          "an 80 MiB string value is refused naming its key: " + o.describe());
    // three million empty tokens: refused before the vocabulary is decoded
    std::vector<uint8_t> bytes;
    {
        Writer w;
        w.u32(0x46554747);
        w.u32(3);
        w.u64(0);
        w.u64(2);
        w.kv_str("general.architecture", "smallthinker");
        w.kv_arr_bytes("tokenizer.ggml.tokens", 8, 3000000, 0);  // element type string: 3M zero lengths
        w.b.resize(w.b.size() + 3000000 * 8 - 3000000, 0);
        bytes = std::move(w.b);
    }
    o = load_bytes(bytes, "tokens-3M");
    check(o.code == "bad_gguf" && contains(o.message, "tokenizer.ggml.tokens") && contains(o.message, "entries"),
          "three million tokens are refused naming the key: " + o.describe());
    // a tensor name of 900 bytes: refused before it is copied, at the tensor list
    {
        Built built = testgguf::build(Spec{});
        std::vector<uint8_t> b2 = built.bytes;
        for (const Field& f : built.fields) {
            if (f.kind == FieldKind::TensorNameLen) {
                uint64_t len = 900;
                std::memcpy(&b2[f.off], &len, 8);
                break;
            }
        }
        o = load_bytes(b2, "tensor-name-900");
        check(o.code == "bad_gguf" && contains(o.message, "tensor name"), "a 900-byte tensor name: " + o.describe());
    }
}

// Finding 3: general.alignment = 1 put F16 data at an odd offset, and dequantize_row's
// uint16_t loads were misaligned (UBSan). Alignments below 8 or not powers of two are refused.
void case_alignment() {
    for (uint32_t al : {1u, 2u, 4u, 12u, 0u}) {
        Spec s;
        s.alignment = al;
        s.write_alignment = true;
        s.norm_type = DType::F16;
        if (al == 1) {
            // shift every tensor so the F16 norm vectors start at odd addresses
            if (testgguf::build(s).data_start % 2 == 0) s.data_shift = 1;
        }
        Outcome o = load_bytes(testgguf::make_gguf(s), "alignment-" + std::to_string(al));
        const std::string want = "general.alignment " + std::to_string(al) + " must be a power of two of at least 8";
        check(o.code == "bad_gguf" && contains(o.message, want),
              "general.alignment " + std::to_string(al) + " is refused: " + o.describe());
    }
    for (uint32_t al : {8u, 64u}) {
        Spec s;
        s.alignment = al;
        s.write_alignment = true;
        s.norm_type = DType::F16;
        Outcome o = load_bytes(testgguf::make_gguf(s), "alignment-" + std::to_string(al));
        check(o.ok, "general.alignment " + std::to_string(al) + " loads: " + o.describe());
    }
}

// Finding 4: rope.freq_base_swa = NaN was accepted while rope.freq_base was checked; the other
// float hyperparameters get the same check.
void case_float_hparams() {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    struct C {
        const char* key;
        float v;
        bool sliding;
    };
    const C cases[] = {
        {"rope.freq_base_swa", nan, true},
        {"rope.freq_base_swa", inf, true},
        {"rope.freq_base_swa", -inf, true},
        {"rope.freq_base_swa", 0.0f, true},
        {"rope.freq_base_swa", -5.0f, true},
        {"rope.freq_base_swa", nan, false},
        {"rope.freq_base", nan, false},
        {"rope.freq_base", 0.0f, false},
        {"rope.freq_base", 1e30f, false},
        {"attention.layer_norm_rms_epsilon", nan, false},
        {"attention.layer_norm_rms_epsilon", inf, false},
        {"attention.layer_norm_rms_epsilon", -1e-6f, false},
        {"attention.layer_norm_rms_epsilon", 10.0f, false},
    };
    for (const C& c : cases) {
        Built base = testgguf::build([&] {
            Spec s;
            s.sliding = c.sliding;
            if (std::string(c.key) == "rope.freq_base_swa")
                s.extra_kvs.push_back([](Writer& w) { w.kv_f32(A + "rope.freq_base_swa", 1e4f); });
            return s;
        }());
        std::vector<uint8_t> bytes = base.bytes;
        for (const Field& f : base.fields)
            if (f.kind == FieldKind::F32Value && f.name == A + c.key) std::memcpy(&bytes[f.off], &c.v, 4);
        const std::string what = std::string(c.key) + " = " + std::to_string(c.v) + (c.sliding ? " (sliding window)" : "");
        Outcome o = load_bytes(bytes, what);
        check(o.code == "bad_model" && contains(o.message, c.key) && contains(o.message, "finite number"),
              what + " is refused: " + o.describe());
    }
    // in range, with a sliding window: loads
    Spec s = base_spec();
    Outcome o = load_bytes(testgguf::make_gguf(s), "float-hparams-valid");
    check(o.ok, "valid float hyperparameters with a sliding window load: " + o.describe());
}

// Found while reviewing where the fuzz stage's offset edits lead (ASan cannot see it): two
// Q4_0 tensors at the same or overlapping offsets were both relaid out in place, by two
// threads at once over the same bytes (a data race; garbage weights). Tensors whose bytes
// overlap are refused now; unaligned offsets were already.
void case_tensor_layout() {
    const Built base = testgguf::build(Spec{});
    auto field = [&](FieldKind k, const std::string& name) -> const Field* {
        for (const Field& f : base.fields)
            if (f.kind == k && f.name == name) return &f;
        return nullptr;
    };
    const Field* o0 = field(FieldKind::TensorOffset, "blk.0.attn_output.weight");
    const Field* o1 = field(FieldKind::TensorOffset, "blk.1.attn_output.weight");
    check(o0 && o1, "the writer records tensor offsets");
    if (!o0 || !o1) return;
    uint64_t off0;
    std::memcpy(&off0, &base.bytes[o0->off], 8);
    for (uint64_t delta : {0ull, 32ull}) {
        std::vector<uint8_t> b = base.bytes;
        const uint64_t v = off0 + delta;  // the same bytes, or half-way into them (a 64x64 Q4_0 is 2304 bytes)
        std::memcpy(&b[o1->off], &v, 8);
        Outcome o = load_bytes(b, "overlap+" + std::to_string(delta));
        check(o.code == "bad_gguf" && contains(o.message, "overlaps tensor 'blk.0.attn_output.weight'"),
              "tensors sharing bytes (+" + std::to_string(delta) + ") are refused: " + o.describe());
    }
    std::vector<uint8_t> b = base.bytes;
    const uint64_t v = off0 + 2;
    std::memcpy(&b[o0->off], &v, 8);
    Outcome o = load_bytes(b, "unaligned-offset");
    check(o.code == "bad_gguf" && contains(o.message, "is not aligned to 32"), "an unaligned tensor offset is refused: " + o.describe());
}

// ---------------------------------------------------------------- the fuzz stage

uint64_t env_u64(const char* name, uint64_t def) {
    const char* v = std::getenv(name);
    if (!v || !*v) return def;
    char* end = nullptr;
    unsigned long long x = std::strtoull(v, &end, 0);
    return end && *end == 0 ? x : def;
}

struct Mutator {
    const Built& base;
    std::mt19937_64 rng;
    uint64_t pick(uint64_t n) { return n ? rng() % n : 0; }
    template <typename T>
    const T& one_of(const std::vector<T>& v) {
        return v[pick(v.size())];
    }

    std::vector<const Field*> fields_of(FieldKind k) const {
        std::vector<const Field*> out;
        for (const Field& f : base.fields)
            if (f.kind == k) out.push_back(&f);
        return out;
    }
    uint64_t interesting_u64(uint64_t orig, uint64_t file_size) {
        const std::vector<uint64_t> v = {0,
                                         1,
                                         2,
                                         3,
                                         7,
                                         8,
                                         31,
                                         33,
                                         255,
                                         256,
                                         0x7fff,
                                         0xffff,
                                         0x10000,
                                         0x7fffffff,
                                         0x80000000,
                                         0xffffffff,
                                         0x100000000ull,
                                         1ull << 40,
                                         0x7fffffffffffffffull,
                                         0x8000000000000000ull,
                                         ~0ull};
        switch (pick(4)) {
            case 0: return one_of(v);
            case 1: return orig + 1 + pick(3);
            case 2: return orig ? orig - 1 : 0;
            default: return pick(2) ? orig * 2 + 1 : file_size + pick(64);
        }
    }
    template <typename T>
    static void put(std::vector<uint8_t>& b, size_t off, T v) {
        if (off + sizeof(T) <= b.size()) std::memcpy(&b[off], &v, sizeof(T));
    }
    template <typename T>
    static T get(const std::vector<uint8_t>& b, size_t off) {
        T v{};
        if (off + sizeof(T) <= b.size()) std::memcpy(&v, &b[off], sizeof(T));
        return v;
    }
    float odd_float() {
        const std::vector<float> v = {std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::infinity(),
                                      -std::numeric_limits<float>::infinity(),
                                      0.0f,
                                      -0.0f,
                                      -1.0f,
                                      1e-45f,
                                      3e38f,
                                      1e-30f,
                                      1e30f};
        return one_of(v);
    }
    // Edits a field of kind k (u32 or u64 wide) with an interesting value; false if none exists.
    bool edit_int(std::vector<uint8_t>& b, FieldKind k, std::string& what, const char* label) {
        auto fs = fields_of(k);
        if (fs.empty()) return false;
        const Field& f = *one_of(fs);
        if (f.size == 8) {
            uint64_t v = interesting_u64(get<uint64_t>(b, f.off), b.size());
            put(b, f.off, v);
            what += std::string(label) + "(" + f.name + ")=" + std::to_string(v) + " ";
        } else {
            uint64_t v = pick(3) == 0 ? static_cast<uint32_t>(rng()) : interesting_u64(get<uint32_t>(b, f.off), b.size());
            put(b, f.off, static_cast<uint32_t>(v));
            what += std::string(label) + "(" + f.name + ")=" + std::to_string(static_cast<uint32_t>(v)) + " ";
        }
        return true;
    }

    void mutate_once(std::vector<uint8_t>& b, std::string& what) {
        switch (pick(14)) {
            case 0: {  // truncate at a random point
                size_t cut = pick(b.size());
                b.resize(cut);
                what += "truncate@" + std::to_string(cut) + " ";
                break;
            }
            case 1: {  // truncate at an item boundary, give or take a byte
                size_t cut = one_of(base.boundaries) + pick(3);
                cut = cut ? cut - 1 : 0;
                if (cut < b.size()) b.resize(cut);
                what += "truncate-boundary@" + std::to_string(cut) + " ";
                break;
            }
            case 2: {  // bit flips
                const uint64_t n = 1 + pick(8);
                for (uint64_t i = 0; i < n && !b.empty(); ++i) b[pick(b.size())] ^= static_cast<uint8_t>(1u << pick(8));
                what += "flip x" + std::to_string(n) + " ";
                break;
            }
            case 3: edit_int(b, pick(2) ? FieldKind::TensorCount : FieldKind::KvCount, what, "count"); break;
            case 4: {  // string lengths: keys, values, array strings, tensor names
                const FieldKind ks[] = {FieldKind::KeyLen, FieldKind::StrLen, FieldKind::TensorNameLen};
                edit_int(b, ks[pick(3)], what, "strlen");
                break;
            }
            case 5: edit_int(b, FieldKind::ArrayLen, what, "arraylen"); break;
            case 6: {  // value / element types
                auto fs = fields_of(pick(2) ? FieldKind::ValueType : FieldKind::ArrayElemType);
                const Field& f = *one_of(fs);
                uint32_t t = pick(4) ? static_cast<uint32_t>(pick(14)) : static_cast<uint32_t>(rng());
                put(b, f.off, t);
                what += "type(" + f.name + ")=" + std::to_string(t) + " ";
                break;
            }
            case 7: edit_int(b, FieldKind::TensorDims, what, "ndims"); break;
            case 8: edit_int(b, FieldKind::TensorDim, what, "dim"); break;
            case 9: {  // tensor types: known ggml ids mostly
                auto fs = fields_of(FieldKind::TensorType);
                const Field& f = *one_of(fs);
                uint32_t t = pick(4) ? static_cast<uint32_t>(pick(40)) : static_cast<uint32_t>(rng());
                put(b, f.off, t);
                what += "ttype(" + f.name + ")=" + std::to_string(t) + " ";
                break;
            }
            case 10: {  // tensor offsets: off by a little, unaligned, past the end, huge
                auto fs = fields_of(FieldKind::TensorOffset);
                const Field& f = *one_of(fs);
                uint64_t o = get<uint64_t>(b, f.off);
                const std::vector<uint64_t> v = {o + 1,          o + 2,
                                                 o + 8,          o + 32,
                                                 o ? o - 32 : 0, 0,
                                                 b.size(),       b.size() - base.data_start,
                                                 ~0ull - 31,     interesting_u64(o, b.size())};
                uint64_t nv = one_of(v);
                put(b, f.off, nv);
                what += "offset(" + f.name + ")=" + std::to_string(nv) + " ";
                break;
            }
            case 11: {  // u32 metadata (hyperparameters, alignment, token ids)
                auto fs = fields_of(FieldKind::U32Value);
                const Field& f = *one_of(fs);
                uint32_t o = get<uint32_t>(b, f.off);
                const std::vector<uint32_t> v = {
                    0, 1, 2, 3, 4, 7, 8, 16, 64, 4096, 1u << 20, 1u << 21, 0x7fffffff, 0xffffffff, o + 1, o ? o - 1 : 0, o * 2};
                uint32_t nv = pick(5) ? one_of(v) : static_cast<uint32_t>(rng());
                put(b, f.off, nv);
                what += "u32(" + f.name + ")=" + std::to_string(nv) + " ";
                break;
            }
            case 12: {  // NaN/Inf/odd floats in float metadata
                auto fs = fields_of(FieldKind::F32Value);
                const Field& f = *one_of(fs);
                float v = odd_float();
                put(b, f.off, v);
                what += "f32(" + f.name + ")=" + std::to_string(v) + " ";
                break;
            }
            default: {  // NaN/Inf into weights: a float, an f16/bf16 value or a quant block's scale
                auto fs = fields_of(FieldKind::TensorData);
                const Field& f = *one_of(fs);
                const uint64_t n = 1 + pick(4);
                for (uint64_t i = 0; i < n; ++i) {
                    switch (f.type) {
                        case DType::F32: put(b, f.off + 4 * pick(f.size / 4), odd_float()); break;
                        case DType::F16: put(b, f.off + 2 * pick(f.size / 2), static_cast<uint16_t>(pick(2) ? 0x7e00 : 0x7c00)); break;
                        case DType::BF16: put(b, f.off + 2 * pick(f.size / 2), static_cast<uint16_t>(pick(2) ? 0x7fc0 : 0xff80)); break;
                        case DType::Q8_0: put(b, f.off + 34 * pick(f.size / 34), static_cast<uint16_t>(pick(2) ? 0x7e00 : 0xfc00)); break;
                        case DType::Q4_0: put(b, f.off + 18 * pick(f.size / 18), static_cast<uint16_t>(pick(2) ? 0x7e00 : 0x7c00)); break;
                        default: break;
                    }
                }
                what += "weights(" + f.name + ") x" + std::to_string(n) + " ";
                break;
            }
        }
    }
};

void fuzz_stage() {
    const uint64_t seed = env_u64("MOE_FUZZ_SEED", 12);
    const uint64_t iters = env_u64("MOE_FUZZ_ITERS", 2000);
    std::printf("  fuzz: seed %llu, %llu mutations (MOE_FUZZ_SEED, MOE_FUZZ_ITERS)\n", (unsigned long long)seed, (unsigned long long)iters);
    std::fflush(stdout);
    const Built base = testgguf::build(base_spec());
    Outcome o0 = load_bytes(base.bytes, "fuzz-base");
    check(o0.ok, "the fuzz base file loads and runs: " + o0.describe());
    {
        const std::string path = testgguf::write_file(base.bytes, g_tmp, "base");
        std::unique_ptr<Model> m = Model::load(path, LoadOptions{});
        check(m->tokenizer().encode("hello world", false).size() == 2, "the fuzz base's merges apply (\"hello world\" is two tokens)");
        unlink(path.c_str());
    }

    Mutator mu{base, std::mt19937_64(seed)};
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t loaded = 0, refused = 0, bad = 0;
    double slowest = 0;
    std::string slowest_what;
    for (uint64_t it = 0; it < iters; ++it) {
        std::vector<uint8_t> b = base.bytes;
        std::string what;
        const uint64_t n = mu.pick(3) == 0 ? 2 + mu.pick(2) : 1;
        for (uint64_t k = 0; k < n; ++k) mu.mutate_once(b, what);
        const bool vocab_only = it % 4 == 3;  // every fourth as `moe-engine tokenize` loads
        const std::string name = "seed" + std::to_string(seed) + "-iter" + std::to_string(it) + (vocab_only ? "-vocab" : "");
        const auto c0 = std::chrono::steady_clock::now();
        Outcome o = load_bytes(b, name, vocab_only);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
        if (secs > slowest) {
            slowest = secs;
            slowest_what = what;
        }
        if (!o.acceptable()) {
            ++bad;
            std::printf("  FAIL %s [%s]: %s\n", name.c_str(), what.c_str(), o.describe().c_str());
        } else if (o.ok) {
            ++loaded;
        } else {
            ++refused;
        }
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  fuzz: %llu mutations in %.1f s: %llu loaded and ran, %llu refused with a moe::Error, %llu bad; slowest %.2f s [%s]\n",
                (unsigned long long)iters, total, (unsigned long long)loaded, (unsigned long long)refused, (unsigned long long)bad, slowest,
                slowest_what.c_str());
    std::printf("  peak RSS %ld MiB\n", max_rss_kib() / 1024);
    check(bad == 0, "every mutated file loads or is refused with a clear moe::Error (seed " + std::to_string(seed) + ")");
}

}  // namespace

int main() {
    set_log_sink([](LogLevel, const std::string&) {});
    __sanitizer_set_death_callback(on_death);
    char tmpl[] = "/tmp/moe_gguf_fuzz_XXXXXX";
    if (!mkdtemp(tmpl)) {
        std::printf("cannot make a temp directory\ngguf_fuzz: 0 passed, 1 failed\n");
        return 1;
    }
    g_tmp = tmpl;
    {
        // next to this program: build/test/gguf_fuzz_failures
        char exe[4096];
        const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string("build/test/gguf_fuzz_test");
        g_keep_dir = dir.substr(0, dir.find_last_of('/') + 1) + "gguf_fuzz_failures";
    }
    std::thread(watchdog).detach();

    const auto t0 = std::chrono::steady_clock::now();
    const struct {
        const char* name;
        void (*run)();
    } stages[] = {
        {"u8-array", case_huge_u8_array},  // first: it measures the peak RSS
        {"fifo", case_fifo},
        {"not-regular", case_not_regular},
        {"metadata-budget", case_metadata_budget},
        {"alignment", case_alignment},
        {"float-hparams", case_float_hparams},
        {"tensor-layout", case_tensor_layout},
        {"fuzz", fuzz_stage},
    };
    const char* only = std::getenv("MOE_FUZZ_ONLY");  // runs the stages whose name contains it
    for (const auto& st : stages) {
        if (only && *only && !std::strstr(st.name, only)) continue;
        std::printf("  [%s]\n", st.name);
        std::fflush(stdout);
        st.run();
    }
    rmdir(g_tmp.c_str());
    std::printf("  total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::printf("gguf_fuzz: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
