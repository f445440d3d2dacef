/* xmalloc-test style producer/consumer (after Lever & Boreham's
 * xmalloc-test, written here): PAIRS producer threads allocate blocks of
 * 8..=512 bytes and pass them in batches through a queue to PAIRS consumer
 * threads, which free them: every free is a cross-thread free. Prints
 * "RESULT ops_per_s=<blocks allocated and freed per second>".
 *   xmalloc [pairs] [blocks per producer] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 256
#define QCAP 64

struct queue {
    pthread_mutex_t m;
    pthread_cond_t not_empty, not_full;
    void **items[QCAP];
    int head, len, producers_left;
};

static struct queue q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};
static long per_producer;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void push(void **batch) {
    pthread_mutex_lock(&q.m);
    while (q.len == QCAP) pthread_cond_wait(&q.not_full, &q.m);
    q.items[(q.head + q.len++) % QCAP] = batch;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.m);
}

static void **pop(void) {
    pthread_mutex_lock(&q.m);
    while (q.len == 0 && q.producers_left > 0) pthread_cond_wait(&q.not_empty, &q.m);
    void **b = NULL;
    if (q.len > 0) {
        b = q.items[q.head];
        q.head = (q.head + 1) % QCAP;
        q.len--;
        pthread_cond_signal(&q.not_full);
    }
    pthread_mutex_unlock(&q.m);
    return b;
}

__attribute__((noinline)) static void fill(void **batch, unsigned *seed) {
    unsigned x = *seed;
    for (int i = 0; i < BATCH; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        size_t n = 8 + (x >> 8) % 505;
        char *p = malloc(n);
        if (!p) abort();
        p[0] = (char)i;
        batch[i] = p;
    }
    *seed = x;
}

static void *producer(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 2654435761u + 1;
    for (long done = 0; done < per_producer; done += BATCH) {
        void **batch = malloc(BATCH * sizeof(void *));
        fill(batch, &seed);
        push(batch);
    }
    pthread_mutex_lock(&q.m);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.m);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    void **b;
    while ((b = pop())) {
        for (int i = 0; i < BATCH; i++) free(b[i]);
        free(b);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int pairs = argc > 1 ? atoi(argv[1]) : 1;
    per_producer = argc > 2 ? atol(argv[2]) : 4000000;
    q.producers_left = pairs;
    pthread_t th[2 * 64];
    double t0 = now();
    for (int i = 0; i < pairs; i++) {
        pthread_create(&th[2 * i], NULL, producer, (void *)(size_t)i);
        pthread_create(&th[2 * i + 1], NULL, consumer, NULL);
    }
    for (int i = 0; i < 2 * pairs; i++) pthread_join(th[i], NULL);
    double el = now() - t0;
    printf("RESULT ops_per_s=%.0f\n", pairs * per_producer / el);
    return 0;
}
