/* lease_owner.c - claim owners and dead-process detection (see lease_owner.h). */
#include "base/lease_owner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Start time of pid in clock ticks since boot (field 22 of /proc/pid/stat), or -1. */
static long long proc_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
        if (!*p)
            return -1;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    return end == p ? -1 : v;
}

void lease_owner_make(char *buf, size_t size)
{
    char host[96] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/')
            *p = '_';
    snprintf(buf, size, "%s/%ld/%lld", host, (long)getpid(), proc_start_time((long)getpid()));
}

int lease_owner_is_dead(const char *self, const char *owner)
{
    const char *s1 = strchr(self, '/');
    const char *o1 = strchr(owner, '/');
    if (!s1 || !o1 || s1 - self != o1 - owner || strncmp(self, owner, (size_t)(s1 - self)))
        return 0; /* another host: only its lease tells */
    char *end;
    long pid = strtol(o1 + 1, &end, 10);
    if (end == o1 + 1 || *end != '/' || pid <= 0)
        return 0;
    long long start = strtoll(end + 1, NULL, 10);
    if (start < 0)
        return 0; /* it could not know its own start time: don't guess */
    if (pid == (long)getpid())
        return strcmp(self, owner) != 0;
    long long now_start = proc_start_time(pid);
    return now_start != start; /* -1: no such process */
}
