// DCNv3 CUDA kernels, templated on the storage type (float, double, half, bfloat16); all
// arithmetic runs in float32 (float64 for double). Self-contained: CUDA headers + the shared
// math header only (see dcnv3_cuda_kernel.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dcnv3_cuda_kernel.h"

namespace dcnv3 {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct OpMath {
  using type = float;
};
template <>
struct OpMath<double> {
  using type = double;
};

template <typename T>
__device__ __forceinline__ typename OpMath<T>::type load(const T* p) {
  return static_cast<typename OpMath<T>::type>(*p);
}
template <>
__device__ __forceinline__ float load<__half>(const __half* p) {
  return __half2float(*p);
}
template <>
__device__ __forceinline__ float load<__nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}

template <typename T>
__device__ __forceinline__ T store(typename OpMath<T>::type v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half store<__half>(float v) {
  return __float2half(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

struct Pixel {
  int64_t n;
  int ho, wo;
};

__device__ __forceinline__ Pixel unravel(const Params& p, int64_t pixel) {
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  Pixel px;
  px.n = pixel / plane;
  const int64_t q = pixel % plane;
  px.ho = static_cast<int>(q / p.width_out);
  px.wo = static_cast<int>(q % p.width_out);
  return px;
}

template <typename T>
__device__ __forceinline__ Bilinear<typename OpMath<T>::type> sample_at(
    const Params& p, const T* offset, int64_t pixel, const Pixel& px, int g, int i, int j,
    int point) {
  using A = typename OpMath<T>::type;
  const A s = static_cast<A>(p.offset_scale);
  const int64_t oi = offset_index(p, pixel, g, point);
  const A h = location<A>(base_location<A>(centre_h(p, px.ho), grid_dh<A>(p, j)),
                          load(offset + oi + 1), s);
  const A w = location<A>(base_location<A>(centre_w(p, px.wo), grid_dw<A>(p, i)),
                          load(offset + oi), s);
  return bilinear<A>(h, w, p.height_in, p.width_in);
}

// Element offsets (channels-last, channel 0) of the four clamped corners within one image.
template <typename A>
__device__ __forceinline__ void corner_offsets(const Bilinear<A>& b, int width, int64_t C,
                                               int64_t e[4]) {
  e[0] = (static_cast<int64_t>(b.cy0) * width + b.cx0) * C;
  e[1] = (static_cast<int64_t>(b.cy0) * width + b.cx1) * C;
  e[2] = (static_cast<int64_t>(b.cy1) * width + b.cx0) * C;
  e[3] = (static_cast<int64_t>(b.cy1) * width + b.cx1) * C;
}

// One thread per output element (pixel, channel): consecutive threads read consecutive
// channels of the same sampling location, so the gathers coalesce.
template <typename T>
__global__ void forward_kernel(const T* __restrict__ input, const T* __restrict__ offset,
                               const T* __restrict__ mask, T* __restrict__ output, Params p,
                               int64_t total) {
  using A = typename OpMath<T>::type;
  const int64_t C = p.channels();
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int channel = static_cast<int>(idx % C);
    const int64_t pixel = idx / C;
    const int g = channel / p.group_channels;
    const Pixel px = unravel(p, pixel);
    const T* image = input + px.n * image_stride + channel;
    A acc = A(0);
    int point = 0;
    for (int i = 0; i < p.kernel_w; ++i) {
      for (int j = 0; j < p.kernel_h; ++j) {
        if (is_removed_center(p, i, j)) continue;
        const Bilinear<A> b = sample_at<T>(p, offset, pixel, px, g, i, j, point);
        const A m = load(mask + mask_index(p, pixel, g, point));
        ++point;
        if (b.inside == A(0)) continue;
        int64_t e[4];
        corner_offsets(b, p.width_in, C, e);
        // Invalid corners have weight 0 and a clamped (in-image) position: safe to read.
        const A v = b.w00() * load(image + e[0]) + b.w01() * load(image + e[1]) +
                    b.w10() * load(image + e[2]) + b.w11() * load(image + e[3]);
        acc += m * v;
      }
    }
    output[idx] = store<T>(acc);
  }
}

// One thread per (pixel, group): the reductions over the group's channels for grad_offset and
// grad_mask stay in registers; grad_input is scattered with atomicAdd into an accumulator of
// type Acc (float32 for half/bfloat16).
template <typename T, typename Acc>
__global__ void backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                const T* __restrict__ offset, const T* __restrict__ mask,
                                Acc* __restrict__ grad_input_acc, T* __restrict__ grad_offset,
                                T* __restrict__ grad_mask, Params p, int64_t total) {
  using A = typename OpMath<T>::type;
  const int64_t C = p.channels();
  const int gc = p.group_channels;
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  const A s = static_cast<A>(p.offset_scale);
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int g = static_cast<int>(idx % p.group);
    const int64_t pixel = idx / p.group;
    const Pixel px = unravel(p, pixel);
    const T* go = grad_output + pixel * C + g * gc;
    const T* image_g = input + px.n * image_stride + g * gc;
    Acc* grad_image_g = grad_input_acc + px.n * image_stride + g * gc;
    int point = 0;
    for (int i = 0; i < p.kernel_w; ++i) {
      for (int j = 0; j < p.kernel_h; ++j) {
        if (is_removed_center(p, i, j)) continue;
        const Bilinear<A> b = sample_at<T>(p, offset, pixel, px, g, i, j, point);
        const int64_t mi = mask_index(p, pixel, g, point);
        const int64_t oi = offset_index(p, pixel, g, point);
        ++point;
        if (b.inside == A(0)) {
          grad_mask[mi] = store<T>(A(0));
          grad_offset[oi] = store<T>(A(0));
          grad_offset[oi + 1] = store<T>(A(0));
          continue;
        }
        const A m = load(mask + mi);
        int64_t e[4];
        corner_offsets(b, p.width_in, C, e);
        const A a[4] = {m * b.w00(), m * b.w01(), m * b.w10(), m * b.w11()};
        // Only corners inside the image receive a gradient (an invalid corner's clamped position
        // belongs to another corner), as in the reference; a valid corner does even when its
        // weight is 0, so inf/NaN in grad_output propagates as there and on the CPU.
        const bool valid[4] = {b.v00 != A(0), b.v01 != A(0), b.v10 != A(0), b.v11 != A(0)};
        A d[4] = {A(0), A(0), A(0), A(0)};
        for (int c = 0; c < gc; ++c) {
          const A goc = load(go + c);
          for (int k = 0; k < 4; ++k) {
            d[k] += goc * load(image_g + e[k] + c);
            if (valid[k]) atomicAdd(grad_image_g + e[k] + c, static_cast<Acc>(a[k] * goc));
          }
        }
        d[0] *= b.v00;
        d[1] *= b.v01;
        d[2] *= b.v10;
        d[3] *= b.v11;
        grad_mask[mi] = store<T>(b.w00() * d[0] + b.w01() * d[1] + b.w10() * d[2] + b.w11() * d[3]);
        grad_offset[oi] = store<T>(b.dw(d[0], d[1], d[2], d[3]) * m * s);
        grad_offset[oi + 1] = store<T>(b.dh(d[0], d[1], d[2], d[3]) * m * s);
      }
    }
  }
}

