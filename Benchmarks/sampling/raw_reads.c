/* The floor for one sample: open/read/close of the same counter files, in a minimal C loop.
 * usage: raw_reads ITERATIONS FILE... (a file that does not exist costs a failed open, as the
 * stand-in NVML's "lost" check does) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    int iterations = atoi(argv[1]);
    char buf[64];
    long sink = 0;
    double start = cpu();
    for (int i = 0; i < iterations; i++) {
        for (int f = 2; f < argc; f++) {
            int fd = open(argv[f], O_RDONLY);
            if (fd < 0) continue;
            ssize_t n = read(fd, buf, sizeof buf);
            sink += n > 0 ? buf[0] : 0;
            close(fd);
        }
    }
    printf("raw C reads: %d files, %.2f us CPU per sample (%ld)\n", argc - 2, (cpu() - start) / iterations * 1e6, sink % 2);
    return 0;
}
