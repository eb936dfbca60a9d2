/* MSI-X of a model's PCI function, the device-independent part: see
 * sim_msix.h. PCI Local Bus 3.0, 6.8.2 (section numbers in comments refer
 * to it).
 */
#define _GNU_SOURCE
#include "sim_msix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PCI_CAP_ID_MSIX 0x11
#define MSG_CTRL 2           /* offsets in the capability */
#define TABLE_BIR 4
#define PBA_BIR 8
#define VEC_CTRL 3           /* the Vector Control dword of an entry */

static void msix_log(struct sim_msix *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msix_log(struct sim_msix *m, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m->log)
        m->log(m->log_ctx, msg);
}

/* ---- delivery ------------------------------------------------------------------- */
void sim_msix_init(struct sim_msix *m, unsigned nvec, sim_msix_log_fn *log, void *log_ctx)
{
    memset(m, 0, sizeof(*m));
    m->nvec = nvec < 1 ? 1 : nvec > SIM_MSIX_MAX_VECTORS ? SIM_MSIX_MAX_VECTORS : nvec;
    m->log = log;
    m->log_ctx = log_ctx;
    for (unsigned v = 0; v < SIM_MSIX_MAX_VECTORS; v++)
        m->efd[v] = -1;
}

void sim_msix_free(struct sim_msix *m)
{
    for (unsigned v = 0; v < SIM_MSIX_MAX_VECTORS; v++) {
        if (m->efd[v] >= 0)
            close(m->efd[v]);
        m->efd[v] = -1;
    }
}

int sim_msix_set_eventfd(struct sim_msix *m, unsigned vector, int fd)
{
    if (vector >= m->nvec)
        return EINVAL;
    int nfd = -1;
    if (fd >= 0) {
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);    /* a reference, as VFIO takes one */
        if (nfd < 0)
            return errno;
    }
    int old = m->efd[vector];
    m->efd[vector] = nfd;
    m->lost_reported &= ~(1ull << vector);
    if (old >= 0)
        close(old);
    return 0;
}

int sim_msix_attached(const struct sim_msix *m, unsigned vector)
{
    return vector < m->nvec && m->efd[vector] >= 0;
}

void sim_msix_send(struct sim_msix *m, unsigned v)
{
    if (v >= m->nvec)
        return;
    __atomic_add_fetch(&m->sent[v], 1, __ATOMIC_SEQ_CST);
    if (m->efd[v] < 0) {
        if (!(m->lost_reported & (1ull << v))) {
            m->lost_reported |= 1ull << v;
            msix_log(m, "MSI-X vector %u fired with no eventfd attached (interrupt lost)", v);
        }
        return;
    }
    uint64_t one = 1;
    ssize_t r = write(m->efd[v], &one, sizeof(one));
    (void)r;    /* EAGAIN only if the counter would overflow: the reader is woken anyway */
}

uint64_t sim_msix_sent(const struct sim_msix *m, unsigned vector)
{
    return vector < m->nvec ? __atomic_load_n(&m->sent[vector], __ATOMIC_SEQ_CST) : 0;
}

/* ---- the PCI structures ------------------------------------------------------------ */
static uint16_t control(const struct sim_msix *m)
{
    uint16_t c;
    memcpy(&c, m->cfg + m->cap + MSG_CTRL, 2);
    return c;
}

static void set_control(struct sim_msix *m, uint16_t c) { memcpy(m->cfg + m->cap + MSG_CTRL, &c, 2); }

static void st32(uint8_t *a, uint32_t v) { memcpy(a, &v, 4); }

void sim_msix_pci_init(struct sim_msix *m, uint8_t *cfg, unsigned at, unsigned next, unsigned bir,
                       uint32_t table_off, uint32_t pba_off)
{
    m->cfg = cfg;
    m->cap = at;
    m->table_off = table_off;
    m->pba_off = pba_off;
    cfg[at] = PCI_CAP_ID_MSIX;
    cfg[at + 1] = (uint8_t)next;
    st32(cfg + at + TABLE_BIR, table_off | bir);     /* 6.8.2.4: offsets are 8-byte aligned, BIR in bits 2:0 */
    st32(cfg + at + PBA_BIR, pba_off | bir);
    sim_msix_pci_reset(m);
}

void sim_msix_pci_reset(struct sim_msix *m)
{
    set_control(m, (uint16_t)(m->nvec - 1));        /* Table Size is N - 1; Enable and Function Mask 0 */
    memset(m->table, 0, sizeof(m->table));
    for (unsigned v = 0; v < m->nvec; v++)
        m->table[v][VEC_CTRL] = SIM_MSIX_VEC_MASKED;  /* 6.8.2.9: masked after reset */
    m->pba = 0;
}

int sim_msix_enabled(const struct sim_msix *m) { return m->cfg && (control(m) & SIM_MSIX_CTRL_ENABLE); }

