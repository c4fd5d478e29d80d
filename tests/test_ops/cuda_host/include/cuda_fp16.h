// Stand-in for cuda_fp16.h (tests only): __half is a 16-bit struct with no implicit conversions,
// as under torch's __CUDA_NO_HALF_CONVERSIONS__, so a kernel must convert through the intrinsics.
// Conversions round to nearest even (GCC's _Float16, IEEE binary16).
#pragma once

#include <cstdint>
#include <cstring>

struct __half {
  uint16_t x;
};

inline __half __float2half(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  __half r;
  std::memcpy(&r.x, &h, sizeof(r.x));
  return r;
}

inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.x, sizeof(f));
  return static_cast<float>(f);
}
