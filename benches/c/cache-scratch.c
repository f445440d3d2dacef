/* cache-scratch style false-sharing test (after Hoard's cache-scratch,
 * written here): the main thread allocates one small object per thread
 * and hands it over; each thread frees it, then repeatedly allocates an
 * object of the same size, writes it many times and frees it. An
 * allocator that gives the threads objects in one cache line makes them
 * fight over it. Prints "RESULT ops_per_s=<object writes per second>".
 *   cache-scratch [threads] [iterations] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define OBJ 8
#define WRITES 1000

static long iterations;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
    free(arg);
    for (long i = 0; i < iterations; i++) {
        volatile char *p = malloc(OBJ);
        if (!p) abort();
        for (int w = 0; w < WRITES; w++) {
            for (int k = 0; k < OBJ; k++) p[k] = (char)(p[k] + 1);
        }
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    iterations = argc > 2 ? atol(argv[2]) : 20000;
    pthread_t th[64];
    void *objs[64];
    for (int t = 0; t < threads; t++) objs[t] = malloc(OBJ);
    double t0 = now();
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, objs[t]);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double el = now() - t0;
    printf("RESULT ops_per_s=%.0f\n", (double)threads * iterations * WRITES / el);
    return 0;
}
