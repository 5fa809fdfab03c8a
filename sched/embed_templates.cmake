# Writes a C file holding the default job-script templates, so that the
# copal binary carries them (copal init copies them to DB/job-templates/,
# tmpl_default() returns them). Run by sched/CMakeLists.txt as
#   cmake -DDIR=<templates dir> -DNAMES=local,slurm,... -DOUT=<file.c>
#         -P embed_templates.cmake
# Each template becomes an array of bytes (any content, no escaping
# rules), followed by the NUL that makes it a C string.
string(REPLACE "," ";" names "${NAMES}")
set(c "// Generated from templates/*.tmpl by sched/embed_templates.cmake: do not edit.\n")
string(APPEND c "#include <stddef.h>\n\n#include \"copal/tmpl.h\"\n")
set(list_names "")
set(list_texts "")
foreach(name IN LISTS names)
  file(READ "${DIR}/${name}.tmpl" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1, " bytes "${hex}")
  # 12 bytes a line (CMake's regular expressions have no {12})
  string(REPEAT "0x[0-9a-f][0-9a-f], " 12 line)
  string(REGEX REPLACE "(${line})" "\\1\n\t" bytes "${bytes}")
  string(REPLACE ", \n" ",\n" bytes "${bytes}")
  string(APPEND c "\n// templates/${name}.tmpl\n"
    "static const unsigned char text_${name}[] = {\n\t${bytes}0x00\n};\n")
  string(APPEND list_names "\t\"${name}\",\n")
  string(APPEND list_texts "\t(const char *)text_${name},\n")
endforeach()
string(APPEND c "\nconst char *const tmpl_schedulers[] = {\n${list_names}\tNULL,\n};\n")
string(APPEND c "\nconst char *const tmpl_texts[] = {\n${list_texts}\tNULL,\n};\n")
# rewrite only on change, so that an unchanged template rebuilds nothing
file(WRITE "${OUT}.tmp" "${c}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
