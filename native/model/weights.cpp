#include "model/weights.h"

#include <algorithm>
#include <atomic>
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

std::vector<Tensor*> relayout_candidates(const std::vector<Tensor*>& matrices) {
    std::vector<Tensor*> todo;
    for (Tensor* t : matrices) {
        const auto relayout = kernels::scalar_set().of(t->type).relayout16;
        if (relayout && t->present() && !t->x16 && t->ne[1] % 16 == 0 && std::find(todo.begin(), todo.end(), t) == todo.end())
            todo.push_back(t);
    }
    return todo;
}

uint64_t relayout_weights(const std::vector<Tensor*>& matrices, const MappedFile* map) {
    const std::vector<Tensor*> todo = relayout_candidates(matrices);
    if (todo.empty() || !map) return 0;
    // work items: (tensor, first group, group count), about 1 MB each; expert matrices are
    // contiguous, so a tensor's groups run through all its experts
    struct Item {
        Tensor* t;
        int64_t g0, ng;
    };
    std::vector<Item> items;
    for (Tensor* t : todo) {
        const int64_t groups = t->ne[1] / 16 * t->ne[2];
        const int64_t per = std::max<int64_t>(1, static_cast<int64_t>((size_t{1} << 20) / (16 * t->nb1)));
        for (int64_t g = 0; g < groups; g += per) items.push_back({t, g, std::min(per, groups - g)});
        map->protect(t->data, t->bytes(), true);
    }
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < items.size();) {
            const Item& it = items[i];
            const auto relayout = kernels::scalar_set().of(it.t->type).relayout16;
            uint8_t* base = const_cast<uint8_t*>(it.t->data);
            const size_t gb = 16 * it.t->nb1;
            const int64_t nb = it.t->ne[0] / type_traits(it.t->type).block_size;
            map->populate_write(base + static_cast<size_t>(it.g0) * gb, static_cast<size_t>(it.ng) * gb);
            for (int64_t g = it.g0; g < it.g0 + it.ng; ++g) relayout(base + static_cast<size_t>(g) * gb, nb);
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
        t->x16 = true;
        bytes += t->bytes();
    }
    return bytes;
}

}  // namespace moe
