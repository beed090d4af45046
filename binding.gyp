{
  # The native backend (native/). Kernels are compiled once per instruction set, each in its own
  # static library with its own flags, and chosen at run time from cpuid, so one build runs on any
  # x86-64; elsewhere only the portable build is compiled.
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno", "-Wno-maybe-uninitialized"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
    },
    "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"]}},
    "conditions": [["target_arch == 'x64'", {"defines": ["GLIMPSE_X86"]}]]
  },
  "targets": [
    {
      "target_name": "glimpse_native",
      "sources": ["native/addon.cc", "native/thread_pool.cc", "native/isa_scalar.cc", "native/train_addon.cc", "native/train_scalar.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "conditions": [["target_arch == 'x64'", {"dependencies": ["glimpse_avx2", "glimpse_avx512"]}]]
    }
  ],
  "conditions": [
    ["target_arch == 'x64'", {
      "targets": [
        {
          "target_name": "glimpse_avx2",
          "type": "static_library",
          "sources": ["native/isa_avx2.cc", "native/train_avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-mavx2", "-mfma"]},
          "msvs_settings": {"VCCLCompilerTool": {"EnableEnhancedInstructionSet": 5}}
        },
        {
          "target_name": "glimpse_avx512",
          "type": "static_library",
          "sources": ["native/isa_avx512.cc", "native/train_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-mavx512f", "-mavx2", "-mfma"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX512"]}}
        }
      ]
    }]
  ]
}
