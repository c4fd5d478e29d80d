// LayerNorm over the last dimension of a contiguous float32 tensor, for CPU inference: the
// block norms of InternImage (channels-last, C = 64-512 channels a row, 25088 rows at T stage 1,
// batch 8). ATen's kernel updates a running mean and variance per element (Welford, a division
// each), which at these row lengths costs 2.5x a pass over the data; here each row is summed
// twice while it is in L1 (cpu_layer_norm.h), four rows at a time.
#include <ATen/Parallel.h>

#include <algorithm>

#include "../dcnv3.h"
#include "cpu_layer_norm.h"
#include "cpu_vec.h"

namespace dcnv3 {
namespace {

// Rows per parallel chunk, as channels (elements) per chunk.
constexpr int64_t kGrainElements = 32768;

struct LnArgs {
  const float* x;       // [R, C]
  const float* weight;  // [C]
  const float* bias;    // [C]
  float* y;             // [R, C]
  int64_t channels;
  float eps;
};

template <int kVecBytes>
DCNV3_INLINE void layer_norm_rows(const LnArgs& a, int64_t r0, int64_t r1) {
  const int64_t C = a.channels;
  for (int64_t r = r0; r < r1; r += 4) {
    const int rows = static_cast<int>(std::min<int64_t>(4, r1 - r));
    // a last group of fewer than four rows repeats its last row (stored once)
    const float* x[4];
    for (int q = 0; q < 4; ++q) x[q] = a.x + (r + std::min(q, rows - 1)) * C;
    float mean[4], rstd[4];
    row_moments<kVecBytes, 4>(x, C, a.eps, mean, rstd);
    for (int q = 0; q < rows; ++q)
      normalize_row<kVecBytes>(x[q], mean[q], rstd[q], a.weight, a.bias, C, a.y + (r + q) * C);
  }
}

#define DCNV3_DEFINE_LAYER_NORM(SUFFIX, TARGET, VEC_BYTES)                          \
  TARGET void layer_norm_rows_##SUFFIX(const LnArgs& a, int64_t r0, int64_t r1) { \
    layer_norm_rows<VEC_BYTES>(a, r0, r1);                                        \
  }
DCNV3_FOR_EACH_VERSION(DCNV3_DEFINE_LAYER_NORM)
#undef DCNV3_DEFINE_LAYER_NORM

}  // namespace

at::Tensor cpu_layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          double eps) {
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t C = x.size(-1), R = C > 0 ? x.numel() / C : 0;
  if (R == 0 || C == 0) return y;
  const LnArgs a{x.data_ptr<float>(), weight.data_ptr<float>(), bias.data_ptr<float>(),
                 y.data_ptr<float>(), C, static_cast<float>(eps)};
  // chosen before the parallel region: errors raise on this thread
  const auto run = DCNV3_THIS_VERSION(layer_norm_rows);
  // chunks of whole groups of four rows
  const int64_t grain = std::max<int64_t>(4, kGrainElements / C / 4 * 4);
  at::parallel_for(0, (R + 3) / 4, grain / 4, [&](int64_t g0, int64_t g1) {
    run(a, g0 * 4, std::min(R, g1 * 4));
  });
  return y;
}

}  // namespace dcnv3
