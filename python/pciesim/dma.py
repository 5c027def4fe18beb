"""Register map of the pciesim DMA engine (models/dma_endpoint/dma_regs.h),
for scripts that program the device directly."""
ID, VERSION, CTRL, STATUS = 0x000, 0x004, 0x008, 0x00C
RING_BASE_LO, RING_BASE_HI, RING_SIZE, RING_HEAD, RING_TAIL = 0x010, 0x014, 0x018, 0x01C, 0x020
CQ_BASE_LO, CQ_BASE_HI, CQ_TAIL, COMPLETED = 0x024, 0x028, 0x02C, 0x030
ERROR, ERROR_ADDR_LO, ERROR_ADDR_HI = 0x034, 0x038, 0x03C
IRQ_VECTOR, MAX_READS, PREFETCH, BYTES_READ, BYTES_WRITTEN = 0x040, 0x044, 0x048, 0x050, 0x058
ID_VALUE = 0x444D4131
CTRL_ENABLE, CTRL_RESET, CTRL_IRQ_ENABLE = 1, 2, 4
STATUS_BUSY, STATUS_HALTED = 1, 2
ERR_NONE, ERR_BUS_MASTER_DISABLED, ERR_DMA_UR, ERR_DMA_CA, ERR_DMA_TIMEOUT = 0, 1, 2, 3, 4
ERR_BAD_DESCRIPTOR, ERR_BAD_RING = 5, 6
DESC_IRQ, DESC_REPORT, DESC_SRC_LOCAL, DESC_DST_LOCAL = 1, 2, 4, 8


def descriptor(src, dst, length, flags=DESC_REPORT, xfer_size=0, cookie=1) -> bytes:
    """A 32-byte descriptor."""
    import struct
    return struct.pack("<QQIIII", src, dst, length, flags, xfer_size, cookie)


def completion(raw: bytes) -> dict:
    """Decodes a 16-byte completion record."""
    import struct
    cookie, status, nbytes, index = struct.unpack("<IIII", raw[:16])
    return {"cookie": cookie, "status": status, "bytes": nbytes, "index": index}
