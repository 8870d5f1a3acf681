// Prints the IR node kinds the runtime realises, one per line (tests compare them with the schema's).
#include <cstdio>

#include "adac/runtime/model.h"

int main()
{
    for (const std::string& kind : adac::runtime::kinds()) std::printf("%s\n", kind.c_str());
    return 0;
}
