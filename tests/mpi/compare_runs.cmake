# Runs the MPI trainer under mpiexec and simulated in one process with the same arguments, and
# fails unless both print the same parameters digest (bitwise-equal models).
# -DMPIEXEC=... -DNP=... -DTRAIN=... -DARGS="--method;identity;..."
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${TRAIN} ${ARGS} OUTPUT_VARIABLE mpi_out
                ERROR_VARIABLE mpi_err RESULT_VARIABLE mpi_rc)
execute_process(COMMAND ${TRAIN} --simulate ${NP} ${ARGS} OUTPUT_VARIABLE sim_out
                ERROR_VARIABLE sim_err RESULT_VARIABLE sim_rc)
message("${mpi_out}")
if(NOT mpi_rc EQUAL 0 OR NOT sim_rc EQUAL 0)
  message(FATAL_ERROR "mpi run rc=${mpi_rc}: ${mpi_err}\nsimulation rc=${sim_rc}: ${sim_err}")
endif()
string(REGEX MATCH "parameters digest [0-9a-f]+" mpi_digest "${mpi_out}")
string(REGEX MATCH "parameters digest [0-9a-f]+" sim_digest "${sim_out}")
if(mpi_digest STREQUAL "" OR NOT mpi_digest STREQUAL sim_digest)
  message(FATAL_ERROR "MPI run: '${mpi_digest}', simulation: '${sim_digest}'\n${sim_out}")
endif()
message("MPI run and in-process simulation agree: ${mpi_digest}")
