#include "model/weights.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/common.h"
#include "kernels/kernels.h"

namespace moe {

namespace {

bool matches(const GgufTensorInfo& ti, std::initializer_list<int64_t> shape) {
    int d = 0;
    for (int64_t v : shape) {
        if (ti.ne[d] != v) return false;
        ++d;
    }
    for (; d < 4; ++d)
        if (ti.ne[d] != 1) return false;
    return true;
}

std::string supported_types() {
    std::string s;
    for (uint32_t t = 0; t < kernels::kTypeCount; ++t) {
        const TypeTraits tr = type_traits(t);
        if (tr.supported) s += (s.empty() ? "" : ", ") + std::string(tr.name);
    }
    return s;
}

}  // namespace

Tensor TensorBinder::get(const std::string& name, std::initializer_list<int64_t> shape, bool required) {
    const GgufTensorInfo* ti = f_.tensor(name);
    if (!ti) {
        if (required) throw Error("bad_model", strfmt("%s: required tensor '%s' is missing", f_.path().c_str(), name.c_str()));
        return Tensor{};
    }
    used_.insert(name);
    if (!matches(*ti, shape)) {
        std::string want, got;
        for (int64_t v : shape) want += (want.empty() ? "" : ", ") + std::to_string(v);
        for (uint32_t i = 0; i < ti->n_dims; ++i) got += (got.empty() ? "" : ", ") + std::to_string(ti->ne[i]);
        throw Error("bad_model", strfmt("%s: tensor '%s' has shape {%s}, expected {%s}", f_.path().c_str(), ti->name.c_str(), got.c_str(),
                                        want.c_str()));
    }
    if (!type_traits(ti->type).supported) {
        throw Error("unsupported_type", strfmt("%s: tensor '%s' has type %s, which this engine does not support yet (supported: %s)",
                                               f_.path().c_str(), name.c_str(), type_name(ti->type), supported_types().c_str()));
    }
    Tensor t;
    t.name = ti->name.c_str();
    t.type = static_cast<DType>(ti->type);
    for (int d = 0; d < 4; ++d) t.ne[d] = ti->ne[d];
    t.nb1 = row_bytes(t.type, t.ne[0]);
    t.nb2 = t.nb1 * static_cast<size_t>(t.ne[1]);
    t.data = ti->data;
    return t;
}

bool TensorBinder::shape_is(const std::string& name, std::initializer_list<int64_t> shape) const {
    const GgufTensorInfo* ti = f_.tensor(name);
    return ti && matches(*ti, shape);
}

void TensorBinder::log_unused(const char* arch) const {
    for (const GgufTensorInfo& ti : f_.tensors()) {
        if (!used_.count(ti.name))
            log(LogLevel::Info,
                strfmt("%s: ignoring tensor '%s' (not used by the %s forward pass)", f_.path().c_str(), ti.name.c_str(), arch));
    }
}

Layout target_layout(const Tensor& t) {
    // Opt-in for now: two threads decoding the 4B's experts from DRAM (--bench=experts, Sapphire
    // Rapids) take 1.03-1.08x the dense 16-row kernels' time at half the neurons kept (random
    // weights), 0.90x at a third: reading a random half of the rows (864-byte runs) streams at ~2/3
    // of a sequential read there, and relu keeps about half of a random-weight model's neurons.
    static const bool sparse = [] {
        const char* v = std::getenv("MOE_SPARSE");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    if (!t.present()) return Layout::File;
    const kernels::TypeKernels& k = kernels::active().of(t.type);
    if (sparse && t.type == DType::Q4_0 && t.role == Role::ExpertUp && t.ne[0] % kernels::kR16Elements == 0 && k.mul_r16)
        return Layout::BlockRows16;
    if (sparse && t.type == DType::Q4_0 && t.role == Role::ExpertDown && t.ne[1] % kernels::kNmTileRows == 0 && k.mul_nm)
        return Layout::NeuronMajor;
    if (kernels::scalar_set().of(t.type).relayout16 && k.mul_x16 && t.ne[1] % 16 == 0) return Layout::Rows16;
    return Layout::File;
}

std::vector<Tensor*> relayout_candidates(const std::vector<Tensor*>& matrices) {
    std::vector<Tensor*> todo;
    for (Tensor* t : matrices) {
        if (t->layout == Layout::File && target_layout(*t) != Layout::File && std::find(todo.begin(), todo.end(), t) == todo.end())
            todo.push_back(t);
    }
    return todo;
}

std::vector<Tensor*> layout_file_candidates(const std::vector<Tensor*>& matrices) {
    std::vector<Tensor*> todo;
    for (Tensor* t : matrices) {
        const bool expert = t->role == Role::ExpertGate || t->role == Role::ExpertUp || t->role == Role::ExpertDown;
        if (t->present() && t->layout == Layout::File && (expert || target_layout(*t) != Layout::File) &&
            std::find(todo.begin(), todo.end(), t) == todo.end())
            todo.push_back(t);
    }
    return todo;
}

uint64_t relayout_unit(const Tensor& t, Layout layout) {
    switch (layout) {
        case Layout::Rows16: return 16 * t.nb1;
        case Layout::BlockRows16: return t.nb1;
        case Layout::NeuronMajor: return t.matrix_bytes();
        case Layout::File: break;
    }
    return t.matrix_bytes();
}

void relayout_units(const Tensor& t, Layout layout, uint8_t* p, uint64_t len) {
    const int64_t nb = t.ne[0] / type_traits(t.type).block_size;
    const uint64_t unit = relayout_unit(t, layout);
    std::vector<uint8_t> tmp;
    for (uint64_t u = 0; u < len; u += unit) {
        uint8_t* q = p + u;
        switch (layout) {
            case Layout::Rows16: kernels::scalar_set().of(t.type).relayout16(q, nb); break;
            case Layout::BlockRows16: kernels::repack_q4_0r16(q, nb); break;
            case Layout::NeuronMajor:
                tmp.assign(q, q + unit);
                kernels::relayout_q4_0nm(tmp.data(), q, t.ne[1], t.ne[0]);
                break;
            case Layout::File: break;
        }
    }
}

uint64_t relayout_weights(const std::vector<Tensor*>& matrices, const MappedFile* map) {
    const std::vector<Tensor*> todo = relayout_candidates(matrices);
    if (todo.empty() || !map) return 0;
    // work items of about 1 MB (whole units); expert matrices are contiguous in the file
    struct Item {
        Tensor* t;
        Layout layout;
        uint64_t begin, len;
    };
    std::vector<Item> items;
    for (Tensor* t : todo) {
        const Layout l = target_layout(*t);
        const uint64_t unit = relayout_unit(*t, l);
        const uint64_t per = std::max<uint64_t>(1, (1ull << 20) / unit) * unit;
        for (uint64_t b = 0; b < t->bytes(); b += per) items.push_back({t, l, b, std::min(per, t->bytes() - b)});
        map->protect(t->data, t->bytes(), true);
    }
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < items.size();) {
            const Item& it = items[i];
            uint8_t* p = const_cast<uint8_t*>(it.t->data) + it.begin;
            map->populate_write(p, it.len);
            relayout_units(*it.t, it.layout, p, it.len);
        }
    };
    const unsigned n_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back(work);
    work();
    for (std::thread& th : threads) th.join();
    uint64_t bytes = 0;
    for (Tensor* t : todo) {
        map->protect(t->data, t->bytes(), false);
        t->layout = target_layout(*t);
        bytes += t->bytes();
    }
    return bytes;
}

}  // namespace moe
