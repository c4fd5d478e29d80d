// Dispatch (CPU / CUDA) and Python bindings of the DCNv3 kernels.
// The Python layer (ops_dcnv3/validation.py) validates arguments with precise messages first;
// the checks here are the last line of defence for direct callers of ops_dcnv3._C, so a bad
// call raises a RuntimeError instead of reading out of bounds.
#include "dcnv3.h"

namespace dcnv3 {

Params make_params(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                   int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                   int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                   int64_t group, int64_t group_channels, double offset_scale,
                   bool remove_center) {
  TORCH_CHECK(input.dim() == 4 && offset.dim() == 4 && mask.dim() == 4,
              "dcnv3: input, offset and mask must be 4-D channels-last tensors");
  TORCH_CHECK(kernel_h > 0 && kernel_w > 0 && stride_h > 0 && stride_w > 0 && dilation_h > 0 &&
                  dilation_w > 0 && pad_h >= 0 && pad_w >= 0 && group > 0 && group_channels > 0,
              "dcnv3: kernel, stride, dilation, group and group_channels must be positive and "
              "pad non-negative");
  TORCH_CHECK(input.size(3) == group * group_channels,
              "dcnv3: input channels ", input.size(3), " != group * group_channels = ",
              group * group_channels);
  Params p;
  p.batch = input.size(0);
  p.height_in = static_cast<int>(input.size(1));
  p.width_in = static_cast<int>(input.size(2));
  p.kernel_h = static_cast<int>(kernel_h);
  p.kernel_w = static_cast<int>(kernel_w);
  p.stride_h = static_cast<int>(stride_h);
  p.stride_w = static_cast<int>(stride_w);
  p.pad_h = static_cast<int>(pad_h);
  p.pad_w = static_cast<int>(pad_w);
  p.dilation_h = static_cast<int>(dilation_h);
  p.dilation_w = static_cast<int>(dilation_w);
  p.group = static_cast<int>(group);
  p.group_channels = static_cast<int>(group_channels);
  p.remove_center = remove_center;
  p.offset_scale = offset_scale;
  p.num_points = p.kernel_h * p.kernel_w - (remove_center ? 1 : 0);
  p.height_out = out_size(p.height_in, p.pad_h, p.dilation_h, p.kernel_h, p.stride_h);
  p.width_out = out_size(p.width_in, p.pad_w, p.dilation_w, p.kernel_w, p.stride_w);
  TORCH_CHECK(p.height_out > 0 && p.width_out > 0, "dcnv3: input ", p.height_in, "x", p.width_in,
              " is too small for the kernel/padding/dilation");
  TORCH_CHECK(p.num_points > 0, "dcnv3: no sampling point left (remove_center with a 1x1 kernel)");
  const std::vector<int64_t> offset_shape{p.batch, p.height_out, p.width_out,
                                          static_cast<int64_t>(p.group) * p.num_points * 2};
  const std::vector<int64_t> mask_shape{p.batch, p.height_out, p.width_out,
                                        static_cast<int64_t>(p.group) * p.num_points};
  TORCH_CHECK(offset.sizes() == at::IntArrayRef(offset_shape), "dcnv3: offset has shape ",
              offset.sizes(), ", expected ", at::IntArrayRef(offset_shape));
  TORCH_CHECK(mask.sizes() == at::IntArrayRef(mask_shape), "dcnv3: mask has shape ", mask.sizes(),
              ", expected ", at::IntArrayRef(mask_shape));
  TORCH_CHECK(offset.scalar_type() == input.scalar_type() &&
                  mask.scalar_type() == input.scalar_type(),
              "dcnv3: input, offset and mask must have the same dtype");
  TORCH_CHECK(offset.device() == input.device() && mask.device() == input.device(),
              "dcnv3: input, offset and mask must be on the same device");
  return p;
}

namespace {

at::Tensor forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                   int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                   int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                   int64_t group, int64_t group_channels, double offset_scale,
                   bool remove_center) {
  const Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                               pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                               remove_center);
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return cuda_forward(input, offset, mask, p);
#else
    TORCH_CHECK(false, "dcnv3: ops_dcnv3 was built without CUDA kernels");
#endif
  }
  TORCH_CHECK(input.device().is_cpu(), "dcnv3: unsupported device ", input.device());
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "dcnv3: the CPU kernels take float32 or float64, got ", input.scalar_type());
  return cpu_forward(input, offset, mask, p);
}

std::vector<at::Tensor> backward(const at::Tensor& grad_output, const at::Tensor& input,
                                 const at::Tensor& offset, const at::Tensor& mask,
                                 int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                 int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                 int64_t dilation_h, int64_t dilation_w, int64_t group,
                                 int64_t group_channels, double offset_scale, bool remove_center,
                                 int64_t strategy) {
  const Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                               pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                               remove_center);
  const std::vector<int64_t> out_shape{p.batch, p.height_out, p.width_out, p.channels()};
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef(out_shape), "dcnv3: grad_output has shape ",
              grad_output.sizes(), ", expected ", at::IntArrayRef(out_shape));
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() &&
                  grad_output.device() == input.device(),
              "dcnv3: grad_output must match input's dtype and device");
  TORCH_CHECK(strategy >= 0 && strategy <= 2, "dcnv3: strategy must be 0 (auto), 1 or 2");
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return cuda_backward(grad_output, input, offset, mask, p);
#else
    TORCH_CHECK(false, "dcnv3: ops_dcnv3 was built without CUDA kernels");
#endif
  }
  TORCH_CHECK(input.device().is_cpu(), "dcnv3: unsupported device ", input.device());
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "dcnv3: the CPU kernels take float32 or float64, got ", input.scalar_type());
  return cpu_backward(grad_output, input, offset, mask, p, static_cast<BackwardStrategy>(strategy));
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace
}  // namespace dcnv3

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "DCNv3 sampling kernels (channels-last), CPU and CUDA";
  m.def("forward", &dcnv3::forward, "DCNv3 forward");
  m.def("backward", &dcnv3::backward, "DCNv3 backward: grad_input, grad_offset, grad_mask");
  m.def("with_cuda", &dcnv3::with_cuda, "whether the CUDA kernels were compiled in");
}
