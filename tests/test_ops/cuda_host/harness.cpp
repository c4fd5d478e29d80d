// C entry points (for ctypes) around the DCNv3 CUDA launchers compiled for the host.
// kernel_host.cc is ops_dcnv3/csrc/cuda/dcnv3_cuda_kernel.cu with its <<<...>>> launches
// rewritten by build.py; nothing else in it is changed.
#include "kernel_host.cc"

namespace {

dcnv3::Params make_params(const int64_t* a, double offset_scale) {
  dcnv3::Params p;
  p.batch = a[0];
  p.height_in = static_cast<int>(a[1]);
  p.width_in = static_cast<int>(a[2]);
  p.kernel_h = static_cast<int>(a[3]);
  p.kernel_w = static_cast<int>(a[4]);
  p.stride_h = static_cast<int>(a[5]);
  p.stride_w = static_cast<int>(a[6]);
  p.pad_h = static_cast<int>(a[7]);
  p.pad_w = static_cast<int>(a[8]);
  p.dilation_h = static_cast<int>(a[9]);
  p.dilation_w = static_cast<int>(a[10]);
  p.group = static_cast<int>(a[11]);
  p.group_channels = static_cast<int>(a[12]);
  p.remove_center = a[13] != 0;
  p.offset_scale = offset_scale;
  p.num_points = p.kernel_h * p.kernel_w - (p.remove_center ? 1 : 0);
  p.height_out = static_cast<int>(dcnv3::out_size(p.height_in, p.pad_h, p.dilation_h,
                                                  p.kernel_h, p.stride_h));
  p.width_out = static_cast<int>(dcnv3::out_size(p.width_in, p.pad_w, p.dilation_w, p.kernel_w,
                                                 p.stride_w));
  return p;
}

}  // namespace

extern "C" {

int dcnv3_host_forward(int dtype, const void* input, const void* offset, const void* mask,
                       void* output, const int64_t* args, double offset_scale) {
  return dcnv3::launch_forward(static_cast<dcnv3::DType>(dtype), input, offset, mask, output,
                               make_params(args, offset_scale), nullptr);
}

int dcnv3_host_backward(int dtype, const void* grad_output, const void* input,
                        const void* offset, const void* mask, void* grad_input_acc,
                        void* grad_offset, void* grad_mask, const int64_t* args,
                        double offset_scale) {
  return dcnv3::launch_backward(static_cast<dcnv3::DType>(dtype), grad_output, input, offset,
                                mask, grad_input_acc, grad_offset, grad_mask,
                                make_params(args, offset_scale), nullptr);
}

void cuda_host_configure(int os_threads, unsigned max_blocks, int reverse, int dry_run) {
  cuda_host::config = cuda_host::Config{os_threads, max_blocks, reverse != 0, dry_run != 0};
}

// grid x/y/z, block x/y/z, shared memory bytes, number of launches so far.
void cuda_host_last_launch(int64_t* out) {
  const auto& r = cuda_host::last_launch;
  const int64_t v[8] = {r.grid.x, r.grid.y, r.grid.z, r.block.x, r.block.y, r.block.z,
                        static_cast<int64_t>(r.shared_mem), r.launches};
  for (int i = 0; i < 8; ++i) out[i] = v[i];
}

// Launch an empty kernel with an arbitrary configuration: checks the stand-in's driver limits.
// Nothing is executed (dry run), so huge grids cost nothing.
int cuda_host_try_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, int64_t shared_mem) {
  const cuda_host::Config saved = cuda_host::config;
  cuda_host::config.dry_run = true;
  cuda_host::Launch(dim3(gx, gy, gz), dim3(bx, by, bz), static_cast<size_t>(shared_mem))
      .run(+[](int) {}, 0);
  cuda_host::config = saved;
  return cudaGetLastError();
}

}  // extern "C"
