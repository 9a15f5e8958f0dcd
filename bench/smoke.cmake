# Runs `${EXE} --quick` and fails unless it exits 0 and its table names every peer in
# ${PEERS} (comma-separated). Timing is never checked.
execute_process(COMMAND ${EXE} --quick RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "slab_latency --quick failed (${rc}): ${err}")
endif()
string(REPLACE "," ";" peers "${PEERS}")
foreach(peer IN LISTS peers)
  string(FIND "${out}" "${peer}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "slab_latency --quick did not report peer '${peer}'")
  endif()
endforeach()
