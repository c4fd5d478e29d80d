// GELU in place, with an optional bias added first, for CPU inference (float32):
//
//   y <- GELU(y + b)   (the exact, erf form: cpu_gelu.h)
//
// InternImage applies it to the first MLP layer's output and to the DCNv3 offset branch's
// features. ATen's GELU evaluates erf with a general-purpose vector erf and writes a new tensor;
// with the bias of the preceding GEMM folded in, this is one pass that also replaces addmm's
// copy of the bias into its output.
#include <ATen/Parallel.h>

#include <algorithm>

#include "../dcnv3.h"
#include "cpu_gelu.h"
#include "cpu_vec.h"

namespace dcnv3 {
namespace {

// Elements per parallel chunk (~50 vector operations each).
constexpr int64_t kGrain = 16384;

// Rows [r0, r1) of y [rows, n] with the bias b [n] (or null) on every row.
#define DCNV3_DEFINE_GELU_ROWS(SUFFIX, TARGET, VEC_BYTES)                                  \
  TARGET void gelu_rows_##SUFFIX(float* y, const float* b, int64_t n, int64_t r0,          \
                                 int64_t r1) {                                             \
    for (int64_t r = r0; r < r1; ++r) gelu_span<VEC_BYTES>(y + r * n, b, n);               \
  }
DCNV3_FOR_EACH_VERSION(DCNV3_DEFINE_GELU_ROWS)
#undef DCNV3_DEFINE_GELU_ROWS

}  // namespace

void cpu_bias_gelu_(at::Tensor& y, const at::Tensor& bias) {
  const int64_t numel = y.numel();
  if (numel == 0) return;
  float* data = y.data_ptr<float>();
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  // Rows of the bias's length; without a bias, rows of a fixed length (the tail row shorter).
  const int64_t n = b != nullptr ? bias.numel() : std::min<int64_t>(numel, 1024);
  const int64_t rows = (numel + n - 1) / n;
  // chosen before the parallel region: errors raise on this thread
  const auto run = DCNV3_THIS_VERSION(gelu_rows);
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) {
    const int64_t full = std::min(r1, numel / n);  // rows of length n
    if (r0 < full) run(data, b, n, r0, full);
    if (r1 > full && numel % n != 0) run(data + full * n, b, numel % n, 0, 1);
  });
}

}  // namespace dcnv3
