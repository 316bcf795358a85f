# Install tsync into a temporary prefix, then build and run two tiny consumers:
# one with find_package(tsync CONFIG), one with pkg-config.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

# 1. configure tsync alone (no tests/examples/benches) and install it
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_INSTALL_PREFIX=${prefix}
    -DTSYNC_BUILD_TESTS=OFF -DTSYNC_BUILD_EXAMPLES=OFF -DTSYNC_BUILD_BENCHMARKS=OFF)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/build)

# move the prefix to prove the package is relocatable
file(RENAME ${prefix} ${WORK_DIR}/moved)
set(prefix ${WORK_DIR}/moved)

# 2. find_package consumer
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/cmake_consumer -B ${WORK_DIR}/cmake_consumer
    -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake_consumer)
run(${WORK_DIR}/cmake_consumer/consumer)

# 2b. the optional component tracecmd, where this machine has libtracecmd
if(HAVE_TRACECMD)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/tracecmd_consumer -B ${WORK_DIR}/tracecmd_consumer
      -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/tracecmd_consumer)
  run(${WORK_DIR}/tracecmd_consumer/tracecmd_consumer ${SOURCE_DIR}/tests/io/tracecmd/data/guest.dat)
endif()

# 3. pkg-config consumer
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs tsync RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not find tsync in ${prefix}/share/pkgconfig")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} ${SOURCE_DIR}/tests/package/pkgconfig_consumer/main.cpp ${flags} -o ${WORK_DIR}/pc_consumer)
run(${WORK_DIR}/pc_consumer)
message(STATUS "package test passed: ${prefix}")
