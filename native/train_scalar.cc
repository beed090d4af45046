// The training kernels built for scalar (see train_impl.h; flags as isa_scalar.cc).
#define GLIMPSE_ISA scalar
#include "train_impl.h"
