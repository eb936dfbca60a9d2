/* Intel advanced receive and transmit descriptors, shared by the 82599
 * (ixgbe) and 82576/I350 (igb) families. 82599 datasheet 7.1.6 (rx) and
 * 7.2.3.2.4 (tx). Each is 16 bytes; the NIC writes back over the read format.
 */
#ifndef IXY_DESC_H
#define IXY_DESC_H

#include <stdint.h>

union ixy_adv_rx_desc {
    struct {
        uint64_t pkt_addr;        /* packet buffer address */
        uint64_t hdr_addr;        /* header buffer address; bit 0 overlays DD */
    } read;
    struct {
        uint32_t info;            /* packet type, RSS type */
        uint32_t rss_hash;
        uint32_t status_error;    /* extended status 19:0, extended error 31:20 */
        uint16_t length;          /* PKT_LEN */
        uint16_t vlan;
    } wb;
};

union ixy_adv_tx_desc {
    struct {
        uint64_t buffer_addr;
        uint32_t cmd_type_len;    /* DTALEN 15:0, DTYP 23:20, DCMD 31:24 */
        uint32_t olinfo_status;   /* STA 3:0, PAYLEN 31:14 */
    } read;
    struct {
        uint64_t rsvd;
        uint32_t nxtseq_seed;
        uint32_t status;          /* DD is bit 0 */
    } wb;
};

_Static_assert(sizeof(union ixy_adv_rx_desc) == 16, "rx descriptor size");
_Static_assert(sizeof(union ixy_adv_tx_desc) == 16, "tx descriptor size");

/* rx write-back status (7.1.6.2) */
#define IXY_RXD_STAT_DD  0x01u
#define IXY_RXD_STAT_EOP 0x02u

/* tx data descriptor (7.2.3.2.4) */
#define IXY_TXD_DTYP_DATA 0x00300000u
/* The 82574's (e1000e) extended TCP/IP data descriptor (82574 datasheet 7.2,
 * transmit descriptors): the advanced one's dwords, buffer address, then
 * DTALEN 19:0, DTYP 23:20 = 0001b, DCMD 31:24 with the same EOP, IFCS, RS
 * and DEXT bits, then STA 3:0 (DD bit 0), POPTS 15:8, VLAN 31:16; no PAYLEN */
#define IXY_TXD_DTYP_EXT_DATA 0x00100000u
#define IXY_TXD_DCMD_EOP  0x01000000u
#define IXY_TXD_DCMD_IFCS 0x02000000u
#define IXY_TXD_DCMD_RS   0x08000000u
#define IXY_TXD_DCMD_DEXT 0x20000000u
/* MAC field, bit 19 of the advanced data descriptor's second dword: time-stamp
 * this packet (IEEE 1588; 82576 7.2.2.3, 82599 7.2.3.2.4). Advanced
 * descriptors only: in the 82574's extended one, bit 19 is part of DTALEN. */
#define IXY_TXD_MAC_1588  0x00080000u
#define IXY_TXD_PAYLEN_SHIFT 14
#define IXY_TXD_STAT_DD   0x01u

#endif
