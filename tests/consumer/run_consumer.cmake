# Drives one consumer test (run with `cmake -P`, registered by tests/CMakeLists.txt).
#
# Inputs (-D): GROKALIGN_CONSUMER_MODE (find_package | add_subdirectory),
#   GROKALIGN_SOURCE_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, and optionally GENERATOR,
#   CXX_COMPILER, BUILD_TYPE, GROKALIGN_USE_OPENMP, GROKALIGN_USE_BLAS.
#
# find_package:     configure a fresh grokalign build (tests/examples/benchmarks OFF),
#                   install it into WORK_DIR/prefix, then build + run the consumer with
#                   CMAKE_PREFIX_PATH=WORK_DIR/prefix.
# add_subdirectory: build + run the consumer with GROKALIGN_SOURCE_DIR.
cmake_minimum_required(VERSION 3.20)

foreach(var IN ITEMS GROKALIGN_CONSUMER_MODE GROKALIGN_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D ${var}=... is required")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
set(mode ${GROKALIGN_CONSUMER_MODE})

# Arguments shared by every nested configure, so the nested builds use the same toolchain.
set(common_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
if(GENERATOR)
  list(APPEND common_args -G ${GENERATOR})
endif()
if(CXX_COMPILER)
  list(APPEND common_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
# grokalign's own options, for whichever configure actually builds grokalign.
set(lib_args)
foreach(opt IN ITEMS GROKALIGN_USE_OPENMP GROKALIGN_USE_BLAS)
  if(DEFINED ${opt})
    list(APPEND lib_args -D${opt}=${${opt}})
  endif()
endforeach()

# Run one step; print it first and stop the test on failure.
function(run_step name)
  list(JOIN ARGN " " pretty)
  message(STATUS "[consumer_${mode}] ${name}: ${pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rv)
  if(NOT rv EQUAL 0)
    message(FATAL_ERROR "[consumer_${mode}] step '${name}' failed (${rv})")
  endif()
endfunction()

# Always start from scratch: a stale cache or prefix would hide packaging bugs.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(consumer_build ${WORK_DIR}/consumer-build)

if(mode STREQUAL "find_package")
  set(lib_build ${WORK_DIR}/grokalign-build)
  set(prefix ${WORK_DIR}/prefix)
  run_step("configure grokalign" ${CMAKE_COMMAND} -S ${GROKALIGN_SOURCE_DIR} -B ${lib_build}
    ${common_args} ${lib_args}
    -DCMAKE_INSTALL_PREFIX=${prefix}
    -DGROKALIGN_BUILD_TESTS=OFF -DGROKALIGN_BUILD_EXAMPLES=OFF -DGROKALIGN_BUILD_BENCHMARKS=OFF)
  run_step("build grokalign" ${CMAKE_COMMAND} --build ${lib_build} --config ${BUILD_TYPE})
  run_step("install grokalign" ${CMAKE_COMMAND} --install ${lib_build} --config ${BUILD_TYPE})
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
    ${common_args}
    -DGROKALIGN_CONSUMER_MODE=find_package
    -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  # Make sure we tested the copy we just installed, not some system-wide grokalign.
  file(STRINGS ${consumer_build}/CMakeCache.txt found_dir REGEX "^grokalign_DIR:")
  string(FIND "${found_dir}" "${prefix}/" pos)
  if(NOT pos GREATER -1)
    message(FATAL_ERROR "[consumer_${mode}] found grokalign outside ${prefix}: ${found_dir}")
  endif()
elseif(mode STREQUAL "add_subdirectory")
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
    ${common_args} ${lib_args}
    -DGROKALIGN_CONSUMER_MODE=add_subdirectory
    -DGROKALIGN_SOURCE_DIR=${GROKALIGN_SOURCE_DIR})
else()
  message(FATAL_ERROR "Unknown GROKALIGN_CONSUMER_MODE='${mode}'")
endif()

run_step("build consumer" ${CMAKE_COMMAND} --build ${consumer_build} --config ${BUILD_TYPE})

# Single-config generators put the binary at the top, multi-config ones in a <config>/ dir.
set(exe ${consumer_build}/consumer)
if(NOT EXISTS ${exe} AND EXISTS ${consumer_build}/${BUILD_TYPE}/consumer)
  set(exe ${consumer_build}/${BUILD_TYPE}/consumer)
endif()
run_step("run consumer" ${exe})
message(STATUS "[consumer_${mode}] passed")
