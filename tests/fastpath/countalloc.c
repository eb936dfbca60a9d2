/* A counting allocator for tests/fastpath/test_allocations.py, compiled by
 * the test (tests/fastpath/conftest.py) and loaded with ctypes.PyDLL; never
 * built by setup.py nor shipped.
 *
 * count_install() wraps the allocators of PYMEM_DOMAIN_OBJ (every Python
 * object) and PYMEM_DOMAIN_MEM (PyMem_Malloc: object buffers, list storage),
 * each wrapper calling the allocator it replaced, so tracemalloc or the debug
 * hooks installed before keep working. Between count_start() and
 * count_stop() every malloc, calloc and realloc made by the thread that
 * called count_start() is counted; other threads are not. Frees are not
 * counted: a transient object shows as its allocation. All calls need the GIL
 * (PyDLL holds it), as do the OBJ and MEM domains. */
#include <Python.h>

typedef struct {
    PyMemAllocatorEx prev;
} wrap_t;

static wrap_t obj_wrap, mem_wrap;
static int installed;
static int active;
static unsigned long owner;
static long long counted;

static inline void tick(void)
{
    if (active && PyThread_get_thread_ident() == owner)
        counted++;
}

static void *w_malloc(void *ctx, size_t n)
{
    wrap_t *w = ctx;
    tick();
    return w->prev.malloc(w->prev.ctx, n);
}

static void *w_calloc(void *ctx, size_t nelem, size_t elsize)
{
    wrap_t *w = ctx;
    tick();
    return w->prev.calloc(w->prev.ctx, nelem, elsize);
}

static void *w_realloc(void *ctx, void *p, size_t n)
{
    wrap_t *w = ctx;
    tick();
    return w->prev.realloc(w->prev.ctx, p, n);
}

static void w_free(void *ctx, void *p)
{
    wrap_t *w = ctx;
    w->prev.free(w->prev.ctx, p);
}

/* 0 on success, -1 if already installed */
int count_install(void)
{
    PyMemAllocatorEx a = {NULL, w_malloc, w_calloc, w_realloc, w_free};

    if (installed)
        return -1;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &obj_wrap.prev);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &mem_wrap.prev);
    a.ctx = &obj_wrap;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &a);
    a.ctx = &mem_wrap;
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &a);
    installed = 1;
    return 0;
}

/* 0 on success; -1 if not installed or if someone (tracemalloc) has wrapped
 * the wrappers since: removing them then would remove that hook too, so they
 * stay (they only forward). */
int count_uninstall(void)
{
    PyMemAllocatorEx cur_obj, cur_mem;

    if (!installed)
        return -1;
    active = 0;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &cur_obj);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &cur_mem);
    if (cur_obj.malloc != w_malloc || cur_mem.malloc != w_malloc)
        return -1;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &obj_wrap.prev);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &mem_wrap.prev);
    installed = 0;
    return 0;
}

void count_start(void)
{
    owner = PyThread_get_thread_ident();
    counted = 0;
    active = 1;
}

long long count_stop(void)
{
    active = 0;
    return counted;
}
