# ctest driver: the systemd files as systemd's own tools judge them, offline.
#   1. packaging/shmd.service rates at most 2.0 in `systemd-analyze security --offline`.
#   2. The unit as installed (into a fresh prefix, ExecStart rewritten to point there)
#      passes `systemd-analyze verify` with nothing to say, and rates the same.
#   3. The sysusers.d file, applied by systemd-sysusers to an empty root, creates the
#      system user shmd and the group slab; the tmpfiles.d file, applied to the same
#      root, creates the segment directories owned by shmd.
# Exits with 77 (reported as skipped) when systemd-analyze is not installed.
# Inputs: -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR=
find_program(ANALYZE systemd-analyze)
if(NOT ANALYZE)
  message("systemd-analyze not found (Debian: package systemd): skipping the unit checks")
  cmake_language(EXIT 77)
endif()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run out_var)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(${out_var} "${out}${err}" PARENT_SCOPE)
endfunction()

# The overall exposure, e.g. "0.6" from "→ Overall exposure level for shmd.service: 0.6 SAFE".
function(check_exposure unit)
  run(out ${ANALYZE} security --offline=true --no-pager ${unit})
  if(NOT out MATCHES "Overall exposure level for shmd\\.service: ([0-9]+\\.[0-9]+)")
    message(FATAL_ERROR "no overall exposure level in the output for ${unit}:\n${out}")
  endif()
  set(score ${CMAKE_MATCH_1})
  if(score GREATER 2.0)
    message(FATAL_ERROR "${unit}: exposure ${score}, more than 2.0:\n${out}")
  endif()
  message(STATUS "${unit}: exposure ${score} (at most 2.0)")
endfunction()

check_exposure(${SOURCE_DIR}/packaging/shmd.service)

run(out ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
set(unit ${prefix}/lib/systemd/system/shmd.service)
file(STRINGS ${unit} exec REGEX "^ExecStart=")
if(NOT exec STREQUAL "ExecStart=${prefix}/sbin/shmd --config ${prefix}/etc/shmd/shmd.toml")
  message(FATAL_ERROR "installed unit: ${exec}; expected the prefix's shmd and config")
endif()
run(out ${ANALYZE} verify --man=no ${unit})
if(NOT out STREQUAL "")
  message(FATAL_ERROR "systemd-analyze verify has something to say about ${unit}:\n${out}")
endif()
message(STATUS "${unit}: systemd-analyze verify: clean")
check_exposure(${unit})

find_program(SYSUSERS systemd-sysusers)
if(SYSUSERS)
  file(MAKE_DIRECTORY ${WORK_DIR}/root/etc)
  run(out ${SYSUSERS} --root=${WORK_DIR}/root ${prefix}/lib/sysusers.d/shmd.conf)
  file(STRINGS ${WORK_DIR}/root/etc/passwd user REGEX "^shmd:")
  file(STRINGS ${WORK_DIR}/root/etc/group group REGEX "^slab:")
  if(NOT user MATCHES "^shmd:x:[0-9]+:[0-9]+:.*:/usr/s?bin/nologin$" OR group STREQUAL "")
    message(FATAL_ERROR "systemd-sysusers did not create shmd and slab:\n${out}\n"
                        "passwd: ${user}\ngroup: ${group}")
  endif()
  message(STATUS "sysusers.d/shmd.conf: ${user}; ${group}")
  # tmpfiles.d/shmd.conf in the same root: the segment directories, shmd's, mode 0700.
  find_program(TMPFILES systemd-tmpfiles)
  if(TMPFILES)
    run(out ${TMPFILES} --root=${WORK_DIR}/root --create ${prefix}/lib/tmpfiles.d/shmd.conf)
    string(REGEX REPLACE "^shmd:x:([0-9]+):.*" "\\1" uid "${user}")
    foreach(d dev/shm/shmd dev/hugepages/shmd)
      run(st stat -c "%a %u" ${WORK_DIR}/root/${d})
      if(NOT st STREQUAL "700 ${uid}\n")
        message(FATAL_ERROR "tmpfiles.d/shmd.conf: /${d} is '${st}', expected '700 ${uid}'")
      endif()
    endforeach()
    message(STATUS "tmpfiles.d/shmd.conf: /dev/shm/shmd and /dev/hugepages/shmd, shmd's, 0700")
  endif()
else()
  message(STATUS "systemd-sysusers not found: sysusers.d file not applied")
endif()
