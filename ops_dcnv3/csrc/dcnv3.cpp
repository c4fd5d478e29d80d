// Dispatch (CPU / CUDA) and Python bindings of the DCNv3 kernels.
// The Python layer (ops_dcnv3/validation.py) validates arguments with precise messages first;
// the checks here (shared by the CPU and CUDA launchers) are the last line of defence for direct
// callers of ops_dcnv3._C: a bad call raises ValueError/TypeError instead of reading out of
// bounds.
#include "dcnv3.h"

#include <torch/csrc/Exceptions.h>

#include <limits>

namespace dcnv3 {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// The kernels index with int: every size is range-checked before it is narrowed.
int narrow(const char* name, int64_t value, int64_t minimum) {
  TORCH_CHECK_VALUE(value >= minimum && value <= kIntMax, "dcnv3: ", name, " must be in [",
                    minimum, ", ", kIntMax, "], got ", value);
  return static_cast<int>(value);
}

}  // namespace

Params make_params(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                   int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                   int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                   int64_t group, int64_t group_channels, double offset_scale,
                   bool remove_center) {
  TORCH_CHECK_VALUE(input.dim() == 4, "dcnv3: input must be a 4-D channels-last tensor, got ",
                    input.dim(), " dims");
  TORCH_CHECK_VALUE(offset.dim() == 4, "dcnv3: offset must be a 4-D channels-last tensor, got ",
                    offset.dim(), " dims");
  TORCH_CHECK_VALUE(mask.dim() == 4, "dcnv3: mask must be a 4-D channels-last tensor, got ",
                    mask.dim(), " dims");
  TORCH_CHECK_TYPE(offset.scalar_type() == input.scalar_type() &&
                       mask.scalar_type() == input.scalar_type(),
                   "dcnv3: input, offset and mask must have the same dtype, got ",
                   input.scalar_type(), ", ", offset.scalar_type(), ", ", mask.scalar_type());
  TORCH_CHECK_VALUE(offset.device() == input.device() && mask.device() == input.device(),
                    "dcnv3: input, offset and mask must be on the same device, got ",
                    input.device(), ", ", offset.device(), ", ", mask.device());
  // Padding would give an empty image a non-empty output whose every read is out of bounds.
  TORCH_CHECK_VALUE(input.size(1) > 0 && input.size(2) > 0, "dcnv3: input height and width "
                    "must be at least 1, got input of shape ", input.sizes());
  Params p;
  p.batch = input.size(0);
  p.height_in = narrow("input height", input.size(1), 1);
  p.width_in = narrow("input width", input.size(2), 1);
  p.kernel_h = narrow("kernel_h", kernel_h, 1);
  p.kernel_w = narrow("kernel_w", kernel_w, 1);
  p.stride_h = narrow("stride_h", stride_h, 1);
  p.stride_w = narrow("stride_w", stride_w, 1);
  p.pad_h = narrow("pad_h", pad_h, 0);
  p.pad_w = narrow("pad_w", pad_w, 0);
  p.dilation_h = narrow("dilation_h", dilation_h, 1);
  p.dilation_w = narrow("dilation_w", dilation_w, 1);
  p.group = narrow("group", group, 1);
  p.group_channels = narrow("group_channels", group_channels, 1);
  TORCH_CHECK_VALUE(input.size(3) == group * group_channels, "dcnv3: input has ",
                    input.size(3), " channels but group * group_channels = ", group, " * ",
                    group_channels, " = ", group * group_channels);
  narrow("input channels", input.size(3), 1);
  // With the padded extent in int, so is every window position the kernels compute.
  narrow("input height + 2 * pad_h", input.size(1) + 2 * pad_h, 1);
  narrow("input width + 2 * pad_w", input.size(2) + 2 * pad_w, 1);
  p.remove_center = remove_center;
  p.offset_scale = offset_scale;
  p.num_points = narrow("kernel_h * kernel_w", kernel_h * kernel_w, 1) - (remove_center ? 1 : 0);
  TORCH_CHECK_VALUE(p.num_points > 0,
                    "dcnv3: no sampling point left (remove_center with a 1x1 kernel)");
  const int64_t height_out = out_size(p.height_in, p.pad_h, p.dilation_h, p.kernel_h, p.stride_h);
  const int64_t width_out = out_size(p.width_in, p.pad_w, p.dilation_w, p.kernel_w, p.stride_w);
  TORCH_CHECK_VALUE(height_out > 0 && width_out > 0, "dcnv3: input of spatial size ",
                    p.height_in, "x", p.width_in, " is too small for kernel ", p.kernel_h, "x",
                    p.kernel_w, ", pad (", p.pad_h, ", ", p.pad_w, "), dilation (", p.dilation_h,
                    ", ", p.dilation_w, ")");
  p.height_out = static_cast<int>(height_out);  // <= height + 2 * pad_h, checked above
  p.width_out = static_cast<int>(width_out);
  const std::vector<int64_t> offset_shape{p.batch, p.height_out, p.width_out,
                                          static_cast<int64_t>(p.group) * p.num_points * 2};
  const std::vector<int64_t> mask_shape{p.batch, p.height_out, p.width_out,
                                        static_cast<int64_t>(p.group) * p.num_points};
  TORCH_CHECK_VALUE(offset.sizes() == at::IntArrayRef(offset_shape), "dcnv3: offset has shape ",
                    offset.sizes(), ", expected ", at::IntArrayRef(offset_shape));
  TORCH_CHECK_VALUE(mask.sizes() == at::IntArrayRef(mask_shape), "dcnv3: mask has shape ",
                    mask.sizes(), ", expected ", at::IntArrayRef(mask_shape));
  return p;
}

