// DCNv3 CPU kernels (float32, float64): forward and backward, multi-threaded with
// at::parallel_for. The inner loops run over the contiguous channels of one group
// (channels-last), so they are axpy / dot-product loops the compiler vectorises.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "../dcnv3.h"

namespace dcnv3 {
namespace {

// Work per parallel chunk that amortises thread start-up (in multiply-adds).
constexpr int64_t kGrainWork = 32768;

template <typename T>
inline void axpy(T* __restrict y, T a, const T* __restrict x, int n) {
#pragma omp simd
  for (int c = 0; c < n; ++c) y[c] += a * x[c];
}

template <typename T>
inline void atomic_axpy(T* y, T a, const T* __restrict x, int n) {
  for (int c = 0; c < n; ++c) std::atomic_ref<T>(y[c]).fetch_add(a * x[c], std::memory_order_relaxed);
}

template <typename T>
inline T dot(const T* __restrict a, const T* __restrict b, int n) {
  T acc = T(0);
#pragma omp simd reduction(+ : acc)
  for (int c = 0; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

// Calls f(i, j, point) for every kernel point in the official order (width index outer).
template <typename F>
inline void for_each_point(const Params& p, F&& f) {
  int point = 0;
  for (int i = 0; i < p.kernel_w; ++i) {
    for (int j = 0; j < p.kernel_h; ++j) {
      if (is_removed_center(p, i, j)) continue;
      f(i, j, point++);
    }
  }
}

// Bilinear setup of one (pixel, group, point): location from grid + offset * offset_scale.
template <typename T>
inline Bilinear<T> sample_at(const Params& p, const T* offset, int64_t pixel, int ho, int wo,
                             int g, int i, int j, int point) {
  const GridPoint<T> gp = grid_point<T>(p, ho, wo, i, j);
  const T s = static_cast<T>(p.offset_scale);
  const int64_t oi = offset_index(p, pixel, g, point);
  const T loc_w = gp.base_w + offset[oi] * s;
  const T loc_h = gp.base_h + offset[oi + 1] * s;
  return bilinear<T>(loc_h, loc_w, p.height_in, p.width_in, p.channels());
}

template <typename T>
void forward_impl(const T* input, const T* offset, const T* mask, T* output, const Params& p) {
  const int gc = p.group_channels;
  const int64_t C = p.channels();
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const int64_t pixels = p.batch * plane;
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  const int64_t work = std::max<int64_t>(1, static_cast<int64_t>(p.group) * p.num_points * gc * 4);
  at::parallel_for(0, pixels, std::max<int64_t>(1, kGrainWork / work), [&](int64_t begin, int64_t end) {
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / plane;
      const int ho = static_cast<int>((pix % plane) / p.width_out);
      const int wo = static_cast<int>(pix % p.width_out);
      const T* image = input + n * image_stride;
      T* out = output + pix * C;
      std::fill(out, out + C, T(0));
      for (int g = 0; g < p.group; ++g) {
        T* acc = out + g * gc;
        const T* image_g = image + g * gc;
        for_each_point(p, [&](int i, int j, int point) {
          const Bilinear<T> b = sample_at<T>(p, offset, pix, ho, wo, g, i, j, point);
          if (!b.inside) return;
          const T m = mask[mask_index(p, pix, g, point)];
          for (int k = 0; k < 4; ++k)
            if (b.valid[k]) axpy(acc, m * b.w[k], image_g + b.index[k], gc);
        });
      }
    }
  });
}

// Gradients of one (pixel, group): writes its grad_offset / grad_mask entries and scatters
// into grad_input (atomically when tasks may share grad_input elements).
template <typename T, bool kAtomic>
inline void backward_pixel_group(const Params& p, const T* grad_out, const T* image_g,
                                 const T* offset, const T* mask, T* grad_image_g,
                                 T* grad_offset, T* grad_mask, int64_t pix, int ho, int wo,
                                 int g) {
  const int gc = p.group_channels;
  const T s = static_cast<T>(p.offset_scale);
  const T* go = grad_out + pix * p.channels() + g * gc;
  for_each_point(p, [&](int i, int j, int point) {
    const Bilinear<T> b = sample_at<T>(p, offset, pix, ho, wo, g, i, j, point);
    if (!b.inside) return;  // zero gradients (outputs start at zero)
    const int64_t mi = mask_index(p, pix, g, point);
    const int64_t oi = offset_index(p, pix, g, point);
    const T m = mask[mi];
    // d_k = <grad_out, corner_k>: every gradient of this point is a combination of them.
    T d[4] = {T(0), T(0), T(0), T(0)};
    for (int k = 0; k < 4; ++k)
      if (b.valid[k]) d[k] = dot(go, image_g + b.index[k], gc);
    grad_mask[mi] = b.w[0] * d[0] + b.w[1] * d[1] + b.w[2] * d[2] + b.w[3] * d[3];
    grad_offset[oi] = dvalue_dw(b, d[0], d[1], d[2], d[3]) * m * s;
    grad_offset[oi + 1] = dvalue_dh(b, d[0], d[1], d[2], d[3]) * m * s;
    for (int k = 0; k < 4; ++k) {
      if (!b.valid[k]) continue;
      if (kAtomic)
        atomic_axpy(grad_image_g + b.index[k], m * b.w[k], go, gc);
      else
        axpy(grad_image_g + b.index[k], m * b.w[k], go, gc);
    }
  });
}

template <typename T>
void backward_impl(const T* grad_out, const T* input, const T* offset, const T* mask,
                   T* grad_input, T* grad_offset, T* grad_mask, const Params& p,
                   BackwardStrategy strategy) {
  const int64_t C = p.channels();
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  const int64_t tasks = p.batch * p.group;
  if (strategy == BackwardStrategy::kAuto)
    strategy = tasks >= 2 * at::get_num_threads() ? BackwardStrategy::kOwner : BackwardStrategy::kAtomic;

  if (strategy == BackwardStrategy::kOwner) {
    at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / p.group;
        const int g = static_cast<int>(t % p.group);
        const T* image_g = input + n * image_stride + g * p.group_channels;
        T* grad_image_g = grad_input + n * image_stride + g * p.group_channels;
        for (int64_t q = 0; q < plane; ++q) {
          backward_pixel_group<T, false>(p, grad_out, image_g, offset, mask, grad_image_g,
                                         grad_offset, grad_mask, n * plane + q,
                                         static_cast<int>(q / p.width_out),
                                         static_cast<int>(q % p.width_out), g);
        }
      }
    });
    return;
  }
  const int64_t work = std::max<int64_t>(1, static_cast<int64_t>(p.group) * p.num_points * p.group_channels * 8);
  at::parallel_for(0, p.batch * plane, std::max<int64_t>(1, kGrainWork / work), [&](int64_t begin, int64_t end) {
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t n = pix / plane;
      const int ho = static_cast<int>((pix % plane) / p.width_out);
      const int wo = static_cast<int>(pix % p.width_out);
      for (int g = 0; g < p.group; ++g) {
        const int64_t base = n * image_stride + g * p.group_channels;
        backward_pixel_group<T, true>(p, grad_out, input + base, offset, mask, grad_input + base,
                                      grad_offset, grad_mask, pix, ho, wo, g);
      }
    }
  });
}

}  // namespace

