// The features of the DCNv3 module's offset branch for CPU inference (float32), one pass per
// pixel instead of three over the whole tensor:
//
//   y = GELU(LN(dwconv(x)))   (or LN(dwconv(x)) without the activation)
//
// x [N, H, W, C] channels-last; dwconv: depthwise k x k convolution, stride 1, zero padding
// (k - 1) / 2, with bias; LN: LayerNorm over the C channels of each pixel (weight, bias, eps),
// biased variance as nn.LayerNorm; GELU: the exact (erf) form of cpu_gelu.h. Each pixel's C
// conv outputs stay in an L1-resident row while its mean and variance are taken (two passes
// over the row: sum, then squared deviations), then are normalised and stored; the GELU runs
// over each output row while it is in cache.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../dcnv3.h"
#include "cpu_gelu.h"
#include "cpu_layer_norm.h"
#include "cpu_vec.h"

namespace dcnv3 {
namespace {

// Multiply-adds per parallel chunk.
constexpr int64_t kGrainWork = 65536;
// Vectors of channels whose conv sums stay in registers across the taps.
constexpr int kBlock = 4;

struct DwLnArgs {
  const float* x;       // [N, H, W, C]
  const float* weight;  // [k * k, C]: tap-major, so each tap's C weights are contiguous
  const float* conv_bias;  // [C] or null
  const float* ln_weight;  // [C]
  const float* ln_bias;    // [C]
  float* y;                // [N, H, W, C]
  int64_t height, width, channels, kernel;
  float eps;
  bool gelu;
};

// Rows [r0, r1) of the N * H output rows; `row` holds one pixel's C conv outputs.
template <int kVecBytes>
DCNV3_INLINE void dwconv_ln_rows(const DwLnArgs& a, int64_t r0, int64_t r1, float* row) {
  constexpr int L = kVecBytes / sizeof(float);
  using F = typename Vec<float, L>::type;
  const int64_t H = a.height, W = a.width, C = a.channels, K = a.kernel, pad = (K - 1) / 2;
  const int64_t CV = C / L * L;  // channels in whole vectors; the rest one by one
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / H, h = r % H;
    for (int64_t w = 0; w < W; ++w) {
      // the taps inside the image
      const int64_t i0 = std::max<int64_t>(0, pad - h), i1 = std::min(K, H + pad - h);
      const int64_t j0 = std::max<int64_t>(0, pad - w), j1 = std::min(K, W + pad - w);
      // offset of tap (0, 0), outside x when the tap is in the padding (never read there)
      const int64_t x00 = ((n * H + h - pad) * W + (w - pad)) * C;
      // channel blocks of kBlock vectors accumulate over every tap in registers
      int64_t c = 0;
      for (; c + kBlock * L <= C; c += kBlock * L) {
        F acc[kBlock];
        for (int v = 0; v < kBlock; ++v)
          acc[v] = a.conv_bias != nullptr ? load<F>(a.conv_bias + c + v * L) : F{};
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) {
            const float* __restrict xp = a.x + (x00 + (i * W + j) * C + c);
            const float* __restrict wp = a.weight + (i * K + j) * C + c;
#pragma GCC unroll 8
            for (int v = 0; v < kBlock; ++v) acc[v] += load<F>(wp + v * L) * load<F>(xp + v * L);
          }
        for (int v = 0; v < kBlock; ++v) store(row + c + v * L, acc[v]);
      }
      for (; c < CV; c += L) {  // whole vectors left
        F acc = a.conv_bias != nullptr ? load<F>(a.conv_bias + c) : F{};
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j)
            acc += load<F>(a.weight + (i * K + j) * C + c) *
                   load<F>(a.x + (x00 + (i * W + j) * C + c));
        store(row + c, acc);
      }
      for (; c < C; ++c) {
        float acc = a.conv_bias != nullptr ? a.conv_bias[c] : 0.0f;
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j)
            acc += a.weight[(i * K + j) * C + c] * a.x[x00 + (i * W + j) * C + c];
        row[c] = acc;
      }
      // LN of the pixel's row (cpu_layer_norm.h)
      float mean, rstd;
      const float* rows[1] = {row};
      row_moments<kVecBytes, 1>(rows, C, a.eps, &mean, &rstd);
      normalize_row<kVecBytes>(row, mean, rstd, a.ln_weight, a.ln_bias, C,
                               a.y + ((n * H + h) * W + w) * C);
    }
    // GELU over the whole output row at once (still in cache): a long loop, whose independent
    // iterations overlap, where one pixel's few vectors would wait on each division
    if (a.gelu) gelu_span<kVecBytes>(a.y + (n * H + h) * W * C, nullptr, W * C);
  }
}

#define DCNV3_DEFINE_DWCONV_LN(SUFFIX, TARGET, VEC_BYTES)                                   \
  TARGET void dwconv_ln_rows_##SUFFIX(const DwLnArgs& a, int64_t r0, int64_t r1,          \
                                      float* row) {                                       \
    dwconv_ln_rows<VEC_BYTES>(a, r0, r1, row);                                            \
  }
DCNV3_FOR_EACH_VERSION(DCNV3_DEFINE_DWCONV_LN)
#undef DCNV3_DEFINE_DWCONV_LN

}  // namespace

at::Tensor cpu_dwconv_ln(const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& conv_bias, const at::Tensor& ln_weight,
                         const at::Tensor& ln_bias, double eps, bool gelu) {
  const int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t K = weight.size(-1);
  at::Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  // [C, 1, K, K] -> [K * K, C]
  const at::Tensor taps = weight.reshape({C, K * K}).t().contiguous();
  DwLnArgs a{x.data_ptr<float>(),
             taps.data_ptr<float>(),
             conv_bias.defined() ? conv_bias.data_ptr<float>() : nullptr,
             ln_weight.data_ptr<float>(),
             ln_bias.data_ptr<float>(),
             y.data_ptr<float>(),
             H,
             W,
             C,
             K,
             static_cast<float>(eps),
             gelu};
  // chosen before the parallel region: errors raise on this thread
  const auto run = DCNV3_THIS_VERSION(dwconv_ln_rows);
  const int64_t work_per_row = std::max<int64_t>(1, W * C * K * K);
  at::parallel_for(0, N * H, std::max<int64_t>(1, kGrainWork / work_per_row),
                   [&](int64_t r0, int64_t r1) {
                     std::vector<float> row(C);
                     run(a, r0, r1, row.data());
                   });
  return y;
}

}  // namespace dcnv3
