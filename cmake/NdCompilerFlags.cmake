# Warnings and sanitizer flags shared by every native target.
set(ND_WARNINGS -Wall -Wextra -Wno-unused-parameter)
# Bit-identical results across CPU and CUDA need the same rounding steps on both sides: no silent
# a*b+c -> fma contraction on the host (device code is compiled with --fmad=false where it matters).
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)
if(ND_SANITIZE OR ND_FUZZ)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()
