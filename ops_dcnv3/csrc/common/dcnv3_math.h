// The one definition of DCNv3's sampling math, shared by the CPU and the CUDA kernels.
//
//   y(n, p0, g) = sum_k m_gk * x_g(loc_gk),
//   loc_gk = p0 - half * s + (k_grid * dilation + dp_gk) * s          (s = offset_scale)
//
// Everything here is plain C++ with `__host__ __device__` inline functions (no torch, no CUDA
// runtime headers), so the CPU tests pin down what the GPU computes. Conventions follow the
// official CUDA kernel: channels-last tensors, offsets in pixels as (dx, dy) per group and point,
// points ordered with the kernel *width* index as the outer loop, pad_h pads the height, and a
// point contributes only when -1 < loc < size on both axes (bilinear with zeros outside).
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DCNV3_HD __host__ __device__ __forceinline__
#else
#define DCNV3_HD inline
#endif

namespace dcnv3 {

// Geometry and hyper-parameters of one call; filled by the torch-facing launchers.
struct Params {
  int64_t batch;
  int height_in, width_in, height_out, width_out;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int group, group_channels;
  int num_points;  // kernel_h * kernel_w, minus one with remove_center
  bool remove_center;
  double offset_scale;

  DCNV3_HD int channels() const { return group * group_channels; }
};

// Output size of a convolution-like sliding window; <= 0 means "input too small".
DCNV3_HD int out_size(int in, int pad, int dilation, int kernel, int stride) {
  return (in + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
}

template <typename T>
DCNV3_HD T floor_(T x);
template <>
DCNV3_HD float floor_<float>(float x) { return floorf(x); }
template <>
DCNV3_HD double floor_<double>(double x) { return floor(x); }

// Sampling location of kernel point (i over width, j over height) for output pixel (ho, wo),
// before the learned offset is added: loc = base + offset * s.
template <typename T>
struct GridPoint {
  T base_h, base_w;
};

template <typename T>
DCNV3_HD GridPoint<T> grid_point(const Params& p, int ho, int wo, int i, int j) {
  const int half_h = (p.dilation_h * (p.kernel_h - 1)) >> 1;
  const int half_w = (p.dilation_w * (p.kernel_w - 1)) >> 1;
  const T s = static_cast<T>(p.offset_scale);
  // Centre of the window in input (unpadded) coordinates.
  const int c_h = half_h - p.pad_h + ho * p.stride_h;
  const int c_w = half_w - p.pad_w + wo * p.stride_w;
  GridPoint<T> g;
  g.base_h = static_cast<T>(c_h) + static_cast<T>(j * p.dilation_h - half_h) * s;
  g.base_w = static_cast<T>(c_w) + static_cast<T>(i * p.dilation_w - half_w) * s;
  return g;
}

// True for the kernel point that remove_center drops.
DCNV3_HD bool is_removed_center(const Params& p, int i, int j) {
  return p.remove_center && i == p.kernel_w / 2 && j == p.kernel_h / 2;
}

// Bilinear interpolation at (h, w): corner offsets (in elements, channels-last) and weights.
// A corner outside the image has weight 0 and valid == false (it must not be read).
template <typename T>
struct Bilinear {
  bool inside;  // the official support test: -1 < h < H and -1 < w < W
  T lh, lw, hh, hw;
  T w[4];          // weights of corners (h_low,w_low) (h_low,w_high) (h_high,w_low) (h_high,w_high)
  bool valid[4];
  int64_t index[4];  // element offset of the corner's channel 0 within one image
};

template <typename T>
DCNV3_HD Bilinear<T> bilinear(T h, T w, int height, int width, int64_t w_stride) {
  Bilinear<T> b;
  b.inside = h > T(-1) && w > T(-1) && h < T(height) && w < T(width);
  if (!b.inside) {
    for (int k = 0; k < 4; ++k) {
      b.w[k] = T(0);
      b.valid[k] = false;
      b.index[k] = 0;
    }
    b.lh = b.lw = b.hh = b.hw = T(0);
    return b;
  }
  const T hf = floor_(h);
  const T wf = floor_(w);
  const int h_low = static_cast<int>(hf);
  const int w_low = static_cast<int>(wf);
  const int h_high = h_low + 1;
  const int w_high = w_low + 1;
  b.lh = h - hf;
  b.lw = w - wf;
  b.hh = T(1) - b.lh;
  b.hw = T(1) - b.lw;
  b.w[0] = b.hh * b.hw;
  b.w[1] = b.hh * b.lw;
  b.w[2] = b.lh * b.hw;
  b.w[3] = b.lh * b.lw;
  b.valid[0] = h_low >= 0 && w_low >= 0;
  b.valid[1] = h_low >= 0 && w_high <= width - 1;
  b.valid[2] = h_high <= height - 1 && w_low >= 0;
  b.valid[3] = h_high <= height - 1 && w_high <= width - 1;
  const int64_t h_stride = static_cast<int64_t>(width) * w_stride;
  b.index[0] = h_low * h_stride + w_low * w_stride;
  b.index[1] = h_low * h_stride + w_high * w_stride;
  b.index[2] = h_high * h_stride + w_low * w_stride;
  b.index[3] = h_high * h_stride + w_high * w_stride;
  return b;
}

// d(value)/d(h) and d(value)/d(w) given the four corner values v (0 for invalid corners):
//   value = hh*hw*v0 + hh*lw*v1 + lh*hw*v2 + lh*lw*v3
template <typename T>
DCNV3_HD T dvalue_dh(const Bilinear<T>& b, T v0, T v1, T v2, T v3) {
  return -b.hw * v0 - b.lw * v1 + b.hw * v2 + b.lw * v3;
}
template <typename T>
DCNV3_HD T dvalue_dw(const Bilinear<T>& b, T v0, T v1, T v2, T v3) {
  return -b.hh * v0 + b.hh * v1 - b.lh * v2 + b.lh * v3;
}

// Element offsets of the offset/mask entries of (pixel, group, point); pixel = (n*Ho+ho)*Wo+wo.
DCNV3_HD int64_t offset_index(const Params& p, int64_t pixel, int g, int point) {
  return (pixel * p.group + g) * p.num_points * 2 + point * 2;
}
DCNV3_HD int64_t mask_index(const Params& p, int64_t pixel, int g, int point) {
  return (pixel * p.group + g) * p.num_points + point;
}

}  // namespace dcnv3
