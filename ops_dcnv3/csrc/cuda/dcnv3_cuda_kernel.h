// Raw-pointer launchers of the DCNv3 CUDA kernels. Only CUDA's own headers are needed to build
// dcnv3_cuda_kernel.cu, so the kernels compile (nvcc -c) on machines whose torch has no CUDA
// headers; dcnv3_cuda.cpp is the thin torch-facing side.
#pragma once

#include <cuda_runtime.h>

#include "../common/dcnv3_math.h"

namespace dcnv3 {

enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

// output: [N, Ho, Wo, C] of `dtype`.
cudaError_t launch_forward(DType dtype, const void* input, const void* offset, const void* mask,
                           void* output, const Params& p, cudaStream_t stream);

// grad_input_acc: [N, H, W, C] zero-filled accumulator. Its type is float32 for float16 and
// bfloat16 (scatter-adds accumulate in float32; the caller casts it back), else `dtype`.
// grad_offset / grad_mask: of `dtype`, every element written.
cudaError_t launch_backward(DType dtype, const void* grad_output, const void* input,
                            const void* offset, const void* mask, void* grad_input_acc,
                            void* grad_offset, void* grad_mask, const Params& p,
                            cudaStream_t stream);

}  // namespace dcnv3
