/* 100 000 blocks of 40 bytes (the 48-byte class), half of them freed:
 * run with POOL_ALLOC_STATS_AT_EXIT=1, the table printed at exit shows
 * them (tests/c_programs.rs reads it). */
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    void **p = malloc(100000 * sizeof(void *));
    if (!p) return 1;
    for (int i = 0; i < 100000; i++)
        if (!(p[i] = malloc(40))) return 1;
    for (int i = 0; i < 100000; i += 2) free(p[i]);
    printf("done\n");
    return 0;
}
