# Installs gradcomp from the build tree into a scratch prefix, then builds the consumer project in
# tests/package against it with find_package(gradcomp), with -O2 and with -O3 -march=native (FMA
# instructions available wherever the CPU has them), and once with the compiler alone (no CMake,
# so none of the target's flags, and FP contraction forced on).
# Every build must run and print the same digest of Algorithm 1's bytes: consumers built with
# other flags, FMA among them, must not compute other messages.
# With WITH_RUNTIME, the -O2 build also links gradcomp::runtime and runs the same schemes by their
# spec strings (any_codec), which must compute the same bytes.
# FLAG_MATRIX=OFF builds only -O2 and the direct one (the clang++ stage of scripts/test.sh: the
# g++ stage runs the whole matrix).
# Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX, WITH_RUNTIME, FLAG_MATRIX.
include(${CMAKE_CURRENT_LIST_DIR}/install_tree.cmake)

set(variants "O2" "O3_native")
set(flags_O2 "-O2")
set(flags_O3_native "-O3 -march=native")
if(NOT FLAG_MATRIX) # -O2 and the direct -ffp-contract=fast build only
  set(variants "O2")
endif()
function(run_consumer name program)
  execute_process(COMMAND ${program} RESULT_VARIABLE rc OUTPUT_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "the consumer built with ${name} failed: ${out}")
  endif()
  string(REGEX MATCH "digest [0-9a-f]+" digest "${out}")
  if(NOT digest)
    message(FATAL_ERROR "the consumer built with ${name} printed no digest: ${out}")
  endif()
  set(digest_${name} "${digest}" PARENT_SCOPE)
  message(STATUS "package test: ${name}: ${digest}")
endfunction()

foreach(v IN LISTS variants)
  set(dir ${WORK_DIR}/build-${v})
  # the registry's consumer once (the library's bytes do not depend on the consumer's flags)
  set(with_runtime OFF)
  if(v STREQUAL "O2" AND WITH_RUNTIME)
    set(with_runtime ON)
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${dir} -G ${GENERATOR}
                          -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=None
                          "-DCMAKE_CXX_FLAGS=${flags_${v}}" -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                          -DWITH_RUNTIME=${with_runtime}
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "configuring the consumer (${flags_${v}}) against the install tree failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${dir} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "building the consumer with ${flags_${v}} failed")
  endif()
  run_consumer(${v} ${dir}/consumer)
  if(with_runtime)
    run_consumer(O2_runtime ${dir}/runtime_consumer)
  endif()
endforeach()

# a build that never saw the target's -ffp-contract=off: the arithmetic itself must hold
set(direct ${WORK_DIR}/consumer-direct)
execute_process(COMMAND ${CXX} -std=c++20 -O3 -march=native -ffp-contract=fast
                        -I${WORK_DIR}/prefix/include ${SOURCE_DIR}/tests/package/main.cpp
                        -o ${direct} -pthread
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "compiling the consumer directly (-O3 -march=native -ffp-contract=fast) failed")
endif()
run_consumer(direct_contract_fast ${direct})

if(WITH_RUNTIME)
  set(runtime_variant O2_runtime)
endif()
foreach(v IN LISTS variants ITEMS direct_contract_fast ${runtime_variant})
  if(NOT digest_${v} STREQUAL digest_O2)
    message(FATAL_ERROR "the consumer built with ${v} computes other bytes (${digest_${v}}) than "
                        "with -O2 (${digest_O2})")
  endif()
endforeach()
message(STATUS "package test: find_package(gradcomp) consumers built with every flag set agree")
