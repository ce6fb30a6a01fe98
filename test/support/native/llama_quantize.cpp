// Quantizes a GGUF exactly as llama.cpp's llama-quantize does, by calling llama_model_quantize in
// the libllama that node-llama-cpp ships (test/support/llamaQuantize.ts builds and runs this).
// Usage: llama_quantize <libllama.so> <in.gguf> <out.gguf> <llama_ftype number> [threads] [pure] [requantize]
// (`pure`: every matrix in the ftype's type, as llama-quantize --pure; `requantize`: the input may
// itself be quantized, as llama-quantize --allow-requantize)
// The parameter struct is declared here as include/llama.h of llama.cpp b8xxx (node-llama-cpp
// 3.22.1) defines it: the field order and types are facts of that ABI.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct QuantizeParams {
    int32_t nthread;
    int32_t ftype;                 // enum llama_ftype
    int32_t output_tensor_type;    // enum ggml_type
    int32_t token_embedding_type;  // enum ggml_type
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void* imatrix;
    const void* kv_overrides;
    const void* tt_overrides;
    const int32_t* prune_layers;
    size_t max_buf_size;
};
static_assert(sizeof(QuantizeParams) == 64, "llama_model_quantize_params layout");

template <class F>
F symbol(void* lib, const char* name) {
    void* p = dlsym(lib, name);
    if (!p) {
        std::fprintf(stderr, "llama_quantize: %s not found in libllama: %s\n", name, dlerror());
        std::exit(3);
    }
    return reinterpret_cast<F>(p);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s <libllama.so> <in.gguf> <out.gguf> <ftype> [threads] [pure] [requantize]\n", argv[0]);
        return 2;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        std::fprintf(stderr, "llama_quantize: cannot load %s: %s\n", argv[1], dlerror());
        return 3;
    }
    symbol<void (*)()>(lib, "llama_backend_init")();
    QuantizeParams params = symbol<QuantizeParams (*)()>(lib, "llama_model_quantize_default_params")();
    params.ftype = std::atoi(argv[4]);
    params.nthread = argc > 5 ? std::atoi(argv[5]) : 0;
    for (int i = 6; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "pure") params.pure = true;
        if (flag == "requantize") params.allow_requantize = true;
    }
    const uint32_t rc = symbol<uint32_t (*)(const char*, const char*, const QuantizeParams*)>(lib, "llama_model_quantize")(argv[2], argv[3], &params);
    if (rc != 0) {
        std::fprintf(stderr, "llama_quantize: llama_model_quantize failed (%u)\n", rc);
        return 1;
    }
    return 0;
}
