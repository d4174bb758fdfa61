# cmake -DINPUT=file -DOUTPUT=file.cpp -DNAMESPACE=ns -DNAME=var -P embed_text.cmake
# Writes OUTPUT defining `extern const std::string_view ns::var` holding INPUT's bytes
# exactly (every byte as a \x escape: no delimiter or encoding question can arise).
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
# One line per 64 bytes, to keep the file readable by tools.
string(REGEX REPLACE "((\\\\x[0-9a-f][0-9a-f]){64})" "\\1\"\n    \"" escaped "${escaped}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "#include <string_view>\n\nnamespace ${NAMESPACE} {\n\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME}{\n    \"${escaped}\",\n    ${size}};\n\n}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
