// Registers the training kernels (train_addon.cc) on the addon's exports. They follow the main
// table's instruction set and thread count, which addon.cc owns and passes by pointer.
#pragma once
#include <napi.h>

#include "kernels.h"

namespace glimpse {
void registerTrainKernels(Napi::Env env, Napi::Object exports, const KernelTable* const* active, const int* threads);
}
