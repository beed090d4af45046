// The kernels built for AVX-512 (compiled with -mavx512f -mavx2 -mfma).
#define GLIMPSE_ISA avx512
#include "kernels_impl.h"
