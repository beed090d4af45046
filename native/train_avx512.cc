// The training kernels built for avx512 (see train_impl.h; flags as isa_avx512.cc).
#define GLIMPSE_ISA avx512
#include "train_impl.h"
