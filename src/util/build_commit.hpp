// The source tree's commit this binary was built from (cmake/build_commit.cmake writes its
// definition at every build): short hash, "+dirty" when tracked files differed, or "unknown".
#pragma once

namespace fp4llm {

const char* build_commit();

}  // namespace fp4llm
