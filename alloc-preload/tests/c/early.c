/* A library whose constructor allocates: preloaded beside libpool_alloc.so
 * (in either order), its constructor may run before the allocator's own
 * initialisation. Built as a shared library by tests/c_programs.rs. */
#include <stdlib.h>
#include <string.h>

static char *kept;

__attribute__((constructor)) static void early_allocations(void) {
    char *p = malloc(100);
    if (!p) abort();
    memset(p, 1, 100);
    char *q = calloc(3, 40);
    if (!q || q[119] != 0) abort();
    q = realloc(q, 50000);
    if (!q) abort();
    free(p);
    free(q);
    kept = strdup("kept from before main");
}

__attribute__((destructor)) static void early_free(void) {
    free(kept);
}
