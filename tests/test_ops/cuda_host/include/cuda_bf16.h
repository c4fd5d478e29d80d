// Stand-in for cuda_bf16.h (tests only): __nv_bfloat16 is a 16-bit struct with no implicit
// conversions (as under __CUDA_NO_BFLOAT16_CONVERSIONS__); float -> bfloat16 rounds to nearest
// even and keeps NaN a (quiet) NaN, like __float2bfloat16.
#pragma once

#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  uint16_t x;
};

inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  __nv_bfloat16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    r.x = static_cast<uint16_t>((u >> 16) | 0x0040u);
  } else {
    r.x = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  return r;
}

inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = static_cast<uint32_t>(b.x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
