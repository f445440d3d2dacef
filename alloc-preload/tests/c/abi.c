/* Every exported function with its C contract, error paths included.
 * Prints "ok <allocator>" on success, where <allocator> says whose malloc
 * served it (pool_alloc serves malloc(100) as its 112-byte class); any
 * failed check prints the line and exits 1. Run by tests/c_programs.rs
 * linked against libpool_alloc.so, preloaded, and with glibc alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "abi.c:%d: check failed: %s\n", __LINE__, #c); exit(1); } } while (0)

/* Through volatiles, so the compiler neither warns about nor folds the
 * impossible requests. */
static volatile size_t HUGE_N = SIZE_MAX, HALF_N = SIZE_MAX / 2, BIG_N = (size_t)1 << 33;

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 31);
}
static int holds(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) if (p[i] != (unsigned char)(seed + i * 31)) return 0;
    return 1;
}

static const size_t SIZES[] = {1, 7, 8, 15, 16, 24, 100, 512, 3584, 3585, 4096, 5000, 40000,
                               300000, 1 << 20, (1 << 20) + 1, 3 << 20, 6 << 20};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

static void bands(void) {
    void *ps[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        ps[i] = malloc(SIZES[i]);
        CHECK(ps[i] != NULL);
        CHECK(((uintptr_t)ps[i] & (SIZES[i] >= 16 ? 15 : 7)) == 0);
        CHECK(malloc_usable_size(ps[i]) >= SIZES[i]);
        fill(ps[i], SIZES[i], (unsigned)i);
    }
    for (size_t i = 0; i < NSIZES; i++) {
        CHECK(holds(ps[i], SIZES[i], (unsigned)i));
        free(ps[i]);
    }
}

static void zero_and_null(void) {
    void *a = malloc(0), *b = malloc(0);
    CHECK(a != NULL && b != NULL && a != b);
    free(a);
    free(b);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);
    errno = 0;
    CHECK(malloc(HUGE_N) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(HALF_N) == NULL && errno == ENOMEM);
}

static void calloc_checks(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        /* Dirty a block of the size first, so calloc must clear reused memory. */
        unsigned char *d = malloc(SIZES[i]);
        CHECK(d != NULL);
        memset(d, 0xAB, SIZES[i]);
        free(d);
        unsigned char *z = calloc(1, SIZES[i]);
        CHECK(z != NULL);
        for (size_t k = 0; k < SIZES[i]; k++) CHECK(z[k] == 0);
        free(z);
    }
    unsigned char *z = calloc(1000, 24);
    CHECK(z != NULL);
    for (size_t k = 0; k < 24000; k++) CHECK(z[k] == 0);
    free(z);
    errno = 0;
    CHECK(calloc(HALF_N, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(BIG_N, BIG_N) == NULL && errno == ENOMEM);
}

static void realloc_checks(void) {
    /* Grow through every band and back, contents kept. */
    size_t n = 10;
    unsigned char *p = realloc(NULL, n);
    CHECK(p != NULL);
    fill(p, n, 7);
    size_t steps[] = {100, 3000, 4000, 50000, 600000, 2 << 20, 9 << 20, 5000, 20, 1};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t m = steps[i];
        unsigned char *q = realloc(p, m);
        CHECK(q != NULL);
        CHECK(holds(q, n < m ? n : m, 7));
        fill(q, m, 7);
        CHECK(malloc_usable_size(q) >= m);
        p = q;
        n = m;
    }
    /* Page-run growth in place or moved, many times. */
    for (size_t m = 40000; m < 3000000; m += 37000) {
        unsigned char *q = realloc(p, m);
        CHECK(q != NULL);
        CHECK(holds(q, n < m ? n : m, 7));
        fill(q, m, 7);
        p = q;
        n = m;
    }
    /* realloc(p, 0) frees and returns NULL (glibc). */
    CHECK(realloc(p, 0) == NULL);
    /* A failed realloc keeps the block. */
    p = malloc(64);
    CHECK(p != NULL);
    fill(p, 64, 3);
    errno = 0;
    CHECK(realloc(p, HUGE_N) == NULL && errno == ENOMEM);
    CHECK(holds(p, 64, 3));
    errno = 0;
    CHECK(reallocarray(p, HALF_N, 4) == NULL && errno == ENOMEM);
    CHECK(holds(p, 64, 3));
    unsigned char *q = reallocarray(p, 100, 8);
    CHECK(q != NULL && holds(q, 64, 3));
    free(q);
}

