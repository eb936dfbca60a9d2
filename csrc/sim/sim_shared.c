/* Memory shared across fork: see sim_shared.h. Each block is a mapping of
 * its own, its length in a header in front of it. */
#define _GNU_SOURCE
#include "sim_shared.h"

#include <string.h>
#include <sys/mman.h>

#define HEADER 64        /* the mapping's length; keeps the block 64-byte aligned */

static size_t *header(void *p) { return (size_t *)((char *)p - HEADER); }

void *sim_shared_calloc(size_t size)
{
    size_t len = size + HEADER;
    if (len < size)
        return NULL;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    *(size_t *)m = len;          /* a fresh mapping reads as zeros */
    return (char *)m + HEADER;
}

void *sim_shared_realloc(void *p, size_t size)
{
    void *n = sim_shared_calloc(size);
    if (!n || !p)
        return n;
    size_t old = *header(p) - HEADER;
    memcpy(n, p, old < size ? old : size);
    sim_shared_free(p);
    return n;
}

void sim_shared_free(void *p)
{
    if (p)
        munmap(header(p), *header(p));
}

void sim_shared_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}
