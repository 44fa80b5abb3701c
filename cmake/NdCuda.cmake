# Decides whether the CUDA backend is compiled (ND_CUDA=AUTO|ON|OFF) and defines how it is linked:
# cudart statically, nothing from cuBLAS/cuDNN/NCCL (our build machines do not have them).
include(CheckLanguage)
set(ND_HAVE_CUDA OFF)
string(TOUPPER "${ND_CUDA}" ND_CUDA_MODE)
if(ND_CUDA_MODE STREQUAL "ON" OR ND_CUDA_MODE STREQUAL "AUTO")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(ND_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_PATH PATH_SUFFIXES bin)
    if(ND_NVCC)
      set(CMAKE_CUDA_COMPILER ${ND_NVCC})
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Ampere, Ampere consumer, Ada, Hopper as SASS, plus PTX of the newest for forward compatibility.
      set(CMAKE_CUDA_ARCHITECTURES 80-real 86-real 89-real 90-real 90-virtual)
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc 13's C++20 dialect flag; device code (and the core headers it
    # includes) stays within C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(ND_HAVE_CUDA ON)
    message(STATUS "node-diffusion: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(ND_CUDA_MODE STREQUAL "ON")
    message(FATAL_ERROR "ND_CUDA=ON but no CUDA compiler (nvcc) was found; install the CUDA toolkit or set CUDACXX")
  else()
    message(STATUS "node-diffusion: CUDA backend OFF (nvcc not found)")
  endif()
else()
  message(STATUS "node-diffusion: CUDA backend OFF (ND_CUDA=${ND_CUDA})")
endif()

function(nd_add_cuda_backend core_target)
  file(GLOB ND_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/native/kernels/cuda/*.cu
       ${CMAKE_SOURCE_DIR}/native/core/*.cu)
  add_library(nd_cuda STATIC ${ND_CUDA_SOURCES})
  target_include_directories(nd_cuda PUBLIC ${CMAKE_SOURCE_DIR}/native)
  set_target_properties(nd_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Static CUDA_SEPARABLE_COMPILATION OFF
                                           POSITION_INDEPENDENT_CODE ON)
  # Exact IEEE arithmetic in device code: results must match the CPU reference bit for bit where
  # the op allows it (RNG, casts, solver updates).
  target_compile_options(nd_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-fPIC>)
  # nd_cuda and nd_core call each other (errors, kernels); CMake repeats cyclic static libraries.
  target_link_libraries(nd_cuda PUBLIC CUDA::cudart_static PRIVATE ${core_target})
  target_compile_definitions(${core_target} PUBLIC ND_WITH_CUDA=1)
  target_link_libraries(${core_target} PUBLIC nd_cuda)
endfunction()