namespace {

void check_cpu(const at::Tensor& input) {
  TORCH_CHECK_VALUE(input.device().is_cpu(), "dcnv3: unsupported device ", input.device());
  TORCH_CHECK_TYPE(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
                   "dcnv3: the CPU kernels take float32 or float64, got ", input.scalar_type());
}

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
  check_cpu(input);
  return cpu_forward(input, offset, mask, p);
}

// Params of a combined offset + mask-logit tensor [N, Ho, Wo, G*P*3] (CPU only).
Params softmax_params(const at::Tensor& input, const at::Tensor& offset_mask, int64_t kernel_h,
                      int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                      int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t group,
                      int64_t group_channels, double offset_scale, bool remove_center) {
  TORCH_CHECK_VALUE(offset_mask.dim() == 4 && offset_mask.size(3) % 3 == 0,
                    "dcnv3: offset_mask must be a 4-D channels-last tensor whose last dim is "
                    "group * points * 3 (offsets, then mask logits), got shape ",
                    offset_mask.sizes());
  const int64_t gp = offset_mask.size(3) / 3;
  // make_params checks both parts' shapes against the kernel arguments.
  const Params p = make_params(input, offset_mask.narrow(3, 0, 2 * gp),
                               offset_mask.narrow(3, 2 * gp, gp), kernel_h, kernel_w, stride_h,
                               stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
                               group_channels, offset_scale, remove_center);
  TORCH_CHECK_VALUE(input.device().is_cpu(), "dcnv3: the fused softmax kernels are CPU only, "
                    "got ", input.device(), " (compose dcnv3 with a softmax instead)");
  check_cpu(input);
  return p;
}

void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input, const Params& p) {
  const std::vector<int64_t> out_shape{p.batch, p.height_out, p.width_out, p.channels()};
  TORCH_CHECK_VALUE(grad_output.sizes() == at::IntArrayRef(out_shape),
                    "dcnv3: grad_output has shape ", grad_output.sizes(), ", expected ",
                    at::IntArrayRef(out_shape));
  TORCH_CHECK_TYPE(grad_output.scalar_type() == input.scalar_type(),
                   "dcnv3: grad_output must have input's dtype ", input.scalar_type(), ", got ",
                   grad_output.scalar_type());
  TORCH_CHECK_VALUE(grad_output.device() == input.device(), "dcnv3: grad_output must be on ",
                    input.device(), ", got ", grad_output.device());
}

