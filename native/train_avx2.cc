// The training kernels built for avx2 (see train_impl.h; flags as isa_avx2.cc).
#define GLIMPSE_ISA avx2
#include "train_impl.h"
