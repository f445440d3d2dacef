/* A multi-threaded program that forks while its threads allocate: every
 * child must allocate, free and exit cleanly (a child that deadlocks is
 * killed by its alarm and fails the run). Prints "ok <forks>". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define FORKS 40
static atomic_int stop;

static void *churn(void *arg) {
    unsigned x = 777u + (unsigned)(size_t)arg;
    void *slots[256] = {0};
    while (!atomic_load(&stop)) {
        x = x * 1103515245u + 12345u;
        size_t i = (x >> 8) % 256;
        free(slots[i]);
        size_t n = (x >> 4) % 100 == 0 ? (x >> 8) % 2000000 + 4096 : (x >> 8) % 600 + 1;
        slots[i] = malloc(n);
        if (!slots[i]) abort();
        memset(slots[i], 1, n < 64 ? n : 64);
    }
    for (size_t i = 0; i < 256; i++) free(slots[i]);
    return NULL;
}

int main(void) {
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, churn, (void *)t)) return 1;
    int failed = 0;
    for (int f = 0; f < FORKS; f++) {
        /* The forking thread's heap gets idle pages other threads may be
         * reclaiming (under its lock) at the moment of the fork. */
        void *mine[16];
        for (int i = 0; i < 16; i++) mine[i] = malloc(40000 + (size_t)i * 20000);
        for (int i = 0; i < 16; i++) free(mine[i]);
        usleep(2000);
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            alarm(10);
            void *ps[1000];
            for (int i = 0; i < 1000; i++) {
                size_t n = (size_t)(i * 977 % 60000) + 1;
                ps[i] = malloc(n);
                if (!ps[i]) _exit(3);
                memset(ps[i], 2, n);
            }
            for (int i = 0; i < 1000; i++) free(ps[i]);
            /* A thread in the child too. */
            pthread_t c;
            if (pthread_create(&c, NULL, churn, (void *)99) == 0) {
                usleep(1000);
                atomic_store(&stop, 1);
                pthread_join(c, NULL);
            }
            exit(0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork %d: child status %d\n", f, status);
            failed++;
        }
    }
    atomic_store(&stop, 1);
    for (size_t t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    if (failed) return 1;
    printf("ok %d\n", FORKS);
    return 0;
}
