/* netaddr.c - address lists and the client behind trusted proxies (see netaddr.h). */
#include "base/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct net {
    unsigned char addr[16]; /* IPv4 as IPv4-mapped IPv6 */
    int bits;               /* prefix length over the 128 bits */
};

struct netaddr_list {
    size_t n;
    struct net nets[];
};

/* Text to a 16-byte address (IPv4 mapped); 0 on success. */
static int to16(const char *s, unsigned char out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, s, out) == 1 ? 0 : -1;
}

static int is_v4(const char *s)
{
    return strchr(s, ':') == NULL;
}

static int in_net(const struct net *n, const unsigned char a[16])
{
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, a, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (a[full] & mask);
}

/* Copy the next comma-separated entry of *p, trimmed, into buf; 0 at the end. */
static int next_entry(const char **p, char *buf, size_t size)
{
    while (**p == ',' || isspace((unsigned char)**p))
        (*p)++;
    if (!**p)
        return 0;
    const char *start = *p;
    while (**p && **p != ',')
        (*p)++;
    const char *end = *p;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    snprintf(buf, size, "%.*s", (int)(end - start), start);
    return 1;
}

enum as_code netaddr_list_parse(const char *text, struct netaddr_list **out, struct as_err *err)
{
    char entry[128];
    size_t n = 0;
    const char *p = text ? text : "";
    *out = NULL;
    while (next_entry(&p, entry, sizeof entry))
        n++;
    struct netaddr_list *l = calloc(1, sizeof *l + (n ? n : 1) * sizeof l->nets[0]);
    if (!l)
        return as_errf(err, AS_ENOMEM, "out of memory");
    p = text ? text : "";
    while (next_entry(&p, entry, sizeof entry)) {
        struct net *net = &l->nets[l->n];
        char *slash = strchr(entry, '/');
        long bits = -1;
        if (slash) {
            char *end;
            *slash = '\0';
            bits = strtol(slash + 1, &end, 10);
            if (end == slash + 1 || *end || bits < 0) {
                *slash = '/';
                free(l);
                return as_errf(err, AS_EINVAL, "\"%s\" is not an address or network", entry);
            }
        }
        int v4 = is_v4(entry);
        if (to16(entry, net->addr) != 0 || bits > (v4 ? 32 : 128)) {
            if (slash)
                *slash = '/';
            free(l);
            return as_errf(err, AS_EINVAL,
                           "\"%s\" is not an address or network (e.g. 10.0.0.0/8, 192.0.2.7, "
                           "2001:db8::/32)",
                           entry);
        }
        net->bits = bits < 0 ? 128 : (int)(v4 ? bits + 96 : bits);
        l->n++;
    }
    *out = l;
    return AS_OK;
}

int netaddr_list_match(const struct netaddr_list *l, const char *addr)
{
    unsigned char a[16];
    if (!l || !addr || to16(addr, a) != 0)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (in_net(&l->nets[i], a))
            return 1;
    return 0;
}

size_t netaddr_list_count(const struct netaddr_list *l)
{
    return l ? l->n : 0;
}

void netaddr_list_free(struct netaddr_list *l)
{
    free(l);
}

/*
 * One hop of Forwarded ("for=192.0.2.60;proto=https", "for=\"[2001:db8::1]:4711\"")
 * or X-Forwarded-For ("192.0.2.60", "[2001:db8::1]:4711", "192.0.2.60:1234"):
 * its address without brackets and port into out ("" when it names none).
 */
static void hop_addr(const char *hop, int forwarded, char *out, size_t size, int *https)
{
    char v[128] = "";
    out[0] = '\0';
    if (forwarded) {
        const char *p = hop;
        while (*p) {
            while (*p == ';' || isspace((unsigned char)*p))
                p++;
            const char *eq = strchr(p, '=');
            const char *semi = strchr(p, ';');
            if (!eq || (semi && semi < eq))
                break;
            size_t kl = (size_t)(eq - p);
            const char *val = eq + 1, *vend = semi ? semi : val + strlen(val);
            char tmp[128];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(vend - val), val);
            size_t tl = strlen(tmp);
            if (tl >= 2 && tmp[0] == '"' && tmp[tl - 1] == '"') {
                memmove(tmp, tmp + 1, tl - 2);
                tmp[tl - 2] = '\0';
            }
            if (kl == 3 && !strncasecmp(p, "for", 3))
                snprintf(v, sizeof v, "%s", tmp);
            else if (kl == 5 && !strncasecmp(p, "proto", 5) && https)
                *https = !strcasecmp(tmp, "https");
            p = vend;
        }
    } else {
        snprintf(v, sizeof v, "%s", hop);
    }
    if (v[0] == '[') { /* [v6]:port */
        char *close = strchr(v, ']');
        if (close) {
            snprintf(out, size, "%.*s", (int)(close - v - 1), v + 1);
            return;
        }
    }
    char *colon = strchr(v, ':');
    if (colon && !strchr(colon + 1, ':'))
        *colon = '\0'; /* IPv4:port */
    unsigned char a[16];
    if (to16(v, a) == 0)
        snprintf(out, size, "%s", v);
}

#define MAX_HOPS 32

void netaddr_client(const struct netaddr_list *trusted, const char *peer, const char *xff,
                    const char *forwarded, const char *xf_proto, char *out, size_t size,
                    int *https)
{
    snprintf(out, size, "%s", peer ? peer : "");
    if (https)
        *https = 0;
    if (!netaddr_list_match(trusted, peer))
        return;
    const char *list = forwarded && *forwarded ? forwarded : xff;
    int fwd = list == forwarded;
    if (list && *list) {
        char hops[MAX_HOPS][128];
        int n = 0, proto_https[MAX_HOPS] = {0};
        const char *p = list;
        char entry[128];
        while (n < MAX_HOPS && next_entry(&p, entry, sizeof entry)) {
            hop_addr(entry, fwd, hops[n], sizeof hops[n], &proto_https[n]);
            n++;
        }
        int client = -1;
        for (int i = n - 1; i >= 0; i--) {
            if (!hops[i][0])
                break; /* not an address: stop trusting what lies left of it */
            client = i;
            if (!netaddr_list_match(trusted, hops[i]))
                break;
        }
        if (client >= 0) {
            snprintf(out, size, "%s", hops[client]);
            if (fwd && https)
                *https = proto_https[client];
        }
    }
    if (!fwd && xf_proto && https) {
        char first[16];
        const char *q = xf_proto;
        if (next_entry(&q, first, sizeof first))
            *https = !strcasecmp(first, "https");
    }
}
