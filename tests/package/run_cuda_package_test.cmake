# Installs gradcomp from a CUDA build tree into a scratch prefix, then builds the CUDA consumer
# (tests/package/cuda) with find_package(gradcomp COMPONENTS cuda) and runs it: with a device
# its message must equal the CPU codec's; without one it only proves the component builds and
# links (it prints "no CUDA device", which CTest reports as skipped). Also checks that a
# consumer asking for an unknown component gets a clear "not found".
# Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX, CUDA_COMPILER, CUDA_ARCHITECTURES.
include(${CMAKE_CURRENT_LIST_DIR}/install_tree.cmake)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/cuda -B ${WORK_DIR}/build
                        -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
                        -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER}
                        -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the CUDA consumer with find_package(gradcomp COMPONENTS cuda) failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the CUDA consumer against gradcomp::cuda failed")
endif()
execute_process(COMMAND ${WORK_DIR}/build/cuda_consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "the CUDA consumer failed: ${out}")
endif()

# an unknown component is refused by name
file(WRITE ${WORK_DIR}/unknown/CMakeLists.txt
     "cmake_minimum_required(VERSION 3.24)\nproject(unknown_component LANGUAGES CXX)\n"
     "find_package(gradcomp CONFIG REQUIRED COMPONENTS tpu)\n")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${WORK_DIR}/unknown -B ${WORK_DIR}/unknown/build
                        -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc OR NOT "${out}${err}" MATCHES "no component 'tpu'")
  message(FATAL_ERROR "an unknown component was not refused by name: ${out}${err}")
endif()
message(STATUS "package test: find_package(gradcomp COMPONENTS cuda) consumer built")
