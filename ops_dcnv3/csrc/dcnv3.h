// Torch-facing declarations of the DCNv3 kernels (CPU always, CUDA when built WITH_CUDA).
#pragma once

#include <torch/extension.h>

#include <vector>

#include "common/dcnv3_math.h"

namespace dcnv3 {

// How the CPU backward avoids write races on grad_input.
enum class BackwardStrategy : int64_t {
  kAuto = 0,
  kOwner = 1,   // one task per (image, group): each owns its slice of grad_input, no atomics
  kAtomic = 2,  // one task per output pixel: atomic adds into grad_input
  // one task per (image, group, band of output rows): each band scatters into its own copy
  // of grad_input, the copies are summed at the end (for too few (image, group) pairs)
  kReplicas = 3,
};

// Validates sizes and fills Params (TORCH_CHECK raises; never aborts the process).
Params make_params(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                   int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                   int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                   int64_t group, int64_t group_channels, double offset_scale,
                   bool remove_center);

at::Tensor cpu_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const Params& p);
// The forward with the mask softmax inside: `offset_mask` [N, Ho, Wo, G*P*3] holds each
// pixel's G*P*2 offsets, then its G*P mask logits.
at::Tensor cpu_forward_softmax(const at::Tensor& input, const at::Tensor& offset_mask,
                               const Params& p);
std::vector<at::Tensor> cpu_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                     const at::Tensor& offset, const at::Tensor& mask,
                                     const Params& p, BackwardStrategy strategy);
// Its backward: {grad_input, grad_offset_mask} (the softmax's backward inside).
std::vector<at::Tensor> cpu_backward_softmax(const at::Tensor& grad_output,
                                             const at::Tensor& input,
                                             const at::Tensor& offset_mask, const Params& p,
                                             BackwardStrategy strategy);
// The CPU kernel version this machine runs: its x86-64 level (see dcnv3_cpu.cpp).
const char* cpu_kernel_isa();
// y = GELU(y + bias) in place (bias [y.size(-1)] or undefined); y and bias contiguous float32
// CPU tensors, already checked (see gelu_cpu.cpp).
void cpu_bias_gelu_(at::Tensor& y, const at::Tensor& bias);
// GELU(LN(dwconv(x))) (or without GELU) of x [N, H, W, C], arguments already checked (see
// dwconv_ln_cpu.cpp).
at::Tensor cpu_dwconv_ln(const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& conv_bias, const at::Tensor& ln_weight,
                         const at::Tensor& ln_bias, double eps, bool gelu);
// LayerNorm of x over its last dimension (weight, bias [C]), arguments already checked (see
// layer_norm_cpu.cpp).
at::Tensor cpu_layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          double eps);

#ifdef WITH_CUDA
at::Tensor cuda_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        const Params& p);
std::vector<at::Tensor> cuda_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                      const at::Tensor& offset, const at::Tensor& mask,
                                      const Params& p);
#endif

}  // namespace dcnv3
