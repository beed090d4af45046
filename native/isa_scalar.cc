// The kernels built for the baseline instruction set: portable C++ for any CPU.
#define GLIMPSE_ISA scalar
#include "kernels_impl.h"
