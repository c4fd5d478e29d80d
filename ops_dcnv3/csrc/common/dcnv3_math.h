// The one definition of DCNv3's sampling math, shared by the CPU and the CUDA kernels.
//
//   y(n, p0, g) = sum_k m_gk * x_g(loc_gk),
//   loc_gk = centre(p0) + (grid_k + dp_gk) * s          (s = offset_scale)
//
// Everything here is plain C++ with `__host__ __device__` inline functions (no torch, no CUDA
// runtime headers), so the CPU tests pin down what the GPU computes. The functions are
// branch-free scalar code so the CPU kernels can vectorise them across sampling points.
// Conventions follow the official CUDA kernel: channels-last tensors, offsets in pixels as
// (dx, dy) per group and point, points ordered with the kernel *width* index as the outer loop,
// pad_h pads the height, and a point contributes only when -1 < loc < size on both axes
// (bilinear with zeros outside).
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DCNV3_HD __host__ __device__ __forceinline__
#else
#define DCNV3_HD inline __attribute__((always_inline))
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

// Output size of a convolution-like sliding window, floor((in + 2 pad - span) / stride) + 1 as
// in Python and torch.nn.Conv2d (C++ `/` truncates toward zero); <= 0 means "input too small".
// In 64 bits: the checked launchers narrow the result to int only after a range check.
DCNV3_HD int64_t out_size(int64_t in, int64_t pad, int64_t dilation, int64_t kernel,
                          int64_t stride) {
  const int64_t span = in + 2 * pad - (dilation * (kernel - 1) + 1);
  const int64_t steps = span >= 0 ? span / stride : -((-span + stride - 1) / stride);
  return steps + 1;
}

template <typename T>
DCNV3_HD T floor_(T x);
template <>
DCNV3_HD float floor_<float>(float x) { return floorf(x); }
template <>
DCNV3_HD double floor_<double>(double x) { return floor(x); }

// True for the kernel point that remove_center drops.
DCNV3_HD bool is_removed_center(const Params& p, int i, int j) {
  return p.remove_center && i == p.kernel_w / 2 && j == p.kernel_h / 2;
}

// Kernel point -> (i over width, j over height), skipping the removed centre.
DCNV3_HD void point_ij(const Params& p, int point, int* i, int* j) {
  const int centre = (p.kernel_w / 2) * p.kernel_h + p.kernel_h / 2;
  const int flat = (p.remove_center && point >= centre) ? point + 1 : point;
  *i = flat / p.kernel_h;
  *j = flat % p.kernel_h;
}

// Window centre of output pixel (ho, wo) in input (unpadded) coordinates.
DCNV3_HD int centre_h(const Params& p, int ho) {
  return ((p.dilation_h * (p.kernel_h - 1)) >> 1) - p.pad_h + ho * p.stride_h;
}
DCNV3_HD int centre_w(const Params& p, int wo) {
  return ((p.dilation_w * (p.kernel_w - 1)) >> 1) - p.pad_w + wo * p.stride_w;
}

// Regular-grid displacement of kernel point (i, j) from the centre, scaled by offset_scale.
template <typename T>
DCNV3_HD T grid_dh(const Params& p, int j) {
  return static_cast<T>(j * p.dilation_h - ((p.dilation_h * (p.kernel_h - 1)) >> 1)) *
         static_cast<T>(p.offset_scale);
}
template <typename T>
DCNV3_HD T grid_dw(const Params& p, int i) {
  return static_cast<T>(i * p.dilation_w - ((p.dilation_w * (p.kernel_w - 1)) >> 1)) *
         static_cast<T>(p.offset_scale);
}

// loc = (centre + grid) + offset * s; `base` is the offset-free part.
template <typename T>
DCNV3_HD T base_location(int centre, T grid) {
  return static_cast<T>(centre) + grid;
}
template <typename T>
DCNV3_HD T location(T base, T offset, T s) {
  return base + offset * s;
}

// Bilinear sampling at (h, w) in an image of height x width.
// Corners: 00 = (y0, x0), 01 = (y0, x0+1), 10 = (y0+1, x0), 11 = (y0+1, x0+1). A corner
// outside the image has weight 0 and must not contribute; `cy*`/`cx*` are the corner
// coordinates clamped into the image, so a kernel may address them unconditionally (a clamped
// corner always coincides with an in-image corner of the same point).
template <typename T>
struct Bilinear {
  T inside;            // 1 when -1 < h < height and -1 < w < width (the official support test)
  T ly, lx, hy, hx;    // fractional parts: ly = h - floor(h), hy = 1 - ly
  T v00, v01, v10, v11;  // 1 for corners inside the image (and the point inside), else 0
  int cy0, cy1, cx0, cx1;  // clamped corner coordinates

  DCNV3_HD T w00() const { return v00 * hy * hx; }
  DCNV3_HD T w01() const { return v01 * hy * lx; }
  DCNV3_HD T w10() const { return v10 * ly * hx; }
  DCNV3_HD T w11() const { return v11 * ly * lx; }
  // d(value)/dh and d(value)/dw from the corner values d_ij (invalid corners must be 0).
  DCNV3_HD T dh(T d00, T d01, T d10, T d11) const {
    return -hx * d00 - lx * d01 + hx * d10 + lx * d11;
  }
  DCNV3_HD T dw(T d00, T d01, T d10, T d11) const {
    return -hy * d00 + hy * d01 - ly * d10 + ly * d11;
  }
};

template <typename T>
DCNV3_HD Bilinear<T> bilinear(T h, T w, int height, int width) {
  Bilinear<T> b;
  // `&`, not `&&`: no branches, so the CPU loop over points vectorises.
  const bool in = (h > T(-1)) & (w > T(-1)) & (h < T(height)) & (w < T(width));
  // Outside points are moved to (0, 0) so every later computation stays finite and in range.
  h = in ? h : T(0);
  w = in ? w : T(0);
  const T fy = floor_(h);
  const T fx = floor_(w);
  const int y0 = static_cast<int>(fy);
  const int x0 = static_cast<int>(fx);
  b.inside = in ? T(1) : T(0);
  b.ly = h - fy;
  b.lx = w - fx;
  b.hy = T(1) - b.ly;
  b.hx = T(1) - b.lx;
  const T vy0 = (y0 >= 0) ? b.inside : T(0);
  const T vy1 = (y0 + 1 <= height - 1) ? b.inside : T(0);
  const T vx0 = (x0 >= 0) ? T(1) : T(0);
  const T vx1 = (x0 + 1 <= width - 1) ? T(1) : T(0);
  b.v00 = vy0 * vx0;
  b.v01 = vy0 * vx1;
  b.v10 = vy1 * vx0;
  b.v11 = vy1 * vx1;
  b.cy0 = y0 < 0 ? 0 : y0;
  b.cx0 = x0 < 0 ? 0 : x0;
  b.cy1 = y0 + 1 > height - 1 ? height - 1 : y0 + 1;
  b.cx1 = x0 + 1 > width - 1 ? width - 1 : x0 + 1;
  return b;
}

// Element offsets of the offset/mask entries of (pixel, group, point); pixel = (n*Ho+ho)*Wo+wo.
DCNV3_HD int64_t offset_index(const Params& p, int64_t pixel, int g, int point) {
  return (pixel * p.group + g) * p.num_points * 2 + point * 2;
}
DCNV3_HD int64_t mask_index(const Params& p, int64_t pixel, int g, int point) {
  return (pixel * p.group + g) * p.num_points + point;
}

}  // namespace dcnv3
