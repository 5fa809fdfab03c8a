# What `cmake --install` puts under a prefix, and the Debian package
# (`cpack -G DEB`) made of the same files:
#   bin/      copal, copal-broker, copal-launcher, copalactivate
#   lib/      libcopal-client.so.MAJOR (shared, with SOVERSION) and
#             libcopal-client.a: the client library with the schema's
#             generated code and the common code it needs, so a program
#             links one library
#   include/copal/  client.h, common.h, dbdir.h, version.h, copal.pb-c.h
#   share/copal/    copal.proto, for clients in other languages
#   lib/pkgconfig/copal-client.pc, lib/cmake/copal/ (find_package(copal)
#             gives copal::client and copal::client_static)
include(CMakePackageConfigHelpers)

set(COPAL_CLIENT_OBJECTS
  $<TARGET_OBJECTS:copal_client_obj>
  $<TARGET_OBJECTS:copal_common_obj>
  $<TARGET_OBJECTS:copal_proto_obj>)
set(COPAL_CLIENT_INCLUDES
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/client/include>
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/common/include>
  $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/generated>
  $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/proto>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/copal>)

add_library(copal_client_shared SHARED ${COPAL_CLIENT_OBJECTS})
set_target_properties(copal_client_shared PROPERTIES
  OUTPUT_NAME copal-client
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  EXPORT_NAME client)
target_include_directories(copal_client_shared INTERFACE ${COPAL_CLIENT_INCLUDES})
target_link_libraries(copal_client_shared
  PUBLIC PkgConfig::PROTOBUFC
  PRIVATE ${NNG_LIBRARY} Threads::Threads)

add_library(copal_client_static STATIC ${COPAL_CLIENT_OBJECTS})
set_target_properties(copal_client_static PROPERTIES
  OUTPUT_NAME copal-client
  EXPORT_NAME client_static)
target_include_directories(copal_client_static INTERFACE ${COPAL_CLIENT_INCLUDES})
target_link_libraries(copal_client_static INTERFACE
  PkgConfig::PROTOBUFC
  $<BUILD_INTERFACE:${NNG_LIBRARY}> $<INSTALL_INTERFACE:nng::nng>
  Threads::Threads)

install(TARGETS copal copal-broker copal-launcher
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS ${CMAKE_SOURCE_DIR}/cli/copalactivate
  DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS copal_client_shared copal_client_static
  EXPORT copalTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
  ${CMAKE_SOURCE_DIR}/client/include/copal/client.h
  ${CMAKE_SOURCE_DIR}/common/include/copal/common.h
  ${CMAKE_SOURCE_DIR}/common/include/copal/dbdir.h
  ${CMAKE_BINARY_DIR}/generated/copal/version.h
  ${CMAKE_BINARY_DIR}/proto/copal.pb-c.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/copal)
install(FILES ${CMAKE_SOURCE_DIR}/proto/copal.proto
  DESTINATION ${CMAKE_INSTALL_DATADIR}/copal)

# pkg-config: the prefix is found from where the .pc file lies
# (${pcfiledir}), so the file is right under any --prefix and in the
# package's /usr.
file(RELATIVE_PATH COPAL_PC_UP /copal-prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig
  /copal-prefix)
string(REGEX REPLACE "/$" "" COPAL_PC_UP "${COPAL_PC_UP}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/copal-client.pc.in
  ${CMAKE_BINARY_DIR}/copal-client.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/copal-client.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(EXPORT copalTargets NAMESPACE copal::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/copal)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/copalConfig.cmake.in
  ${CMAKE_BINARY_DIR}/copalConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/copal)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/copalConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/copalConfig.cmake
  ${CMAKE_BINARY_DIR}/copalConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/copal)

# cpack -G DEB: a Debian package of the files above, installed under /usr;
# its Depends come from dpkg-shlibdeps on the programs and the library.
set(CPACK_PACKAGE_NAME copal)
set(CPACK_PACKAGE_VENDOR "copal")
set(CPACK_PACKAGE_CONTACT "copal developers <copal@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "many-task workflow system for HPC (broker, launcher, CLI, client library)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Build-time header users of the client library need at run time too:
# copal.pb-c.h includes protobuf-c's header (libprotobuf-c-dev), but the
# programs only need the shared libraries that shlibdeps finds.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
  "libprotobuf-c-dev, libnng-dev, slurm-client, python3-protobuf")
include(CPack)
