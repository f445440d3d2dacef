/* larson-style server churn (after Larson & Krishnan's benchmark, written
 * here): THREADS threads each own SLOTS blocks; each step frees a random
 * slot and allocates a new block of 16..=1024 bytes into it, touching it.
 * Every ROUND steps a thread hands its whole slot array to a new thread
 * and exits, so blocks are freed by a thread other than the one that
 * allocated them, as in a server whose requests outlive their worker.
 * Prints "RESULT ops_per_s=<steps per second>".
 *   larson [threads] [seconds] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 2000
#define ROUND 50000

static atomic_long total_ops;
static atomic_int stop;

struct job { void **slots; unsigned seed; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((noinline)) static long steps(void **slots, unsigned *seed, long n) {
    unsigned x = *seed;
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        unsigned k = x % SLOTS;
        free(slots[k]);
        size_t size = 16 + (x >> 12) % 1009;
        char *p = malloc(size);
        if (!p) abort();
        p[0] = (char)x;
        p[size - 1] = (char)k;
        slots[k] = p;
    }
    *seed = x;
    return n;
}

static void *worker(void *arg) {
    struct job *j = arg;
    long done = steps(j->slots, &j->seed, ROUND);
    atomic_fetch_add(&total_ops, done);
    if (!atomic_load(&stop)) {
        /* Hand the slots to a successor thread and exit. */
        pthread_t next;
        if (pthread_create(&next, NULL, worker, j) == 0) {
            pthread_detach(next);
            return NULL;
        }
    }
    for (int k = 0; k < SLOTS; k++) free(j->slots[k]);
    free(j->slots);
    free(j);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    double t0 = now();
    for (int t = 0; t < threads; t++) {
        struct job *j = malloc(sizeof *j);
        j->slots = calloc(SLOTS, sizeof(void *));
        j->seed = 0x9E3779B9u * (t + 1);
        for (int k = 0; k < SLOTS; k++) j->slots[k] = malloc(16 + (k * 37) % 1009);
        pthread_t th;
        pthread_create(&th, NULL, worker, j);
        pthread_detach(th);
    }
    struct timespec d = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&d, NULL);
    long ops = atomic_load(&total_ops);
    double el = now() - t0;
    atomic_store(&stop, 1);
    printf("RESULT ops_per_s=%.0f\n", ops / el);
    fflush(stdout);
    /* Exit without waiting for the last workers (as larson does). */
    _exit(0);
}
