// The GGUF names of the tensors architectures use, in one table (llama.cpp's naming):
// tensor_name(TensorName::AttnQ, 3) is "blk.3.attn_q.weight".
#pragma once
#include <string>

namespace moe {

enum class TensorName {
    TokenEmbd,    // token_embd.weight
    OutputNorm,   // output_norm.weight
    Output,       // output.weight
    AttnNorm,     // blk.N.attn_norm.weight
    AttnQ,        // blk.N.attn_q.weight
    AttnK,        // blk.N.attn_k.weight
    AttnV,        // blk.N.attn_v.weight
    AttnOutput,   // blk.N.attn_output.weight
    FfnNorm,      // blk.N.ffn_norm.weight
    FfnGateInp,   // blk.N.ffn_gate_inp.weight (the MoE router)
    FfnGateExps,  // blk.N.ffn_gate_exps.weight
    FfnUpExps,    // blk.N.ffn_up_exps.weight
    FfnDownExps,  // blk.N.ffn_down_exps.weight
};

// The tensor's name; `layer` is used by the per-layer names only.
std::string tensor_name(TensorName t, unsigned layer = 0);

}  // namespace moe
