/* MSI-X of a model's PCI function, the part that does not depend on the
 * device (PCI Local Bus 3.0, 6.8.2), for every model (intel_msix.c,
 * virtio_model.c):
 *
 *  - Delivery: vector v's message is an 8-byte write of 1 to the eventfd
 *    attached to v (sim_msix_set_eventfd: what VFIO_DEVICE_SET_IRQS with
 *    an eventfd trigger sets up for a real device), counted. A message
 *    with no eventfd attached is lost; the model's error log says so, once
 *    per vector until an eventfd is attached.
 *  - The PCI structures (sim_msix_pci_*): the MSI-X capability in config
 *    space (Message Control: Table Size, Function Mask, MSI-X Enable; the
 *    table's and the PBA's BAR and offset), the MSI-X table (one 16-byte
 *    entry per vector: Message Address, Message Upper Address, Message
 *    Data, Vector Control with its Mask bit) and the Pending Bit Array, in
 *    a memory BAR. An event on a vector (sim_msix_notify) sends its
 *    message if MSI-X is enabled and neither the function nor the vector is
 *    masked; if only a mask stops it, its pending bit is set and the message
 *    goes when the last mask is cleared.
 *
 * The Intel model uses the delivery only: it masks and throttles vectors
 * with its own registers (EIMS/EIMC, EITR) and its config space has no
 * capability list. The virtio-net model, which has no interrupt registers
 * of its own, uses both.
 *
 * The table and PBA are accessed with aligned 32-bit reads and writes
 * (struct ixy_reg_ops). What the PCI specification leaves undefined (an
 * unaligned access, a write to the PBA, to reserved space, or to an
 * unmasked entry's address or data) is logged and ignored.
 *
 * Locking: the model serialises every call on one struct sim_msix with a
 * lock of its own (Intel: irq_lock; virtio-net: the model's lock), except
 * sim_msix_sent (atomic).
 */
#ifndef SIM_MSIX_H
#define SIM_MSIX_H

#include <stdint.h>

#define SIM_MSIX_MAX_VECTORS 64
#define SIM_MSIX_CAP_LEN 12            /* ID, next, Message Control, Table and PBA Offset/BIR */
#define SIM_MSIX_ENTRY_LEN 16
/* Message Control (6.8.2.3) */
#define SIM_MSIX_CTRL_ENABLE 0x8000u
#define SIM_MSIX_CTRL_MASKALL 0x4000u
#define SIM_MSIX_CTRL_TABLE_SIZE 0x07FFu
/* Vector Control (6.8.2.9) */
#define SIM_MSIX_VEC_MASKED 1u

/* The model's error log: msg is one formatted line. */
typedef void sim_msix_log_fn(void *ctx, const char *msg);

struct sim_msix {
    unsigned nvec;                      /* the table's size */
    sim_msix_log_fn *log;
    void *log_ctx;
    int efd[SIM_MSIX_MAX_VECTORS];      /* dup of the attached eventfd, -1: none */
    uint64_t sent[SIM_MSIX_MAX_VECTORS];/* atomic: messages sent */
    uint64_t lost_reported;             /* vectors whose lost message was logged */
    /* the PCI structures: cfg NULL while not modelled */
    uint8_t *cfg;                       /* the function's config space */
    unsigned cap;                       /* the capability's offset in it */
    uint32_t table_off, pba_off;        /* in the BAR the capability names */
    uint32_t table[SIM_MSIX_MAX_VECTORS][4];
    uint64_t pba;
};

/* ---- delivery ----------------------------------------------------------- */
/* nvec vectors (1..SIM_MSIX_MAX_VECTORS), no eventfd attached, no PCI
 * structures; log receives what the model would log. */
void sim_msix_init(struct sim_msix *m, unsigned nvec, sim_msix_log_fn *log, void *log_ctx);
/* Close the attached eventfds. */
void sim_msix_free(struct sim_msix *m);
/* Vector's messages go to a duplicate of fd (a reference, as VFIO takes
 * one); fd < 0 detaches. 0 or an errno (EINVAL: no such vector). */
int sim_msix_set_eventfd(struct sim_msix *m, unsigned vector, int fd);
int sim_msix_attached(const struct sim_msix *m, unsigned vector);
/* Send vector's message now (the model decided it goes: no mask checked). */
void sim_msix_send(struct sim_msix *m, unsigned vector);
/* Messages vector has sent (attached or not); 0 for no such vector. */
uint64_t sim_msix_sent(const struct sim_msix *m, unsigned vector);

/* ---- the PCI structures ------------------------------------------------- */
/* The capability at cfg + at (SIM_MSIX_CAP_LEN bytes), next capability at
 * next (0: the last); table and PBA in BAR bir at table_off and pba_off.
 * Then as after a function reset (sim_msix_pci_reset). */
void sim_msix_pci_init(struct sim_msix *m, uint8_t *cfg, unsigned at, unsigned next, unsigned bir,
                       uint32_t table_off, uint32_t pba_off);
/* As after a function reset: MSI-X disabled, the function unmasked, every
 * entry zero and masked, no bit pending. */
void sim_msix_pci_reset(struct sim_msix *m);
int sim_msix_enabled(const struct sim_msix *m);
/* An event on vector (6.8.2): its message, now or when unmasked. */
void sim_msix_notify(struct sim_msix *m, unsigned vector);
/* Pending bits dropped (the device no longer has the events). */
void sim_msix_clear_pending(struct sim_msix *m);
/* The part of a config-space write (offset, size, value) that falls in the
 * capability: Function Mask and MSI-X Enable are writable, the rest is
 * read-only. Unmasking sends what is pending. */
void sim_msix_config_write(struct sim_msix *m, uint32_t offset, unsigned size, uint32_t value);
/* 32-bit accesses of the BAR holding the table and the PBA. */
uint32_t sim_msix_bar_read(struct sim_msix *m, uint32_t offset);
void sim_msix_bar_write(struct sim_msix *m, uint32_t offset, uint32_t value);

#endif
