// The CHECK macro of the native test programs: counts passes and failures and prints each
// failure with its line; a program ends with  std::printf("<name>: %d passed, %d failed\n", ...).
#pragma once
#include <cstdio>

inline int g_pass = 0, g_fail = 0;

#define CHECK(cond)                                                     \
    do {                                                                \
        if (cond) {                                                     \
            ++g_pass;                                                   \
        } else {                                                        \
            ++g_fail;                                                   \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                               \
    } while (0)
