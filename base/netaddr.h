/*
 * netaddr.h - IP addresses and networks: the trusted reverse proxies
 * (config trusted_proxies) and who the client behind them is.
 *
 * Only a request whose socket peer is a trusted proxy may say who the client
 * is (X-Forwarded-For, Forwarded); a header from anyone else is ignored, so
 * nobody can put an address of their choosing into the audit record or
 * dodge the rate limiter.
 */
#ifndef ASSENT_BASE_NETADDR_H
#define ASSENT_BASE_NETADDR_H

#include <stddef.h>

#include "base/error.h"

struct netaddr_list;

/*
 * Parse a comma-separated list of addresses and networks ("10.0.0.0/8,
 * 192.0.2.7, 2001:db8::/32"); an empty list is valid (trusts nobody).
 * AS_EINVAL naming the entry that is neither.  *out is freed with
 * netaddr_list_free (NULL is a valid empty list).
 */
enum as_code netaddr_list_parse(const char *text, struct netaddr_list **out,
                                struct as_err *err) AS_WUR;

/* 1 when addr (text, IPv4, IPv6 or IPv4-mapped IPv6) is in the list. */
int netaddr_list_match(const struct netaddr_list *l, const char *addr);

size_t netaddr_list_count(const struct netaddr_list *l);

void netaddr_list_free(struct netaddr_list *l);

/*
 * The client of a request whose socket peer is `peer`, given its
 * X-Forwarded-For and Forwarded headers (either may be NULL) and
 * X-Forwarded-Proto: when peer is not trusted, peer itself and the headers
 * are ignored.  Otherwise the hops are walked from the right (the nearest)
 * past every trusted one; the first untrusted address is the client (all
 * trusted: the left-most).  Forwarded (RFC 7239) is used when present, else
 * X-Forwarded-For.  An entry that is not an address (a "unknown" or an
 * obfuscated name) ends the walk there: the hop before it is the client.
 * *https is 1 when a trusted proxy says the client came over https.
 */
void netaddr_client(const struct netaddr_list *trusted, const char *peer, const char *xff,
                    const char *forwarded, const char *xf_proto, char *out, size_t size,
                    int *https);

#endif
