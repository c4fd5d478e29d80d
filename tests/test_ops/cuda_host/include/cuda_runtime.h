// Stand-in for CUDA's runtime header: just enough of CUDA to compile the unmodified DCNv3
// kernel file as C++ with g++ and execute its kernels on CPU threads (tests only).
//
// - `__global__`, `__device__`, `__host__` are empty; `threadIdx`/`blockIdx`/`blockDim`/
//   `gridDim` are thread-local, set by the launcher before each emulated CUDA thread runs.
// - Kernel launches (`k<<<grid, block, shmem, stream>>>(args)`) are rewritten at build time
//   (see build.py) into `::cuda_host::Launch(grid, block, shmem, stream).run(k, args)`, which
//   checks the configuration against the driver's limits, then runs every block: blocks are
//   spread over `Config::os_threads` OS threads (so atomicAdd really races), each block's CUDA
//   threads run one after another (valid for kernels without __syncthreads/shared memory).
// - atomicAdd on float/double is a real compare-and-swap loop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

typedef struct CUstream_st* cudaStream_t;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
};

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  }
  return "unknown error";
}

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace cuda_host {

// How launches run (set from the test through the harness's C entry points).
struct Config {
  int os_threads = 2;        // OS threads the blocks are spread over
  unsigned max_blocks = 0;   // > 0: launch at most this many blocks along x (loops must wrap)
  bool reverse = false;      // run the blocks in reverse order
  bool dry_run = false;      // record the configuration, run nothing
};
inline Config config;

struct LaunchRecord {
  dim3 grid, block;
  size_t shared_mem = 0;
  int64_t launches = 0;
};
inline LaunchRecord last_launch;
inline cudaError_t last_error = cudaSuccess;

// The driver's limits for compute capability >= 3.0 (sm_80 / sm_90 included).
inline bool valid_configuration(const dim3& grid, const dim3& block, size_t shared_mem) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u &&
         grid.y <= 65535u && grid.z <= 65535u && block.x >= 1 && block.y >= 1 &&
         block.z >= 1 && block.x <= 1024u && block.y <= 1024u && block.z <= 64u &&
         threads <= 1024u && shared_mem <= 48u * 1024u;
}

class Launch {
 public:
  Launch(dim3 grid, dim3 block, size_t shared_mem = 0, cudaStream_t = nullptr)
      : grid_(grid), block_(block), shared_mem_(shared_mem) {}

  template <typename... Params, typename... Args>
  void run(void (*kernel)(Params...), Args&&... args) const {
    last_launch = LaunchRecord{grid_, block_, shared_mem_, last_launch.launches + 1};
    if (!valid_configuration(grid_, block_, shared_mem_)) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
    if (config.dry_run) return;
    // The capped mode launches fewer blocks along x than asked for (what a grid-stride kernel
    // must tolerate): gridDim says so, and the loops must wrap to cover the work.
    dim3 grid = grid_;
    if (config.max_blocks > 0 && config.max_blocks < grid.x) grid.x = config.max_blocks;
    const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
    auto body = [&, kernel](int worker, int workers) {
      for (uint64_t i = worker; i < blocks; i += workers) {
        const uint64_t b = config.reverse ? blocks - 1 - i : i;
        gridDim = grid;
        blockDim = block_;
        blockIdx = dim3(unsigned(b % grid.x), unsigned((b / grid.x) % grid.y),
                        unsigned(b / (uint64_t(grid.x) * grid.y)));
        for (unsigned z = 0; z < block_.z; ++z)
          for (unsigned y = 0; y < block_.y; ++y)
            for (unsigned x = 0; x < block_.x; ++x) {
              threadIdx = dim3(x, y, z);
              kernel(Params(args)...);  // by value, as a launch copies its arguments
            }
      }
    };
    const int workers = config.os_threads > 1 ? config.os_threads : 1;
    std::vector<std::thread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(body, w, workers);
    body(0, workers);
    for (auto& t : pool) t.join();
  }

 private:
  dim3 grid_, block_;
  size_t shared_mem_;
};

template <typename T>
inline T atomic_add(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
  }
  return old;
}

}  // namespace cuda_host

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = cuda_host::last_error;
  cuda_host::last_error = cudaSuccess;
  return e;
}

inline float atomicAdd(float* address, float value) { return cuda_host::atomic_add(address, value); }
inline double atomicAdd(double* address, double value) {
  return cuda_host::atomic_add(address, value);
}
