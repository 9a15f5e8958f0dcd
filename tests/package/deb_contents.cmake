# ctest driver: builds the .deb with CPack from the build tree (into a scratch folder)
# and checks what it holds and says, with dpkg-deb:
#   - the files: daemon, unit, sysusers.d file, default config under /etc (a conffile),
#     libraries, headers, CMake package, pkg-config files, docs; nothing under
#     /usr/local or /usr/etc, the unit naming /usr/sbin/shmd and /etc/shmd/shmd.toml;
#   - control: package slab, Depends with libc6, libnuma1, libsystemd0 (dpkg-shlibdeps)
#     and a way to create users;
#   - postinst creates the user, group and segment directories and enables or starts
#     nothing unless the operator had enabled it; prerm stops shmd only on removal and
#     only if running; postrm deletes the segment files only on purge; the maintainer
#     scripts are valid sh.
# Inputs: -DBUILD_DIR= -DWORK_DIR= -DDPKG_DEB=
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run out_var)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
function(expect text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: no match for /${regex}/ in:\n${text}")
  endif()
endfunction()
function(expect_not text regex what)
  if(text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: /${regex}/ matches '${CMAKE_MATCH_0}' in:\n${text}")
  endif()
endfunction()

get_filename_component(cmake_dir ${CMAKE_COMMAND} DIRECTORY)
find_program(CPACK cpack HINTS ${cmake_dir} REQUIRED)
run(out ${CPACK} -G DEB --config ${BUILD_DIR}/CPackConfig.cmake -B ${WORK_DIR})
file(GLOB debs ${WORK_DIR}/slab_*.deb)
list(LENGTH debs n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one slab_*.deb in ${WORK_DIR}, found: ${debs}\n${out}")
endif()
message(STATUS "built ${debs}")

# ---- Files -----------------------------------------------------------------------------
run(list ${DPKG_DEB} --contents ${debs})
message(STATUS "contents:\n${list}")
foreach(f
    "-rwxr-xr-x root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./usr/sbin/shmd\n"
    "-rwxr-xr-x root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./usr/bin/slabctl\n"
    "root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./usr/lib/systemd/system/shmd\\.service\n"
    "root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./usr/lib/sysusers\\.d/shmd\\.conf\n"
    "root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./usr/lib/tmpfiles\\.d/shmd\\.conf\n"
    "-rw-r--r-- root/root +[0-9]+ [-0-9]+ [0-9:]+ \\./etc/shmd/shmd\\.toml\n"
    "\\./usr/lib/([a-z0-9_-]+/)?libslab\\.a\n"
    "\\./usr/lib/([a-z0-9_-]+/)?libslab_client\\.a\n"
    "\\./usr/include/slab/slab\\.hpp\n"
    "\\./usr/include/slab/client\\.hpp\n"
    "\\./usr/include/slab/observer\\.hpp\n"
    "\\./usr/lib/([a-z0-9_-]+/)?cmake/slab/slabConfig\\.cmake\n"
    "\\./usr/lib/([a-z0-9_-]+/)?cmake/slab/slabTargets\\.cmake\n"
    "\\./usr/lib/([a-z0-9_-]+/)?pkgconfig/slab\\.pc\n"
    "\\./usr/lib/([a-z0-9_-]+/)?pkgconfig/slab-client\\.pc\n"
    "\\./usr/share/doc/slab/README\\.md\n"
    "\\./usr/share/doc/slab/docs/operations\\.md\n"
    "\\./usr/share/doc/slab/examples/60-shmd-hugepages\\.conf\n")
  expect("${list}" "${f}" "the .deb's files")
endforeach()
expect_not("${list}" "\\./usr/local/|\\./usr/etc/|\\./opt/" "the .deb's files")
# Hugepages are reserved only when the operator installs the example, never by the package.
expect_not("${list}" "sysctl\\.d/" "the .deb's files")

# The unit and config inside the package are the shipped ones, for /usr and /etc.
file(MAKE_DIRECTORY ${WORK_DIR}/tree)
run(out ${DPKG_DEB} --extract ${debs} ${WORK_DIR}/tree)
file(READ ${WORK_DIR}/tree/usr/lib/systemd/system/shmd.service unit)
expect("${unit}" "\nExecStart=/usr/sbin/shmd --config /etc/shmd/shmd\\.toml\n" "shmd.service")
expect("${unit}" "\nType=notify\n" "shmd.service")
expect("${unit}" "\nExecStartPre=\\+/usr/bin/systemd-tmpfiles --create shmd\\.conf\n" "shmd.service")
expect("${unit}" "\nWatchdogSec=" "shmd.service")
expect("${unit}" "\nUser=shmd\nGroup=slab\n" "shmd.service")
expect("${unit}" "\nRuntimeDirectoryMode=0750\n" "shmd.service")
expect("${unit}" "\nLimitMEMLOCK=infinity\n" "shmd.service")
expect("${unit}" "\nCapabilityBoundingSet=CAP_IPC_LOCK\n" "shmd.service")
file(GLOB_RECURSE pcs ${WORK_DIR}/tree/usr/lib/*/slab.pc)
list(GET pcs 0 pc_file)
file(READ ${pc_file} pc)
expect("${pc}" "^prefix=\\$\\{pcfiledir\\}/(\\.\\./)*\\.\\.\n" "slab.pc (relocatable prefix)")

# ---- Control ---------------------------------------------------------------------------
run(control ${DPKG_DEB} --field ${debs})
message(STATUS "control:\n${control}")
expect("${control}" "\nPackage: slab\n|^Package: slab\n" "control")
expect("${control}" "\nDepends: [^\n]*systemd \\| adduser" "control: a way to create users")
foreach(lib libc6 libnuma1 libsystemd0 libstdc\\+\\+6)
  expect("${control}" "\nDepends: [^\n]*${lib}" "control: shlibdeps")
endforeach()

# ---- Maintainer scripts ----------------------------------------------------------------
run(out ${DPKG_DEB} --control ${debs} ${WORK_DIR}/control)
file(READ ${WORK_DIR}/control/conffiles conffiles)
expect("${conffiles}" "^/etc/shmd/shmd\\.toml\n$" "conffiles")
foreach(s postinst prerm postrm)
  run(out sh -n ${WORK_DIR}/control/${s})
  file(READ ${WORK_DIR}/control/${s} ${s})
  # Comments say what the scripts do; only the commands are checked below.
  string(REGEX REPLACE "#[^\n]*" "" ${s}_code "${${s}}")
  # The same without the text of double-quoted strings (messages that name commands).
  string(REGEX REPLACE "\"[^\"]*\"" "\"\"" ${s}_cmds "${${s}_code}")
endforeach()
expect("${postinst_code}" "systemd-sysusers shmd\\.conf" "postinst creates the user")
expect("${postinst_code}" "adduser [^\n]*--system" "postinst creates the user without systemd")
expect("${postinst_code}" "systemd-tmpfiles --create shmd\\.conf" "postinst creates the segment dirs")
# Never starts or restarts; enables only what the operator had enabled before.
expect_not("${postinst_cmds}" "systemctl[^\n]* (start|restart|reload-or-restart|try-restart|enable)|deb-systemd-invoke"
           "postinst starts or enables shmd")
expect("${postinst_code}" "was-enabled \"\\$unit\"; then\n *deb-systemd-helper enable \"\\$unit\""
       "postinst re-enables only a unit the operator had enabled")
string(REGEX MATCHALL "deb-systemd-helper enable" enables "${postinst_code}")
list(LENGTH enables n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "postinst calls deb-systemd-helper enable ${n} times:\n${postinst}")
endif()
# prerm: stop only on remove, only if active; nothing else.
expect("${prerm_code}" "\"\\$1\" = remove \\] && \\[ -d /run/systemd/system \\] &&\n *systemctl --quiet is-active \"\\$unit\""
       "prerm stops shmd only on removal and only if running")
expect_not("${prerm_cmds}" "restart|enable|disable|mask" "prerm")
expect("${postrm_code}" "purge\\)\n *deb-systemd-helper purge" "postrm forgets the unit on purge")
# The pools' segment files go on purge only: a removed-then-reinstalled shmd adopts them.
expect("${postrm_code}" "if \\[ \"\\$1\" = purge \\]; then\n *rm -rf /dev/shm/shmd /dev/hugepages/shmd\n"
       "postrm removes the segment files on purge")
string(REGEX MATCHALL "rm -rf" removals "${postrm_code}")
list(LENGTH removals n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "postrm removes files ${n} times (once expected, on purge):\n${postrm}")
endif()
message(STATUS "conffiles, control and maintainer scripts: as documented")
