// The rows of a SIMD kernel set, included by avx2.cpp and avx512.cpp after their kernels and
// outside their ISA region (building the table runs on any CPU): every name below is the
// including file's own kernel of that name.
#pragma once

namespace moe::kernels {
namespace {

KernelSet make_simd_set(Isa isa) {
    KernelSet s{};
    s.isa = isa;
    s.types[uint32_t(DType::F32)] = {nullptr, dot_as<float, float, dot_f32>, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::F16)] = {from_f32_as<uint16_t, fp32_to_fp16_row>, dot_as<uint16_t, uint16_t, dot_f16>, nullptr, nullptr,
                                     nullptr};
    s.types[uint32_t(DType::BF16)] = {from_f32_as<uint16_t, fp32_to_bf16_row>, dot_as<uint16_t, uint16_t, dot_bf16>, nullptr, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q8_0)] = {from_f32_as<block_q8_0, quantize_row_q8_0>, dot_as<block_q8_0, block_q8_0, dot_q8_0_q8_0>,
                                      mul_as<block_q8_0, block_q8_0, mul_q8_0_q8_0>, nullptr, nullptr};
    s.types[uint32_t(DType::Q4_0)] = {nullptr, dot_as<block_q4_0, block_q8_0, dot_q4_0_q8_0>, mul_as<block_q4_0, block_q8_0, mul_q4_0_q8_0>,
                                      mul_x16_as<block_q8_0, mul_q4_0x16_q8_0>, repack_q4_0x16};
    s.types[uint32_t(DType::Q8_K)] = {from_f32_as<block_q8_K, quantize_row_q8_K>, nullptr, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::Q6_K)] = {nullptr, dot_as<block_q6_K, block_q8_K, dot_q6_K_q8_K>, mul_as<block_q6_K, block_q8_K, mul_q6_K_q8_K>,
                                      mul_x16_as<block_q8_K, mul_q6_Kx16_q8_K>, repack_q6_Kx16};
    s.types[uint32_t(DType::Q4_K)] = {nullptr, dot_as<block_q4_K, block_q8_K, dot_q4_K_q8_K>, mul_as<block_q4_K, block_q8_K, mul_q4_K_q8_K>,
                                      mul_x16_as<block_q8_K, mul_q4_Kx16_q8_K>, repack_q4_Kx16};
    s.types[uint32_t(DType::Q5_K)] = {nullptr, dot_as<block_q5_K, block_q8_K, dot_q5_K_q8_K>, mul_as<block_q5_K, block_q8_K, mul_q5_K_q8_K>,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::Q3_K)] = {nullptr, dot_as<block_q3_K, block_q8_K, dot_q3_K_q8_K>, mul_as<block_q3_K, block_q8_K, mul_q3_K_q8_K>,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::Q2_K)] = {nullptr, dot_as<block_q2_K, block_q8_K, dot_q2_K_q8_K>, mul_as<block_q2_K, block_q8_K, mul_q2_K_q8_K>,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::IQ4_XS)] = {nullptr, dot_as<block_iq4_xs, block_q8_K, dot_iq4_xs_q8_K>,
                                        mul_as<block_iq4_xs, block_q8_K, mul_iq4_xs_q8_K>, nullptr, nullptr};
    s.types[uint32_t(DType::Q8_1)] = {from_f32_as<block_q8_1, quantize_row_q8_1>, nullptr, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::IQ4_NL)] = {nullptr, dot_as<block_iq4_nl, block_q8_0, dot_iq4_nl_q8_0>,
                                        mul_as<block_iq4_nl, block_q8_0, mul_iq4_nl_q8_0>, nullptr, nullptr};
    s.types[uint32_t(DType::Q5_0)] = {nullptr, dot_as<block_q5_0, block_q8_0, dot_q5_0_q8_0>, mul_as<block_q5_0, block_q8_0, mul_q5_0_q8_0>,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::Q4_1)] = {nullptr, dot_as<block_q4_1, block_q8_1, dot_q4_1_q8_1>, mul_as<block_q4_1, block_q8_1, mul_q4_1_q8_1>,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::Q5_1)] = {nullptr, dot_as<block_q5_1, block_q8_1, dot_q5_1_q8_1>, mul_as<block_q5_1, block_q8_1, mul_q5_1_q8_1>,
                                      nullptr, nullptr};
    s.axpy_f16 = axpy_f16;
    s.attn_scores_f16 = attn_scores_f16;
    s.attn_pv_f16 = attn_pv_f16;
    s.softmax_f16r = softmax_f16r;
    return s;
}

}  // namespace
}  // namespace moe::kernels