// The backward strategy argument, checked on every device (CUDA ignores it). Owner tasks and
// replicas sum every grad_input element in a fixed order; atomic adds do not, so asking for
// them under torch.use_deterministic_algorithms alerts (auto then never picks them).
BackwardStrategy check_strategy(int64_t strategy, const at::Tensor& input) {
  TORCH_CHECK_VALUE(strategy >= 0 && strategy <= 3,
                    "dcnv3: strategy must be 0 (auto), 1 (owner), 2 (atomic) or 3 (replicas)");
  const auto how = static_cast<BackwardStrategy>(strategy);
  if (how == BackwardStrategy::kAtomic && !input.is_cuda())
    at::globalContext().alertNotDeterministic("dcnv3_backward_cpu with strategy=2 (atomic)");
  return how;
}

at::Tensor forward_softmax(const at::Tensor& input, const at::Tensor& offset_mask,
                           int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                           int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                           int64_t group, int64_t group_channels, double offset_scale,
                           bool remove_center) {
  const Params p = softmax_params(input, offset_mask, kernel_h, kernel_w, stride_h, stride_w,
                                  pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                  offset_scale, remove_center);
  return cpu_forward_softmax(input, offset_mask, p);
}

std::vector<at::Tensor> backward_softmax(const at::Tensor& grad_output, const at::Tensor& input,
                                         const at::Tensor& offset_mask, int64_t kernel_h,
                                         int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                                         int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                                         int64_t dilation_w, int64_t group,
                                         int64_t group_channels, double offset_scale,
                                         bool remove_center, int64_t strategy) {
  const Params p = softmax_params(input, offset_mask, kernel_h, kernel_w, stride_h, stride_w,
                                  pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                  offset_scale, remove_center);
  check_grad_output(grad_output, input, p);
  const BackwardStrategy how = check_strategy(strategy, input);
  return cpu_backward_softmax(grad_output, input, offset_mask, p, how);
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
  check_grad_output(grad_output, input, p);
  const BackwardStrategy how = check_strategy(strategy, input);
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    // float atomicAdd into grad_input: the summation order varies from run to run.
    at::globalContext().alertNotDeterministic("dcnv3_backward_cuda");
    return cuda_backward(grad_output, input, offset, mask, p);
#else
    TORCH_CHECK(false, "dcnv3: ops_dcnv3 was built without CUDA kernels");
#endif
  }
  check_cpu(input);
  return cpu_backward(grad_output, input, offset, mask, p, how);
}

at::Tensor bias_gelu_(at::Tensor y, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK_VALUE(y.device().is_cpu(), "bias_gelu_: y must be a CPU tensor, got ",
                    y.device());
  TORCH_CHECK_TYPE(y.scalar_type() == at::kFloat, "bias_gelu_: y must be float32, got ",
                   y.scalar_type());
  TORCH_CHECK_VALUE(y.is_contiguous(), "bias_gelu_: y must be contiguous");
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    b = *bias;
    TORCH_CHECK_VALUE(b.device().is_cpu(), "bias_gelu_: bias must be a CPU tensor, got ",
                      b.device());
    TORCH_CHECK_TYPE(b.scalar_type() == at::kFloat, "bias_gelu_: bias must be float32, got ",
                     b.scalar_type());
    TORCH_CHECK_VALUE(y.dim() >= 1 && b.dim() == 1 && b.size(0) == y.size(-1) &&
                          b.is_contiguous(),
                      "bias_gelu_: bias must be a contiguous 1-D tensor of y's last size (",
                      y.dim() >= 1 ? y.size(-1) : 0, "), got shape ", b.sizes());
    TORCH_CHECK_VALUE(b.numel() > 0 || y.numel() == 0, "bias_gelu_: empty bias");
  }
  cpu_bias_gelu_(y, b);
  return y;
}

// A [C] float32 CPU contiguous parameter of `op`.
void check_channel_vector(const char* op, const char* name, const at::Tensor& t,
                          int64_t channels) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor, got ",
                    t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat, op, ": ", name, " must be float32, got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == channels && t.is_contiguous(), op, ": ", name,
                    " must be a contiguous [", channels, "] tensor, got shape ", t.sizes());
}

