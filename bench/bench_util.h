/* bench_util.h - what the benchmarks share (header only: each is one program). */
#ifndef ASSENT_BENCH_UTIL_H
#define ASSENT_BENCH_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * CPU time (ns, from /proc/self/task/<tid>/schedstat) of this process's
 * threads named `name` (the engine names its threads), summed; -1 when the
 * kernel does not tell.  Read while the threads live.
 */
static inline int64_t threads_cpu_ns(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    int64_t total = -1;
    while (d && (de = readdir(d))) {
        char path[300], comm[64] = "";
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strcmp(comm, name))
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", de->d_name);
        f = fopen(path, "r");
        long long ns = -1;
        if (f && fscanf(f, "%lld", &ns) == 1 && ns >= 0)
            total = (total < 0 ? 0 : total) + ns;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return total;
}

#endif
