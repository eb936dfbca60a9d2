/* I/O-port access for ixypy: a port BAR reached through a file (UIO
 * resourceN, VFIO region), or a device model's port functions (the sim
 * virtio-net). Every access has the register's exact width: 1, 2 or 4 bytes.
 */
#ifndef IXY_PORTIO_H
#define IXY_PORTIO_H

#include <stdint.h>

/* A device model's I/O-port BAR (csrc/sim). offset is from the BAR's start;
 * the model checks width against the register there. ctx is the model's
 * device. */
struct ixy_port_ops {
    uint32_t (*read)(void *ctx, uint32_t offset, unsigned width);
    void (*write)(void *ctx, uint32_t offset, unsigned width, uint32_t value);
    void *ctx;
};

#endif
