/* How the counter's kept leaves are best made zero again between windows: memset of the pages a window wrote, or
 * madvise(MADV_DONTNEED) on them, which gives them back to the system and brings a page fault on the next write.
 * Run by hand on Linux (not part of the build or of the test suite):
 *
 *     cc -O2 benchmarks/leaf_zeroing.c -o /tmp/leaf_zeroing && /tmp/leaf_zeroing
 *
 * Each round writes one entry in each of `pages` pages of a 512 KiB leaf, as a window does, then zeroes them; the
 * time per round is the cost per leaf per window.  A calloc and free of a whole leaf per round, what the counter
 * did before it kept leaves, is the third line; that one is cheap here only because the C library hands the same
 * memory back round after round, which it does not do in a test suite's process.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LEAF_BYTES (512 * 1024)
#define PAGE_BYTES 4096
#define ROUNDS 20000

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int
main(void)
{
    static const int counts[] = {1, 4, 16, 128};
    static const char *ways[] = {"memset", "madvise", "calloc"};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        int pages = counts[c];
        size_t stride = (size_t)PAGE_BYTES * (LEAF_BYTES / PAGE_BYTES / pages);
        for (int way = 0; way < 3; way++) {
            char *leaf = NULL;
            if (way < 2) { /* page-aligned, as madvise needs */
                leaf = mmap(NULL, LEAF_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (leaf == MAP_FAILED) {
                    return 1;
                }
            }
            double start = now();
            for (int r = 0; r < ROUNDS; r++) {
                if (way == 2 && (leaf = calloc(1, LEAF_BYTES)) == NULL) {
                    return 1;
                }
                for (int p = 0; p < pages; p++) {
                    leaf[p * stride + 8] = 1;
                }
                for (int p = 0; way < 2 && p < pages; p++) {
                    if (way == 0) {
                        memset(leaf + p * stride, 0, PAGE_BYTES);
                    }
                    else {
                        madvise(leaf + p * stride, PAGE_BYTES, MADV_DONTNEED);
                    }
                }
                if (way == 2) {
                    free(leaf);
                }
            }
            printf("%3d pages written  %-8s %8.2f us per leaf per window\n", pages, ways[way],
                   (now() - start) / ROUNDS * 1e6);
            if (way < 2) {
                munmap(leaf, LEAF_BYTES);
            }
        }
    }
    return 0;
}
