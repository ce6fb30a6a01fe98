// The CHECK macro of the native test programs: counts passes and failures and prints each
// failure with its line; a program ends with  std::printf("<name>: %d passed, %d failed\n", ...).
#pragma once
#include <cstdio>
#include <string>

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

// The same count, for checks that describe themselves: prints "FAIL: <what>" on failure.
inline void check(bool ok, const std::string& what) {
    if (ok) {
        ++g_pass;
    } else {
        ++g_fail;
        std::printf("FAIL: %s\n", what.c_str());
    }
    std::fflush(stdout);
}
