# Turns the HTML report's page (page.html, page.css, page.js in SRC_DIR)
# into C arrays in OUT, so the memtriage binary needs no data file at run
# time.  Each file becomes
#     const char mt_html_<name>_<ext>[];      its bytes, then a NUL
#     const size_t mt_html_<name>_<ext>_len;  without the NUL
# Run as: cmake -DSRC_DIR=... -DOUT=... -P embed.cmake
cmake_minimum_required(VERSION 3.18)
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line16)
set(body "/* Generated from src/report/html/ by embed.cmake at build time: do not edit. */\n#include <stddef.h>\n")
foreach(name page.html page.css page.js)
  file(READ "${SRC_DIR}/${name}" text)
  # the CSS and JS go inside <style> and <script>: a closing tag in them would end the element early
  string(TOLOWER "${text}" lower)
  if(NOT name STREQUAL "page.html" AND (lower MATCHES "</script" OR lower MATCHES "</style"))
    message(FATAL_ERROR "${name} must not contain '</script' or '</style'")
  endif()
  file(READ "${SRC_DIR}/${name}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # 16 bytes per line (CMake's regular expressions have no {16})
  string(REGEX REPLACE "(${line16})" "\\1\n\t" bytes "${bytes}")
  string(REPLACE "." "_" sym "mt_html_${name}")
  string(APPEND body "const char ${sym}[] = {\n\t${bytes}0x00\n};\nconst size_t ${sym}_len = ${len};\n")
endforeach()
file(WRITE "${OUT}.tmp" "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
