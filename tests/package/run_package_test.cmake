# Installs gradcomp from the build tree into a scratch prefix, then builds the consumer project in
# tests/package against it with find_package(gradcomp): its program with -O2 and with -O3
# -march=native (FMA instructions available wherever the CPU has them), and once with the
# compiler alone (none of the target's flags, and FP contraction forced on), side by side.
# Every build must run and print the same digest of Algorithm 1's bytes: consumers built with
# other flags, FMA among them, must not compute other messages.
# With WITH_RUNTIME, the -O2 build also links gradcomp::runtime and runs the same schemes by their
# spec strings (any_codec), which must compute the same bytes.
# FLAG_MATRIX=OFF builds only -O2 and the direct one (the clang++ stage of scripts/test.sh: the
# g++ stage runs the whole matrix).
# Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX, WITH_RUNTIME, FLAG_MATRIX.
include(${CMAKE_CURRENT_LIST_DIR}/install_tree.cmake)

set(variants O2 direct_contract_fast)
if(FLAG_MATRIX)
  list(APPEND variants O3_native)
endif()
if(WITH_RUNTIME)
  list(APPEND variants O2_runtime)
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

# one consumer project, its variants built side by side
set(dir ${WORK_DIR}/build)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${dir} -G ${GENERATOR}
                        -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=None
                        -DCMAKE_CXX_FLAGS=-O2 -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                        -DWITH_RUNTIME=${WITH_RUNTIME} -DWITH_O3_NATIVE=${FLAG_MATRIX}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer against the install tree failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${dir} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumers (-O2, -O3 -march=native, direct "
                      "-ffp-contract=fast) failed")
endif()
set(program_O2 consumer)
set(program_direct_contract_fast consumer_direct)
set(program_O3_native consumer_O3_native)
set(program_O2_runtime runtime_consumer)
foreach(v IN LISTS variants)
  run_consumer(${v} ${dir}/${program_${v}})
endforeach()
foreach(v IN LISTS variants)
  if(NOT digest_${v} STREQUAL digest_O2)
    message(FATAL_ERROR "the consumer built with ${v} computes other bytes (${digest_${v}}) than "
                        "with -O2 (${digest_O2})")
  endif()
endforeach()
message(STATUS "package test: find_package(gradcomp) consumers built with every flag set agree")