static int masked(const struct sim_msix *m, unsigned v)
{
    return (control(m) & SIM_MSIX_CTRL_MASKALL) || (m->table[v][VEC_CTRL] & SIM_MSIX_VEC_MASKED);
}

void sim_msix_notify(struct sim_msix *m, unsigned v)
{
    if (v >= m->nvec || !sim_msix_enabled(m))
        return;
    if (masked(m, v))
        m->pba |= 1ull << v;        /* 6.8.2.10: sent when unmasked */
    else
        sim_msix_send(m, v);
}

/* A mask was cleared: the pending vectors no mask holds send their messages. */
static void unmasked(struct sim_msix *m)
{
    if (!sim_msix_enabled(m))
        return;
    for (uint64_t p = m->pba; p; p &= p - 1) {
        unsigned v = (unsigned)__builtin_ctzll(p);
        if (!masked(m, v)) {
            m->pba &= ~(1ull << v);
            sim_msix_send(m, v);
        }
    }
}

void sim_msix_clear_pending(struct sim_msix *m) { m->pba = 0; }

void sim_msix_config_write(struct sim_msix *m, uint32_t offset, unsigned size, uint32_t value)
{
    const uint16_t writable = SIM_MSIX_CTRL_ENABLE | SIM_MSIX_CTRL_MASKALL;
    if (!m->cfg)
        return;
    uint16_t old = control(m), c = old;
    for (unsigned i = 0; i < size; i++) {
        uint32_t at = offset + i;
        if (at == m->cap + MSG_CTRL || at == m->cap + MSG_CTRL + 1) {
            unsigned shift = 8 * (at - m->cap - MSG_CTRL);
            uint16_t mask = writable & (uint16_t)(0xFFu << shift);
            c = (uint16_t)((c & ~mask) | ((((value >> (8 * i)) & 0xFFu) << shift) & mask));
        }
    }
    if (c == old)
        return;
    set_control(m, c);
    unmasked(m);
}

/* Where a 32-bit access at offset falls: 0 table (*v, *w: entry and dword),
 * 1 PBA (*w: dword), -1 neither (logged). */
static int bar_decode(struct sim_msix *m, uint32_t offset, const char *what, unsigned *v, unsigned *w)
{
    uint32_t table_end = m->table_off + SIM_MSIX_ENTRY_LEN * m->nvec;
    uint32_t pba_end = m->pba_off + 8 * ((m->nvec + 63) / 64);
    if (offset & 3) {
        msix_log(m, "MSI-X BAR %s at %#x: not 32-bit aligned", what, offset);
        return -1;
    }
    if (offset >= m->table_off && offset < table_end) {
        *v = (offset - m->table_off) / SIM_MSIX_ENTRY_LEN;
        *w = (offset - m->table_off) % SIM_MSIX_ENTRY_LEN / 4;
        return 0;
    }
    if (offset >= m->pba_off && offset < pba_end) {
        *w = (offset - m->pba_off) / 4;
        return 1;
    }
    msix_log(m, "MSI-X BAR %s at %#x: neither the table (%#x..%#x) nor the PBA (%#x..%#x)", what, offset,
         m->table_off, table_end - 1, m->pba_off, pba_end - 1);
    return -1;
}

uint32_t sim_msix_bar_read(struct sim_msix *m, uint32_t offset)
{
    unsigned v = 0, w = 0;
    switch (bar_decode(m, offset, "read", &v, &w)) {
    case 0: return m->table[v][w];
    case 1: return w < 2 ? (uint32_t)(m->pba >> (32 * w)) : 0;
    default: return 0xFFFFFFFFu;
    }
}

void sim_msix_bar_write(struct sim_msix *m, uint32_t offset, uint32_t value)
{
    static const char *const field[] = {"Message Address", "Message Upper Address", "Message Data"};
    unsigned v = 0, w = 0;
    switch (bar_decode(m, offset, "write", &v, &w)) {
    case 0:
        break;
    case 1:
        msix_log(m, "write of %#x to the MSI-X PBA at %#x: the Pending Bits are read-only (6.8.2.10)", value, offset);
        return;
    default:
        return;
    }
    if (w == VEC_CTRL) {
        if (value & ~SIM_MSIX_VEC_MASKED)
            msix_log(m, "MSI-X entry %u Vector Control %#x: bits 31:1 are reserved (6.8.2.9)", v, value);
        m->table[v][VEC_CTRL] = value & SIM_MSIX_VEC_MASKED;
        if (!(value & SIM_MSIX_VEC_MASKED))
            unmasked(m);
        return;
    }
    if (!(m->table[v][VEC_CTRL] & SIM_MSIX_VEC_MASKED)) {
        msix_log(m, "MSI-X entry %u %s written while the entry is unmasked (undefined; ignored)", v, field[w]);
        return;
    }
    if (w == 0 && (value & 3)) {
        msix_log(m, "MSI-X entry %u Message Address %#x: bits 1:0 must be 0 (6.8.2.6; ignored)", v, value);
        return;
    }
    m->table[v][w] = value;
}
