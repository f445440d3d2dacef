/* cache-scratch style false-sharing test (after Hoard's cache-scratch,
 * written here): the main thread allocates one small object per thread
 * and hands it over; each thread frees it, then repeatedly allocates an
 * object of the same size, writes it many times and frees it. An
 * allocator that gives the threads objects in one cache line makes them
 * fight over it. Prints "RESULT ops_per_s=<object writes per second>",
 * then "SHARED_LINES=<n>": how many cache lines held objects of two or
 * more threads (each thread notes the line of every object it gets,
 * outside the writes' loop), the false sharing itself, which unlike the
 * speed does not depend on how busy the machine is.
 *   cache-scratch [threads] [iterations] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define OBJ 8
#define WRITES 1000
#define MAXLINES 64

static long iterations;

/* A thread's handed-over object and the distinct cache lines its own
 * objects occupied (one or two for a sensible allocator). */
struct job {
    void *handed;
    unsigned long line[MAXLINES];
    int lines;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void note_line(struct job *j, const volatile void *p) {
    unsigned long line = (unsigned long)p / 64;
    for (int i = 0; i < j->lines; i++)
        if (j->line[i] == line) return;
    if (j->lines < MAXLINES) j->line[j->lines++] = line;
}

static void *worker(void *arg) {
    struct job *j = arg;
    free(j->handed);
    for (long i = 0; i < iterations; i++) {
        volatile char *p = malloc(OBJ);
        if (!p) abort();
        note_line(j, p);
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
    if (threads < 1 || threads > 64) return 2;
    pthread_t th[64];
    static struct job jobs[64];
    for (int t = 0; t < threads; t++) jobs[t].handed = malloc(OBJ);
    double t0 = now();
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, &jobs[t]);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double el = now() - t0;
    printf("RESULT ops_per_s=%.0f\n", (double)threads * iterations * WRITES / el);
    /* Lines used by more than one thread (each counted once). */
    int shared = 0;
    for (int t = 0; t < threads; t++)
        for (int i = 0; i < jobs[t].lines; i++) {
            int first = 1, other = 0;
            for (int u = 0; u < threads; u++)
                for (int k = 0; k < jobs[u].lines; k++)
                    if (jobs[u].line[k] == jobs[t].line[i]) {
                        if (u < t) first = 0;
                        if (u != t) other = 1;
                    }
            if (first && other) shared++;
        }
    printf("SHARED_LINES=%d\n", shared);
    return 0;
}
