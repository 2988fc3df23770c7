# Included by the package tests: a fresh install of the build tree BUILD_DIR under
# WORK_DIR/prefix (WORK_DIR emptied first).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install of ${BUILD_DIR} failed")
endif()
