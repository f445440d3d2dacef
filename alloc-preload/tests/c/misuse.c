/* Heap misuse, one kind per run (argv[1]); the hardened library must
 * abort with a message before the program prints "undetected".
 * "none" does everything right and prints "ok". */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t SMALL = 48, RUN = 100000, LARGE = 8 << 20;

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "none";
    char on_stack[64];
    if (!strcmp(what, "double-small")) {
        char *p = malloc(SMALL);
        free(p);
        free(p);
    } else if (!strcmp(what, "double-small-written")) {
        char *p = malloc(SMALL);
        memset(p, 0x41, SMALL);
        char *q = malloc(SMALL); /* a neighbour freed after it */
        free(p);
        free(q);
        free(p);
    } else if (!strcmp(what, "double-run")) {
        char *p = malloc(RUN);
        free(p);
        free(p);
    } else if (!strcmp(what, "double-large")) {
        char *p = malloc(LARGE);
        free(p);
        free(p);
    } else if (!strcmp(what, "double-aligned")) {
        void *p = NULL;
        if (posix_memalign(&p, 256, 100)) return 2;
        free(p);
        free(p);
    } else if (!strcmp(what, "interior-small")) {
        char *p = malloc(SMALL);
        free(p + 16);
    } else if (!strcmp(what, "interior-run")) {
        char *p = malloc(RUN);
        free(p + 4096);
    } else if (!strcmp(what, "interior-large")) {
        char *p = malloc(LARGE);
        free(p + 4096);
    } else if (!strcmp(what, "foreign-stack")) {
        free(on_stack + 8);
    } else if (!strcmp(what, "foreign-static")) {
        static char global[64];
        free(global);
    } else if (!strcmp(what, "realloc-freed")) {
        char *p = malloc(SMALL);
        free(p);
        p = realloc(p, 200);
        (void)p;
    } else if (!strcmp(what, "none")) {
        /* Right use, including what the checks must not confuse with
         * misuse: blocks freed unwritten, aligned blocks, reuse. */
        for (int round = 0; round < 3; round++) {
            void *ps[300];
            for (int i = 0; i < 300; i++) ps[i] = malloc((size_t)(i * 131 % 5000) + 1);
            for (int i = 0; i < 300; i += 2) free(ps[i]);
            for (int i = 0; i < 300; i += 2) ps[i] = malloc((size_t)(i * 71 % 300000) + 1);
            for (int i = 0; i < 300; i++) free(ps[i]);
            void *a = NULL;
            if (posix_memalign(&a, 64, 1000)) return 2;
            a = realloc(a, 3000);
            free(a);
            free(aligned_alloc(4096, 5000));
            free(malloc(LARGE));
        }
        printf("ok\n");
        return 0;
    } else {
        fprintf(stderr, "unknown case %s\n", what);
        return 2;
    }
    printf("undetected\n");
    return 0;
}
