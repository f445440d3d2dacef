/* Small churn through the C API, for instruction counts under callgrind
 * (benches/c_callgrind.sh): 10 000 live blocks of 8..=512 bytes; each
 * step frees a random one and allocates a replacement, touching it. The
 * loop is out of line and the same for every allocator.
 *   churn <steps>   (after 100 000 untimed warm-up steps) */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void run(void **slots, long n) {
    unsigned x = 12345;
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        unsigned k = x % 10000;
        free(slots[k]);
        size_t s = 8 + (x >> 14) % 505;
        char *p = malloc(s);
        if (!p) abort();
        p[0] = 1;
        slots[k] = p;
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    void **slots = calloc(10000, sizeof(void *));
    if (!slots) return 1;
    run(slots, 100000);
    run(slots, n);
    printf("done\n");
    return 0;
}
