# Install-time part of packaging/CMakeLists.txt: the files whose place or content
# depends on the install prefix, which is only known when installing. `cpack -G DEB`
# installs with prefix /usr into a staging DESTDIR, whatever prefix the build tree was
# configured with, and `cmake --install --prefix P` may name any prefix.
#
# Prefix /usr: configuration under /etc (GNUInstallDirs' rule, applied here at install
# time); any other prefix P: P/etc. The unit goes to P/lib/systemd/system, the
# sysusers.d and tmpfiles.d files to P/lib/sysusers.d and P/lib/tmpfiles.d, places
# systemd reads for /usr and /usr/local. The unit names /usr/sbin/shmd, /etc/shmd/shmd.toml and /usr/share/doc;
# for another prefix those are rewritten to where this install puts them.
#
# Inputs (set by an install(CODE) just before): SLAB_PACKAGING_DIR (the source
# folder), SLAB_STAGE_DIR (scratch in the build tree), SLAB_SBINDIR, SLAB_DOCDIR.

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()
foreach(d SBINDIR DOCDIR)
  if(IS_ABSOLUTE "${SLAB_${d}}")
    set(${d} "${SLAB_${d}}")
  else()
    set(${d} "${CMAKE_INSTALL_PREFIX}/${SLAB_${d}}")
  endif()
endforeach()

file(READ "${SLAB_PACKAGING_DIR}/shmd.service" unit)
string(REPLACE "/usr/sbin/shmd" "${SBINDIR}/shmd" unit "${unit}")
string(REPLACE "/etc/shmd/shmd.toml" "${etc}/shmd/shmd.toml" unit "${unit}")
string(REPLACE "/usr/share/doc/slab" "${DOCDIR}" unit "${unit}")
# Staged per destination: installs to different prefixes may run at once (the tests do).
string(MD5 dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
file(WRITE "${SLAB_STAGE_DIR}/${dest}/shmd.service" "${unit}")
file(INSTALL "${SLAB_STAGE_DIR}/${dest}/shmd.service"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
foreach(kind sysusers tmpfiles)
  file(INSTALL "${SLAB_PACKAGING_DIR}/shmd.${kind}"
       DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/${kind}.d" RENAME shmd.conf
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

# The default configuration, unless the operator's own is there: an install over a
# configured machine then leaves shmd.toml alone and puts the new default beside it.
# (The .deb always has the default: dpkg's conffile handling protects edits there.)
set(conf "$ENV{DESTDIR}${etc}/shmd/shmd.toml")
set(conf_name shmd.toml)
if(EXISTS "${conf}")
  file(READ "${conf}" existing)
  file(READ "${SLAB_PACKAGING_DIR}/shmd.toml" shipped)
  if(NOT existing STREQUAL shipped)
    set(conf_name shmd.toml.default)
    message(STATUS "Keeping ${etc}/shmd/shmd.toml (edited); the default goes to "
                   "${etc}/shmd/shmd.toml.default")
  endif()
endif()
file(INSTALL "${SLAB_PACKAGING_DIR}/shmd.toml" DESTINATION "${etc}/shmd" RENAME ${conf_name}
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
