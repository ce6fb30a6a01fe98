#include "model/tensor_names.h"

#include "core/common.h"

namespace moe {

std::string tensor_name(TensorName t, unsigned layer) {
    struct Row {
        TensorName t;
        const char* name;
        bool per_layer;
    };
    static const Row rows[] = {
        {TensorName::TokenEmbd, "token_embd", false},
        {TensorName::OutputNorm, "output_norm", false},
        {TensorName::Output, "output", false},
        {TensorName::AttnNorm, "attn_norm", true},
        {TensorName::AttnQ, "attn_q", true},
        {TensorName::AttnK, "attn_k", true},
        {TensorName::AttnV, "attn_v", true},
        {TensorName::AttnOutput, "attn_output", true},
        {TensorName::FfnNorm, "ffn_norm", true},
        {TensorName::FfnGateInp, "ffn_gate_inp", true},
        {TensorName::FfnGateExps, "ffn_gate_exps", true},
        {TensorName::FfnUpExps, "ffn_up_exps", true},
        {TensorName::FfnDownExps, "ffn_down_exps", true},
    };
    for (const Row& r : rows)
        if (r.t == t) return r.per_layer ? strfmt("blk.%u.%s.weight", layer, r.name) : strfmt("%s.weight", r.name);
    return "unknown.weight";
}

}  // namespace moe