static void aligned(void) {
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 3, 10) == EINVAL && p == (void *)1);
    CHECK(posix_memalign(&p, 4, 10) == EINVAL && p == (void *)1);
    CHECK(posix_memalign(&p, 0, 10) == EINVAL);
    CHECK(posix_memalign(&p, 64, HALF_N) == ENOMEM);
    size_t aligns[] = {8, 16, 32, 64, 256, 4096, 65536, 1 << 20};
    size_t sizes[] = {1, 24, 100, 5000, 70000, 2 << 20};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            CHECK(posix_memalign(&p, aligns[a], sizes[s]) == 0);
            CHECK(((uintptr_t)p & (aligns[a] - 1)) == 0);
            CHECK(malloc_usable_size(p) >= sizes[s]);
            fill(p, sizes[s], 5);
            /* Grow an aligned block: contents kept (alignment is not). */
            unsigned char *q = realloc(p, sizes[s] * 2);
            CHECK(q != NULL && holds(q, sizes[s], 5));
            free(q);
            unsigned char *m = memalign(aligns[a], sizes[s]);
            CHECK(m != NULL && ((uintptr_t)m & (aligns[a] - 1)) == 0);
            fill(m, sizes[s], 6);
            free(m);
            unsigned char *c = aligned_alloc(aligns[a], sizes[s]);
            CHECK(c != NULL && ((uintptr_t)c & (aligns[a] - 1)) == 0);
            free(c);
        }
    }
    /* memalign rounds an alignment that is not a power of two up (glibc). */
    void *m48 = memalign(48, 10);
    CHECK(m48 != NULL && ((uintptr_t)m48 & 63) == 0);
    free(m48);
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(10);
    CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0);
    free(v);
    void *pv = pvalloc(1);
    CHECK(pv != NULL && ((uintptr_t)pv & (page - 1)) == 0 && malloc_usable_size(pv) >= (size_t)page);
    free(pv);
}

/* Threads created by C: each allocates, hands half its blocks to the next
 * thread to free (cross-thread frees), and frees the rest. */
#define THREADS 4
#define PER 20000
static void *handed[THREADS][PER];

static void *worker(void *arg) {
    size_t t = (size_t)arg;
    unsigned x = 12345u + (unsigned)t;
    for (size_t i = 0; i < PER; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 8) % 700 + 1;
        if ((x >> 4) % 50 == 0) n = (x >> 8) % 400000 + 4096;
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        p[0] = (unsigned char)t;
        p[n - 1] = (unsigned char)t;
        if (i % 2) handed[t][i] = p; else free(p);
    }
    return NULL;
}

static void *reaper(void *arg) {
    size_t t = (size_t)arg;
    for (size_t i = 1; i < PER; i += 2) {
        unsigned char *p = handed[t][i];
        CHECK(p[0] == (unsigned char)t);
        free(p);
    }
    return NULL;
}

static void threads(void) {
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, worker, (void *)t) == 0);
    for (size_t t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);
    for (size_t t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, reaper, (void *)t) == 0);
    for (size_t t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);
}

int main(void) {
    bands();
    zero_and_null();
    calloc_checks();
    realloc_checks();
    aligned();
    threads();
    void *p = malloc(100);
    const char *who = malloc_usable_size(p) == 112 ? "pool_alloc" : "other";
    free(p);
    printf("ok %s\n", who);
    return 0;
}
