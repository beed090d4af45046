// The kernels built for AVX2 + FMA (compiled with -mavx2 -mfma).
#define GLIMPSE_ISA avx2
#include "kernels_impl.h"
