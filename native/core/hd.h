// ND_HD marks small inline functions shared by host code and CUDA device code (RNG, casts).
#pragma once
#if defined(__CUDACC__)
#define ND_HD __host__ __device__ __forceinline__
#else
#define ND_HD inline
#endif
