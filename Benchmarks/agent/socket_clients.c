#define _GNU_SOURCE
// Load on the agent's control socket from C threads (a Python client is slower than the agent
// and would measure itself): CLIENTS threads, each on its own kept-alive connection, doing
// PAIRS begin+end round trips (two HTTP/1.1 requests); with PACE_MS > 0 each client waits that
// long between pairs (jobs start and end at a rate, not in a tight loop), else back to back.
// Prints the latency of a begin+end pair at p50/p90/p99/max.
//   cc -O2 -pthread -o socket_clients Benchmarks/agent/socket_clients.c
//   ./socket_clients SOCKET CLIENTS PAIRS PACE_MS PREFIX
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *socket_path, *prefix;
static int clients, pairs, pace_ms;
static double *latencies;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// One request and its whole answer; exits on any failure (a benchmark must not hide one).
static void exchange(int fd, const char *path, const char *body) {
    char request[1024], answer[65536];
    int n = snprintf(request, sizeof request, "POST %s HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    if (write(fd, request, n) != n) { perror("write"); exit(1); }
    size_t have = 0;
    long expected = -1;
    for (;;) {
        ssize_t got = read(fd, answer + have, sizeof answer - 1 - have);
        if (got <= 0) { fprintf(stderr, "the agent hung up\n"); exit(1); }
        have += got;
        answer[have] = 0;
        char *end = strstr(answer, "\r\n\r\n");
        if (!end) continue;
        if (expected < 0) {
            char *length = strcasestr(answer, "content-length:");
            expected = (end - answer) + 4 + (length && length < end ? atol(length + 15) : 0);
        }
        if ((long)have >= expected) break;
    }
    if (strncmp(answer + 9, "20", 2) != 0) { fprintf(stderr, "%s: %.200s\n", path, answer); exit(1); }
}

static void *client(void *arg) {
    long index = (long)arg;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, socket_path, sizeof address.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("connect"); exit(1); }
    char body[256];
    for (int n = 0; n < pairs; n++) {
        if (pace_ms > 0) usleep((useconds_t)(pace_ms * 1000 * (0.5 + (double)rand() / RAND_MAX)));
        double start = now();
        snprintf(body, sizeof body, "{\"run_id\": \"%s-%ld-%d\", \"devices\": [\"%ld\"]}", prefix, index, n, index % 8);
        exchange(fd, "/v1/runs", body);
        snprintf(body, sizeof body, "{\"run_id\": \"%s-%ld-%d\", \"deliver\": false}", prefix, index, n);
        exchange(fd, "/v1/runs/end", body);
        latencies[index * pairs + n] = now() - start;
    }
    close(fd);
    return NULL;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s SOCKET CLIENTS PAIRS PACE_MS PREFIX\n", argv[0]); return 2; }
    socket_path = argv[1]; clients = atoi(argv[2]); pairs = atoi(argv[3]); pace_ms = atoi(argv[4]); prefix = argv[5];
    latencies = calloc((size_t)clients * pairs, sizeof *latencies);
    pthread_t threads[clients];
    double start = now();
    for (long i = 0; i < clients; i++) pthread_create(&threads[i], NULL, client, (void *)i);
    for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
    double wall = now() - start;
    int total = clients * pairs;
    qsort(latencies, total, sizeof *latencies, compare);
    #define P(p) (latencies[(int)((p) / 100.0 * (total - 1))] * 1000)
    printf("%d begin+end pairs from %d concurrent clients (pace %d ms) in %.2f s (%.0f pairs/s): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           total, clients, pace_ms, wall, total / wall, P(50), P(90), P(99), latencies[total - 1] * 1000);
    return 0;
}
