// Torch-facing side of the CUDA kernels: allocation, dtype mapping, stream, error check.
// Compiled only in a CUDA build (WITH_CUDA); the kernels live in dcnv3_cuda_kernel.cu.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "../dcnv3.h"
#include "dcnv3_cuda_kernel.h"

namespace dcnv3 {
namespace {

DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    default: TORCH_CHECK(false, "dcnv3: the CUDA kernels take float32/float64/float16/bfloat16, got ", t);
  }
}

void check(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "dcnv3: ", what, " failed: ", cudaGetErrorString(err));
}

}  // namespace

at::Tensor cuda_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        const Params& p) {
  const c10::cuda::CUDAGuard guard(input.device());
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.contiguous();
  auto output = at::empty({p.batch, p.height_out, p.width_out, p.channels()}, in.options());
  check(launch_forward(to_dtype(in.scalar_type()), in.const_data_ptr(), off.const_data_ptr(),
                       msk.const_data_ptr(), output.mutable_data_ptr(), p,
                       at::cuda::getCurrentCUDAStream()),
        "forward kernel");
  return output;
}

std::vector<at::Tensor> cuda_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                      const at::Tensor& offset, const at::Tensor& mask,
                                      const Params& p) {
  const c10::cuda::CUDAGuard guard(input.device());
  auto go = grad_output.contiguous();
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.contiguous();
  const bool reduced = in.scalar_type() == at::kHalf || in.scalar_type() == at::kBFloat16;
  // Scatter-adds of half/bfloat16 gradients accumulate in float32, then cast once.
  auto grad_input_acc = at::zeros(in.sizes(), in.options().dtype(reduced ? at::kFloat : in.scalar_type()));
  auto grad_offset = at::empty_like(off);
  auto grad_mask = at::empty_like(msk);
  check(launch_backward(to_dtype(in.scalar_type()), go.const_data_ptr(), in.const_data_ptr(),
                        off.const_data_ptr(), msk.const_data_ptr(),
                        grad_input_acc.mutable_data_ptr(), grad_offset.mutable_data_ptr(),
                        grad_mask.mutable_data_ptr(), p, at::cuda::getCurrentCUDAStream()),
        "backward kernel");
  auto grad_input = reduced ? grad_input_acc.to(in.scalar_type()) : grad_input_acc;
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace dcnv3