inline unsigned blocks_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < (1LL << 30) ? blocks : (1LL << 30));
}

template <typename T>
cudaError_t forward_typed(const void* input, const void* offset, const void* mask, void* output,
                          const Params& p, cudaStream_t stream) {
  const int64_t total = p.batch * p.height_out * p.width_out * p.channels();
  if (total == 0) return cudaSuccess;
  forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      static_cast<const T*>(input), static_cast<const T*>(offset), static_cast<const T*>(mask),
      static_cast<T*>(output), p, total);
  return cudaGetLastError();
}

template <typename T, typename Acc>
cudaError_t backward_typed(const void* grad_output, const void* input, const void* offset,
                           const void* mask, void* grad_input_acc, void* grad_offset,
                           void* grad_mask, const Params& p, cudaStream_t stream) {
  const int64_t total = p.batch * p.height_out * p.width_out * p.group;
  if (total == 0) return cudaSuccess;
  backward_kernel<T, Acc><<<blocks_for(total), kThreads, 0, stream>>>(
      static_cast<const T*>(grad_output), static_cast<const T*>(input),
      static_cast<const T*>(offset), static_cast<const T*>(mask),
      static_cast<Acc*>(grad_input_acc), static_cast<T*>(grad_offset),
      static_cast<T*>(grad_mask), p, total);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_forward(DType dtype, const void* input, const void* offset, const void* mask,
                           void* output, const Params& p, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32: return forward_typed<float>(input, offset, mask, output, p, stream);
    case DType::kFloat64: return forward_typed<double>(input, offset, mask, output, p, stream);
    case DType::kFloat16: return forward_typed<__half>(input, offset, mask, output, p, stream);
    case DType::kBFloat16:
      return forward_typed<__nv_bfloat16>(input, offset, mask, output, p, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_backward(DType dtype, const void* grad_output, const void* input,
                            const void* offset, const void* mask, void* grad_input_acc,
                            void* grad_offset, void* grad_mask, const Params& p,
                            cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32:
      return backward_typed<float, float>(grad_output, input, offset, mask, grad_input_acc,
                                          grad_offset, grad_mask, p, stream);
    case DType::kFloat64:
      return backward_typed<double, double>(grad_output, input, offset, mask, grad_input_acc,
                                            grad_offset, grad_mask, p, stream);
    case DType::kFloat16:
      return backward_typed<__half, float>(grad_output, input, offset, mask, grad_input_acc,
                                           grad_offset, grad_mask, p, stream);
    case DType::kBFloat16:
      return backward_typed<__nv_bfloat16, float>(grad_output, input, offset, mask,
                                                  grad_input_acc, grad_offset, grad_mask, p,
                                                  stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dcnv3
