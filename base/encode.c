/* encode.c - hex, base64/base64url and SHA-256 hex (see encode.h). */
#include "base/encode.h"

#include <openssl/evp.h>
#include <stdint.h>

static const char hex_digits[] = "0123456789abcdef";
static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void encode_hex(const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

int encode_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int encode_sha256_hex(const void *data, size_t len, char out[ENCODE_SHA256_HEX_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        out[0] = '\0';
        return -1;
    }
    encode_hex(md, md_len, out);
    return 0;
}

/* base64 of in[0..len) with the given alphabet, padded with '=' or not. */
static size_t b64_encode(const char *alphabet, int pad, const unsigned char *in, size_t len,
                         char *out, size_t out_size)
{
    size_t need = pad ? (len + 2) / 3 * 4 : (len * 4 + 2) / 3;
    if (out_size < need + 1)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        uint32_t v = (uint32_t)in[i] << 16;
        if (n > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        for (size_t k = 0; k < 4; k++) {
            if (k <= n)
                out[o++] = alphabet[(v >> (18 - 6 * k)) & 63];
            else if (pad)
                out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

size_t encode_b64url(const void *in, size_t len, char *out, size_t out_size)
{
    return b64_encode(b64_url, 0, in, len, out, out_size);
}

size_t encode_base64(const void *in, size_t len, char *out, size_t out_size)
{
    return b64_encode(b64_std, 1, in, len, out, out_size);
}

static int b64_value(int c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

long encode_b64_decode(const char *in, size_t len, int flags, unsigned char *out,
                       size_t out_size)
{
    int url = (flags & ENCODE_B64_URL) != 0, skip = (flags & ENCODE_B64_SKIP) != 0;
    if (!skip) {
        if (flags & ENCODE_B64_PADDED)
            while (len > 0 && in[len - 1] == '=')
                len--;
        if (len % 4 == 1)
            return -1;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0) {
            if (skip)
                continue;
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= out_size)
                return -1;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if ((flags & ENCODE_B64_CANONICAL) && bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}