at::Tensor cpu_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const Params& p) {
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.contiguous();
  auto output = at::empty({p.batch, p.height_out, p.width_out, p.channels()}, in.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "dcnv3_cpu_forward", [&] {
    forward_impl<scalar_t>(in.const_data_ptr<scalar_t>(), off.const_data_ptr<scalar_t>(),
                           msk.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>(), p);
  });
  return output;
}

std::vector<at::Tensor> cpu_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                     const at::Tensor& offset, const at::Tensor& mask,
                                     const Params& p, BackwardStrategy strategy) {
  auto go = grad_output.contiguous();
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.contiguous();
  auto grad_input = at::zeros_like(in);
  auto grad_offset = at::zeros_like(off);
  auto grad_mask = at::zeros_like(msk);
  if (go.numel() == 0) return {grad_input, grad_offset, grad_mask};
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "dcnv3_cpu_backward", [&] {
    backward_impl<scalar_t>(go.const_data_ptr<scalar_t>(), in.const_data_ptr<scalar_t>(),
                            off.const_data_ptr<scalar_t>(), msk.const_data_ptr<scalar_t>(),
                            grad_input.mutable_data_ptr<scalar_t>(),
                            grad_offset.mutable_data_ptr<scalar_t>(),
                            grad_mask.mutable_data_ptr<scalar_t>(), p, strategy);
  });
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace dcnv3
