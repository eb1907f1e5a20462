# promptsweep_warnings: an interface target every project target links, so the
# warning set lives in one place. Third-party headers come in as SYSTEM and stay quiet.
add_library(promptsweep_warnings INTERFACE)
target_compile_options(promptsweep_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # -Wshadow=local is GCC's; LibTorch 1.13 headers trip -Wmaybe-uninitialized under GCC 12.
  target_compile_options(promptsweep_warnings INTERFACE -Wshadow=local -Wno-maybe-uninitialized)
else()
  target_compile_options(promptsweep_warnings INTERFACE -Wshadow)
endif()