at::Tensor dwconv_ln(const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& conv_bias, const at::Tensor& ln_weight,
                     const at::Tensor& ln_bias, double eps, bool gelu) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "dwconv_ln: x must be a CPU tensor, got ", x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat, "dwconv_ln: x must be float32, got ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 4 && x.is_contiguous(), "dwconv_ln: x must be a contiguous "
                    "[N, H, W, C] tensor, got shape ", x.sizes());
  const int64_t channels = x.size(3);
  TORCH_CHECK_TYPE(weight.scalar_type() == at::kFloat && weight.device().is_cpu(),
                   "dwconv_ln: weight must be a float32 CPU tensor, got ", weight.scalar_type(),
                   " on ", weight.device());
  TORCH_CHECK_VALUE(weight.dim() == 4 && weight.size(0) == channels && weight.size(1) == 1 &&
                        weight.size(2) == weight.size(3) && weight.size(2) % 2 == 1,
                    "dwconv_ln: weight must be a depthwise [", channels,
                    ", 1, k, k] kernel with k odd, got shape ", weight.sizes());
  at::Tensor cb;
  if (conv_bias.has_value() && conv_bias->defined()) {
    cb = *conv_bias;
    check_channel_vector("dwconv_ln", "conv_bias", cb, channels);
  }
  check_channel_vector("dwconv_ln", "ln_weight", ln_weight, channels);
  check_channel_vector("dwconv_ln", "ln_bias", ln_bias, channels);
  TORCH_CHECK_VALUE(eps >= 0, "dwconv_ln: eps must be >= 0, got ", eps);
  return cpu_dwconv_ln(x, weight, cb, ln_weight, ln_bias, eps, gelu);
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      double eps) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "layer_norm: x must be a CPU tensor, got ", x.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat, "layer_norm: x must be float32, got ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.is_contiguous(),
                    "layer_norm: x must be a contiguous tensor of at least one dimension, got "
                    "shape ", x.sizes());
  check_channel_vector("layer_norm", "weight", weight, x.size(-1));
  check_channel_vector("layer_norm", "bias", bias, x.size(-1));
  TORCH_CHECK_VALUE(eps >= 0, "layer_norm: eps must be >= 0, got ", eps);
  return cpu_layer_norm(x, weight, bias, eps);
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
  // Wrapped as torch's own bindings are: the GIL is released while the kernels run, and C++
  // warnings (TORCH_WARN, alertNotDeterministic in warn-only mode) reach Python's warnings.
  m.def("forward", torch::wrap_pybind_function_no_gil(&dcnv3::forward), "DCNv3 forward");
  m.def("forward_softmax", torch::wrap_pybind_function_no_gil(&dcnv3::forward_softmax),
        "DCNv3 forward from one offset+mask-logit tensor, mask softmax inside (CPU)");
  m.def("backward_softmax", torch::wrap_pybind_function_no_gil(&dcnv3::backward_softmax),
        "backward of forward_softmax: grad_input, grad_offset_mask (CPU)");
  m.def("backward", torch::wrap_pybind_function_no_gil(&dcnv3::backward),
        "DCNv3 backward: grad_input, grad_offset, grad_mask");
  m.def("bias_gelu_", torch::wrap_pybind_function_no_gil(&dcnv3::bias_gelu_),
        "y = GELU(y + bias) in place (erf form; CPU float32, contiguous; bias optional)",
        py::arg("y"), py::arg("bias") = py::none());
  m.def("dwconv_ln", torch::wrap_pybind_function_no_gil(&dcnv3::dwconv_ln),
        "GELU(LN(depthwise conv(x))) of channels-last x, one pass per pixel (CPU float32)",
        py::arg("x"), py::arg("weight"), py::arg("conv_bias"), py::arg("ln_weight"),
        py::arg("ln_bias"), py::arg("eps"), py::arg("gelu"));
  m.def("layer_norm", torch::wrap_pybind_function_no_gil(&dcnv3::layer_norm),
        "LayerNorm over the last dimension (CPU float32, contiguous)", py::arg("x"),
        py::arg("weight"), py::arg("bias"), py::arg("eps"));
  m.def("with_cuda", &dcnv3::with_cuda, "whether the CUDA kernels were compiled in");
  m.def("cpu_kernel_isa", &dcnv3::cpu_kernel_isa,
        "the instruction set of the CPU kernel version this machine runs");
}
