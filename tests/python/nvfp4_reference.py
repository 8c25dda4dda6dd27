"""Independent numpy reference for the number formats and NVFP4 (written from the format
definitions and NVIDIA ModelOpt's published recipe, not from fp4llm's code).

NVFP4 per ModelOpt: g = amax(W) / (6 * 448); per 16-element block s = E4M3(clamp(amax_b / (6 g),
2^-9, 448)), 1.0 for an all-zero block; codes E2M1(w / (float(s) * g)), ties to even;
dequantize (e2m1 * s) * g. All arithmetic in float32.
"""
import numpy as np

F32 = np.float32


def e4m3_table():
    """Value of every E4M3FN code from its definition (bias 7, S.1111.111 is NaN)."""
    vals = np.empty(256, np.float64)
    for c in range(256):
        sign, exp, man = c >> 7, (c >> 3) & 15, c & 7
        if exp == 15 and man == 7:
            vals[c] = np.nan
            continue
        mag = (man / 8) * 2.0 ** -6 if exp == 0 else (1 + man / 8) * 2.0 ** (exp - 7)
        vals[c] = -mag if sign else mag
    return vals


E4M3 = e4m3_table()
E2M1_MAGS = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float64)


def _nearest_code(a, table):
    """Index of the nearest entry of the increasing `table` to each a >= 0; ties to the even
    index; values beyond the table saturate to its last entry."""
    a = np.minimum(a.astype(np.float64), table[-1])
    hi = np.clip(np.searchsorted(table, a, side="left"), 1, len(table) - 1)
    lo = hi - 1
    d_lo, d_hi = a - table[lo], table[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    return np.where(pick_hi, hi, lo)


def e4m3_encode(x):
    x = np.asarray(x, np.float32)
    code = _nearest_code(np.abs(x), E4M3[:127]).astype(np.uint8)  # codes 0..126 are increasing
    code = np.where(np.signbit(x), code | 0x80, code).astype(np.uint8)
    return np.where(np.isnan(x), np.uint8(0x7F), code).astype(np.uint8)


def e4m3_decode(codes):
    return E4M3[np.asarray(codes, np.uint8)].astype(np.float32)


def e2m1_encode(x):
    x = np.asarray(x, np.float32)
    code = _nearest_code(np.abs(x), E2M1_MAGS).astype(np.uint8)
    code = np.where(x < 0, code | 8, code)  # the ModelOpt cast tests x < 0
    return np.where(np.isnan(x), np.uint8(7), code).astype(np.uint8)


def e2m1_decode(codes):
    codes = np.asarray(codes, np.uint8)
    mag = E2M1_MAGS[codes & 7].astype(np.float32)
    return np.where(codes & 8, -mag, mag).astype(np.float32)


def bf16_to_f32(u16):
    return (np.asarray(u16, np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), ((u >> 16) | 0x40).astype(np.uint16), r)


SCALE_SEARCH_FACTORS = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75]  # tried in order, a later one must be strictly better


def _block_scale_codes(bamax, g):
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (bamax / (F32(6.0) * g)).astype(np.float32)
    s = np.clip(s, F32(2.0 ** -9), F32(448.0))
    s = np.where(bamax == 0, F32(1.0), s).astype(np.float32)
    return e4m3_encode(s)


def _block_codes(blocks, scodes, g):
    step = (e4m3_decode(scodes) * g).astype(np.float32)
    return e2m1_encode((blocks / step[..., None]).astype(np.float32))


def _block_sq_error(blocks, scodes, g):
    """Squared error per block: float32 reconstruction, differences squared and summed in
    float64 element by element (a fixed order, so ties compare exactly)."""
    codes = _block_codes(blocks, scodes, g)
    deq = ((e2m1_decode(codes) * e4m3_decode(scodes)[..., None]).astype(np.float32) * F32(g)).astype(np.float32)
    d = blocks.astype(np.float64) - deq.astype(np.float64)
    err = np.zeros(blocks.shape[:-1], np.float64)
    for i in range(blocks.shape[-1]):
        err = err + d[..., i] * d[..., i]
    return err


def quantize_nvfp4(w, scale_search="amax"):
    """w: float32 [rows, cols]. Returns (packed uint8 [rows, cols/2], scales uint8 [rows, cols/16],
    global scale float32). scale_search "mse": per block, the E4M3 scale of amax * f / (6 g) for f
    in SCALE_SEARCH_FACTORS with the smallest squared reconstruction error (first one on ties)."""
    w = np.asarray(w, np.float32)
    rows, cols = w.shape
    amax = F32(np.max(np.abs(w))) if w.size else F32(0)
    g = F32(amax / F32(2688.0)) if amax > 0 else F32(1.0)
    blocks = w.reshape(rows, cols // 16, 16)
    bamax = np.abs(blocks).max(axis=-1).astype(np.float32)
    scodes = _block_scale_codes(bamax, g)
    if scale_search == "mse":
        best = _block_sq_error(blocks, scodes, g)
        for f in SCALE_SEARCH_FACTORS[1:]:
            cand = _block_scale_codes((bamax * F32(f)).astype(np.float32), g)
            err = _block_sq_error(blocks, cand, g)
            better = err < best
            scodes = np.where(better, cand, scodes).astype(np.uint8)
            best = np.where(better, err, best)
    codes = _block_codes(blocks, scodes, g).reshape(rows, cols)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    return packed, scodes, g


def unpack_codes(packed):
    packed = np.asarray(packed, np.uint8)
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.uint8)
    codes[:, 0::2] = packed & 0xF
    codes[:, 1::2] = packed >> 4
    return codes


def dequantize_nvfp4(packed, scodes, g):
    codes = unpack_codes(packed)
    rows, cols = codes.shape
    s = np.repeat(e4m3_decode(scodes), 16, axis=1)
    return ((e2m1_decode(codes) * s).astype(np.float32) * F32(g)).astype(np.float32)
