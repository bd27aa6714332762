/* test_mail_file.c - the file transport: a message becomes <id>.eml, and
 * the first write of a process to a directory removes the temporary files
 * that dead processes of this host left there, and nothing else. */
#include "tests/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "steps/mail_file.h"

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* exec, so that a leak checker has no child to report on */
        execl("/bin/true", "true", (char *)NULL);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return pid;
}

static char *make(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A file dir/<fmt ...> holding a few bytes; its path, malloc'd. */
static char *make(const char *dir, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *path = tu_path(dir, name);
    assert_int_equal(tu_write_file(path, "partial"), 0);
    return path;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_stale_temporary_files_swept(void **state)
{
    (void)state;
    char *root = tu_tmpdir("mailfile");
    char *dir = tu_path(root, "outbox");
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *host = mail_file_host();
    assert_true(host[0] && !strchr(host, '.'));

    pid_t dead = dead_pid();
    pid_t alive = getppid(); /* whoever runs this test: alive */
    char *gone = make(dir, ".m1_x.org.%s.%ld.7f00aa.tmp", host, (long)dead);
    char *ours = make(dir, ".m2.%s.%ld.7f00bb.tmp", host, (long)getpid()); /* an earlier us */
    char *running = make(dir, ".m3.%s.%ld.7f00cc.tmp", host, (long)alive);
    char *other_host = make(dir, ".m4.%s-elsewhere.%ld.7f00dd.tmp", host, (long)dead);
    char *old_format = make(dir, ".m5.%ld.7f00ee.tmp", (long)dead);
    char *not_hidden = make(dir, "m6.%s.%ld.7f00ff.tmp", host, (long)dead);
    char *message = make(dir, "m7.eml");

    char *path = NULL;
    struct as_err err = {0};
    const char msg[] = "Subject: hi\r\n\r\nbody\r\n";
    assert_int_equal(mail_file_write(dir, "<a1@assent.test>", msg, sizeof msg - 1, &path, &err),
                     AS_OK);
    char *want = tu_path(dir, "a1@assent.test.eml");
    assert_string_equal(path, want);
    char *text = tu_read_file(path);
    assert_string_equal(text, msg);

    assert_false(exists(gone));
    assert_false(exists(ours));
    assert_true(exists(running));
    assert_true(exists(other_host));
    assert_true(exists(old_format));
    assert_true(exists(not_hidden));
    assert_true(exists(message));

    /* Once per directory: what appears later is another thread's write in
     * progress as far as this process can tell, and stays. */
    char *later = make(dir, ".m8.%s.%ld.7f0011.tmp", host, (long)dead);
    char *path2 = NULL;
    assert_int_equal(mail_file_write(dir, "<a2@assent.test>", msg, sizeof msg - 1, &path2, &err),
                     AS_OK);
    assert_true(exists(later));
    assert_true(exists(path2));

    char *paths[] = {gone, ours, running, other_host, old_format, not_hidden, message,
                     later, path, path2, want, text};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        free(paths[i]);
    tu_rmrf(root);
    free(dir);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_temporary_files_swept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
