# Runs at install time (install(SCRIPT)), so that `cmake --install BUILD --prefix X` and a staged
# DESTDIR install both put the system files where that prefix wants them:
#   prefix / or /usr (a distribution package) -> /etc/turnout and systemd's own unit folder
#   any other prefix (/usr/local, /opt/turnout, a test folder) -> X/etc/turnout, X/lib/systemd/system
# The unit names the installed binary and config, whatever the prefix. file(INSTALL) honours
# DESTDIR and records each file in install_manifest.txt.
# Set by the configure step (configure_file): the source tree, the build folder, systemd's unit
# folder as pkg-config reported it, GNUInstallDirs' relative folders.
set(src "@CMAKE_SOURCE_DIR@")
set(gen "@CMAKE_BINARY_DIR@/install-gen")
set(unit_dir_system "@TURNOUT_SYSTEMD_UNIT_DIR@")
set(bindir "@CMAKE_INSTALL_BINDIR@")
set(sysconfdir "@CMAKE_INSTALL_SYSCONFDIR@")

string(REGEX REPLACE "/+$" "" prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "" OR prefix STREQUAL "/usr")
  set(conf_dir "/etc/turnout")
  set(unit_dir "${unit_dir_system}")
else()
  set(conf_dir "${prefix}/${sysconfdir}/turnout")
  string(REGEX REPLACE "^/(usr/)?" "" unit_rel "${unit_dir_system}")
  set(unit_dir "${prefix}/${unit_rel}")
endif()
if(IS_ABSOLUTE "${sysconfdir}")
  set(conf_dir "${sysconfdir}/turnout")
endif()
if(IS_ABSOLUTE "${bindir}")
  set(binary "${bindir}/turnout")
else()
  set(binary "${prefix}/${bindir}/turnout")
endif()

# The unit in the source names /usr/bin/turnout and /etc/turnout/turnout.toml (the package's
# paths, and what scripts/verify-unit.sh rewrites); point it at this installation's.
file(READ "${src}/systemd/turnout.service" unit)
string(REPLACE "/usr/bin/turnout" "${binary}" unit "${unit}")
string(REPLACE "/etc/turnout/turnout.toml" "${conf_dir}/turnout.toml" unit "${unit}")
file(MAKE_DIRECTORY "${gen}")
file(WRITE "${gen}/turnout.service" "${unit}")
file(INSTALL DESTINATION "${unit_dir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${gen}/turnout.service")

# The configuration: never overwrite one an operator already has (dpkg handles the package's
# own upgrades through conffiles; this is for `cmake --install` over a live system).
if(EXISTS "$ENV{DESTDIR}${conf_dir}/turnout.toml" AND NOT TURNOUT_INSTALL_OVERWRITE_CONFIG)
  message(STATUS "Keeping existing: $ENV{DESTDIR}${conf_dir}/turnout.toml")
else()
  file(INSTALL DESTINATION "${conf_dir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       RENAME turnout.toml FILES "${src}/conf/turnout.systemd.toml")
endif()

# A distribution's prefix (the .deb): Debian's copyright and changelog (changelog.gz: the
# version has no Debian revision, so this is a native package) in the package's doc
# folder, and the lintian overrides (packaging/debian/lintian-overrides says why each).
if(prefix STREQUAL "" OR prefix STREQUAL "/usr")
  set(deb "${src}/packaging/debian")
  execute_process(COMMAND gzip -9 -n -c "${deb}/changelog" OUTPUT_FILE "${gen}/changelog.gz"
                  COMMAND_ERROR_IS_FATAL ANY)
  set(docdir "/usr/share/doc/turnout")
  file(INSTALL DESTINATION "${docdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${deb}/copyright" "${gen}/changelog.gz")
  file(INSTALL DESTINATION "/usr/share/lintian/overrides" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       RENAME turnout FILES "${deb}/lintian-overrides")
endif()
