// dequant.cpp — GGUF tensor data to float32, block by block as ggml lays it out. Kept free of
// libtorch headers (fast to compile) and always optimised, so loading a quantised model is quick.
#include "ctorch.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = mant;
      do { m <<= 1; e++; } while ((m & 0x400) == 0);
      bits = sign | ((127 - 15 - e) << 23) | ((m & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t rd16(const uint8_t *p) { return uint16_t(p[0]) | uint16_t(p[1]) << 8; }

struct Layout { int64_t block; int64_t bytes; };

bool layout(int type, Layout &l) {
  switch (type) {
    case TW_GGML_F32: l = {1, 4}; return true;
    case TW_GGML_F16: l = {1, 2}; return true;
    case TW_GGML_BF16: l = {1, 2}; return true;
    case TW_GGML_Q8_0: l = {32, 34}; return true;
    case TW_GGML_Q4_0: l = {32, 18}; return true;
    case TW_GGML_Q4_1: l = {32, 20}; return true;
    case TW_GGML_Q4_K: l = {256, 144}; return true;
    case TW_GGML_Q6_K: l = {256, 210}; return true;
  }
  return false;
}

void scale_min_k4(int j, const uint8_t *q, uint8_t &d, uint8_t &m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

extern "C" int64_t tw_gguf_type_size(int type, int64_t n) {
  Layout l;
  if (!layout(type, l) || n < 0 || n % l.block != 0) return -1;
  return n / l.block * l.bytes;
}

extern "C" int tw_gguf_dequantize(int type, const void *data, int64_t n, float *out, char **err) {
  Layout l;
  if (!layout(type, l)) {
    if (err) *err = strdup(("unsupported ggml tensor type " + std::to_string(type)).c_str());
    return -1;
  }
  if (n % l.block != 0) {
    if (err) *err = strdup(("element count " + std::to_string(n) + " is not a multiple of the block size " + std::to_string(l.block)).c_str());
    return -1;
  }
  const uint8_t *p = static_cast<const uint8_t *>(data);
  const int64_t blocks = n / l.block;
  switch (type) {
    case TW_GGML_F32:
      std::memcpy(out, p, n * 4);
      break;
    case TW_GGML_F16:
      for (int64_t i = 0; i < n; i++) out[i] = half_to_float(rd16(p + 2 * i));
      break;
    case TW_GGML_BF16:
      for (int64_t i = 0; i < n; i++) out[i] = bf16_to_float(rd16(p + 2 * i));
      break;
    case TW_GGML_Q8_0:  // d (f16), 32 × int8
      for (int64_t b = 0; b < blocks; b++, p += 34, out += 32) {
        const float d = half_to_float(rd16(p));
        const int8_t *q = reinterpret_cast<const int8_t *>(p + 2);
        for (int j = 0; j < 32; j++) out[j] = d * q[j];
      }
      break;
    case TW_GGML_Q4_0:  // d (f16), 16 bytes: low nibbles are elements 0..15, high nibbles 16..31
      for (int64_t b = 0; b < blocks; b++, p += 18, out += 32) {
        const float d = half_to_float(rd16(p));
        for (int j = 0; j < 16; j++) {
          out[j] = d * (int(p[2 + j] & 0xF) - 8);
          out[j + 16] = d * (int(p[2 + j] >> 4) - 8);
        }
      }
      break;
    case TW_GGML_Q4_1:  // d, m (f16), 16 bytes of nibbles: x = d·q + m
      for (int64_t b = 0; b < blocks; b++, p += 20, out += 32) {
        const float d = half_to_float(rd16(p)), m = half_to_float(rd16(p + 2));
        for (int j = 0; j < 16; j++) {
          out[j] = d * (p[4 + j] & 0xF) + m;
          out[j + 16] = d * (p[4 + j] >> 4) + m;
        }
      }
      break;
    case TW_GGML_Q4_K:  // d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
      for (int64_t b = 0; b < blocks; b++, p += 144) {
        const float d = half_to_float(rd16(p)), dmin = half_to_float(rd16(p + 2));
        const uint8_t *scales = p + 4, *q = p + 16;
        int is = 0;
        for (int j = 0; j < 256; j += 64, q += 32, is += 2) {
          uint8_t sc, m;
          scale_min_k4(is, scales, sc, m);
          const float d1 = d * sc, m1 = dmin * m;
          scale_min_k4(is + 1, scales, sc, m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int k = 0; k < 32; k++) *out++ = d1 * (q[k] & 0xF) - m1;
          for (int k = 0; k < 32; k++) *out++ = d2 * (q[k] >> 4) - m2;
        }
      }
      break;
    case TW_GGML_Q6_K:  // ql[128], qh[64], int8 scales[16], d (f16)
      for (int64_t b = 0; b < blocks; b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = reinterpret_cast<const int8_t *>(p + 192);
        const float d = half_to_float(rd16(p + 208));
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, out += 128) {
          for (int k = 0; k < 32; k++) {
            const int is = k / 16;
            const int q1 = int((ql[k] & 0xF) | (((qh[k] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[k + 32] & 0xF) | (((qh[k] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[k] >> 4) | (((qh[k] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[k + 32] >> 4) | (((qh[k] >> 6) & 3) << 4)) - 32;
            out[k] = d * sc[is] * q1;
            out[k + 32] = d * sc[is + 2] * q2;
            out[k + 64] = d * sc[is + 4] * q3;
            out[k + 96] = d * sc[is + 6] * q4;
          }
        }
      }
      break;
  }
  return 0;
}
