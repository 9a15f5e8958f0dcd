# ctest driver: installs the build tree into a fresh prefix, then configures, builds and
# runs tests/package/downstream against that prefix only: the embedded slab, then a
# client of the installed shmd (started from the prefix) that connects, allocates and
# frees; and builds the same client with the installed pkg-config file instead of CMake.
# Inputs: -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DGENERATOR= [-DPKG_CONFIG= -DCXX=]
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/downstream -B ${WORK_DIR}/build
    -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/downstream)
file(MAKE_DIRECTORY ${WORK_DIR}/live)
run(${WORK_DIR}/build/downstream_live ${prefix}/sbin/shmd ${WORK_DIR}/live)

# pkg-config: compile and link the live client with `pkg-config --cflags --libs
# slab-client` from the prefix alone.
if(PKG_CONFIG AND CXX)
  file(GLOB_RECURSE pc_file ${prefix}/slab-client.pc)
  get_filename_component(pc_dir "${pc_file}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  set(ENV{PKG_CONFIG_LIBDIR} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs slab-client RESULT_VARIABLE rc
                  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs slab-client failed (${rc})")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${CXX} ${SOURCE_DIR}/tests/package/downstream/live.cpp ${flags}
      -o ${WORK_DIR}/live_pkgconfig)
  file(MAKE_DIRECTORY ${WORK_DIR}/live-pc)
  run(${WORK_DIR}/live_pkgconfig ${prefix}/sbin/shmd ${WORK_DIR}/live-pc)
endif()
foreach(f include/slab/slab.hpp include/slab/key.hpp include/slab/observer.hpp lib/cmake/slab/slabConfig.cmake lib/pkgconfig/slab.pc)
  file(GLOB_RECURSE found ${prefix}/${f} ${prefix}/*/${f})
  if(NOT EXISTS ${prefix}/${f})
    string(REPLACE "lib/" "lib/x86_64-linux-gnu/" alt ${f})
    if(NOT EXISTS ${prefix}/${alt})
      message(FATAL_ERROR "not installed: ${f}")
    endif()
  endif()
endforeach()
