/*
 * test_plugin_files.c — what a `kind: lib:` path must be before the
 * dynamic loader sees it (src/loader/admit.c, libfile.c, trust.c):
 *
 *   - files that are not files: a FIFO once hung the load forever inside
 *     dlopen; now it, a socket, a directory, a character or block device,
 *     a link loop, a dangling link and a path through a file are each
 *     refused at once with their own message, by a load and by
 *     cpex_library_describe (alarm() turns a hang into a failure);
 *   - trust: a library that users other than root and the host's own could
 *     replace (the file or a directory above it writable by group or
 *     others — a sticky one too — or owned by another user) loads with a
 *     warning in the manager's log naming the plugin, the path, the mode
 *     or owner and the fix; strict_permissions (YAML or host option)
 *     refuses it with the same words;
 *   - pinning: `sha256:` must match the file, checked before dlopen (a
 *     library whose constructor aborts is refused on a wrong pin and the
 *     process lives on), uppercase accepted, bad hex refused with a
 *     message, a pin on a factory that does not check pins refused.
 *
 * Plugins are copied into a directory made under the build directory. The
 * cases that need a location nobody else can write skip themselves when
 * the build directory is not such a place (a checkout under /tmp).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "e2e.h"
#include "util/sha256.h"

/* ------------------------------------------------------------------ */
/* The directory, copies and a log that keeps warnings                 */
/* ------------------------------------------------------------------ */

static char base[1024];   /* a fresh directory under the build directory, mode 0755 */
static bool base_trusted; /* nobody but root and us can write it or above it */
static char logged[8192]; /* warnings, "plugin 'p': message" per line */

static void keep_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    if (level < CPEX_LOG_WARN)
        return;
    size_t len = strlen(logged);
    snprintf(logged + len, sizeof logged - len, "plugin '%s': %s\n", plugin ? plugin : "",
             message ? message : "");
}

static cpex_manager *manager(bool strict)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = keep_log;
    o.strict_permissions = strict;
    logged[0] = '\0';
    return e2e_manager_new(&o);
}

static bool trusted_dir_chain(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat st;
        if (stat(p, &st) != 0 || (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
            return false;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            break;
        *slash = '\0';
    }
    struct stat root;
    return stat("/", &root) == 0 && root.st_uid == 0 && !(root.st_mode & 022);
}

static int setup_all(void **state)
{
    (void)state;
    if (test_temp_dir(base, sizeof base, "plugin-files") != 0)
        return -1;
    base_trusted = trusted_dir_chain(base);
    if (!base_trusted)
        print_message("note: %s can be written by others; the trust cases that need a clean "
                      "location are skipped\n",
                      base);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    return test_remove_tree(base);
}

/* base/<name>, made into `buf`. */
static const char *at(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", base, name);
    return buf;
}

/* Copy library `lib` (a path) to `dst` with `mode`. */
static void copy_lib(const char *lib, const char *dst, mode_t mode)
{
    size_t len = 0;
    char *bytes = test_read_file(lib, &len);
    assert_non_null(bytes);
    unlink(dst);
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
    free(bytes);
    assert_int_equal(chmod(dst, mode), 0);
}

/* A one-plugin YAML for the library at `path`, `extra` indented YAML. */
static char *yaml_for(const char *path, const char *extra)
{
    char kind[PATH_MAX + 8];
    snprintf(kind, sizeof kind, "lib:%s", path);
    return e2e_yaml1("p", kind, E2E_PRE, extra);
}

static void load_ok(cpex_manager *m, const char *path, const char *extra)
{
    char *y = yaml_for(path, extra);
    e2e_load_ok(m, y, "files.yaml");
    free(y);
}

static char *load_refused(cpex_manager *m, const char *path, const char *extra, cpex_status code)
{
    char *y = yaml_for(path, extra);
    char *msg = e2e_load_refused(m, y, "files.yaml", code, NULL);
    free(y);
    return msg;
}

/* ------------------------------------------------------------------ */
/* Files that are not files                                            */
/* ------------------------------------------------------------------ */

/* A load of `path` fails at once naming the plugin, the path and `what`;
   a description says the same. */
static void refused_as(const char *path, const char *what)
{
    cpex_manager *m = manager(false);
    char *msg = load_refused(m, path, "", CPEX_E_LOAD);
    assert_contains(msg, "files.yaml:3:11: plugin 'p': cannot load library '");
    assert_contains(msg, path);
    assert_contains(msg, what);
    free(msg);
    cpex_manager_free(m);

    cpex_library_info *info = NULL;
    assert_int_equal(cpex_library_describe(path, NULL, &info, NULL), CPEX_OK);
    assert_false(info->usable);
    assert_false(info->loaded);
    assert_null(info->sha256);
    assert_true(info->problem_count >= 1);
    assert_contains(info->problems[0], what);
    cpex_library_info_free(info);
}

static void test_not_files(void **state)
{
    (void)state;
    alarm(60); /* a FIFO once blocked here forever */
    char p[PATH_MAX], q[PATH_MAX];

    assert_int_equal(mkfifo(at(p, sizeof p, "fifo.so"), 0644), 0);
    refused_as(p, "it is a named pipe (FIFO), not a library file");

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    at(p, sizeof p, "sock.so");
    if (strlen(p) < sizeof sa.sun_path) {
        memcpy(sa.sun_path, p, strlen(p) + 1); /* it fits: checked above */
        assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
        refused_as(p, "it is a socket, not a library file");
    }
    close(s);

    assert_int_equal(mkdir(at(p, sizeof p, "dir.so"), 0755), 0);
    refused_as(p, "it is a directory; name the library file itself");

    refused_as("/dev/null", "it is a character device, not a library file");

    /* A block device, where the machine has one to point at. */
    static const char *const disks[] = {"/dev/loop0",   "/dev/sda",  "/dev/vda",
                                        "/dev/nvme0n1", "/dev/xvda", "/dev/ram0"};
    for (size_t i = 0; i < CPEX__COUNT(disks); i++) {
        struct stat st;
        if (stat(disks[i], &st) == 0 && S_ISBLK(st.st_mode)) {
            refused_as(disks[i], "it is a block device, not a library file");
            break;
        }
    }

    assert_int_equal(symlink(at(q, sizeof q, "loop-b.so"), at(p, sizeof p, "loop-a.so")), 0);
    assert_int_equal(symlink(p, q), 0);
    refused_as(p, "its path runs into a loop of symbolic links");

    assert_int_equal(symlink(at(q, sizeof q, "gone.so"), at(p, sizeof p, "dangling.so")), 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "it is a symbolic link to '%s', which does not exist", q);
    refused_as(p, want);

    copy_lib(E2E_LIB("counter"), at(q, sizeof q, "plain.so"), 0644);
    snprintf(p, sizeof p, "%.2000s/libx.so", q);
    refused_as(p, "a part of its path that should be a directory is not one");
    alarm(0);
}

/* ------------------------------------------------------------------ */
/* Trust                                                               */
/* ------------------------------------------------------------------ */

static void test_trusted_copy_loads_quietly(void **state)
{
    (void)state;
    if (!base_trusted)
        skip();
    char p[PATH_MAX];
    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "clean.so"), 0755);
    cpex_manager *m = manager(true); /* strict: a clean file passes */
    load_ok(m, p, "");
    assert_string_equal(logged, "");
    cpex_manager_free(m);
}

/* `path` loads with one warning that names the library as `shown` (the
   resolved path) and holds each of `has`; strict refuses it. */
static void warned_then_refused(const char *path, const char *shown, const char *const *has,
                                size_t n)
{
    cpex_manager *m = manager(false);
    load_ok(m, path, "");
    assert_contains(logged, "plugin 'p': library '");
    assert_contains(logged, shown);
    assert_contains(logged, "could be replaced by users other than root and the host's own");
    assert_contains(logged, "plugin_settings.strict_permissions: true refuses such a library");
    for (size_t i = 0; i < n; i++)
        assert_contains(logged, has[i]);
    cpex_manager_free(m);

    /* strict from the configuration, then from the host's options */
    for (int from_options = 0; from_options < 2; from_options++) {
        m = manager(from_options);
        char *y = yaml_for(path, "");
        char *doc = NULL;
        assert_true(asprintf(&doc, "%s%s",
                             from_options ? "" : "plugin_settings:\n  strict_permissions: true\n",
                             y) > 0);
        char *msg = e2e_load_refused(m, doc, "files.yaml", CPEX_E_LOAD, NULL);
        assert_contains(msg, "plugin 'p': refusing library '");
        assert_contains(msg, "users other than root and the host's own could replace it");
        for (size_t i = 0; i < n; i++)
            assert_contains(msg, has[i]);
        assert_int_equal(cpex_manager_plugin_count(m), 0);
        free(msg);
        free(doc);
        free(y);
        cpex_manager_free(m);
    }
}

static void test_writable_file(void **state)
{
    (void)state;
    char p[PATH_MAX], want[PATH_MAX + 200], fix[PATH_MAX + 64];
    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "others.so"), 0757); /* chmod o+w */
    snprintf(want, sizeof want, "file '%s' is writable by others (mode 0757)", p);
    snprintf(fix, sizeof fix, "run chmod go-w '%s'", p);
    const char *has[] = {want, fix};
    warned_then_refused(p, p, has, 2);

    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "group.so"), 0775);
    snprintf(want, sizeof want, "file '%s' is writable by its group (mode 0775)", p);
    const char *has_group[] = {want};
    warned_then_refused(p, p, has_group, 1);
}

static void test_writable_directory(void **state)
{
    (void)state;
    char d[PATH_MAX], p[PATH_MAX + 16], want[2 * PATH_MAX + 200];
    assert_int_equal(mkdir(at(d, sizeof d, "open"), 0700), 0);
    assert_int_equal(chmod(d, 0777), 0);
    snprintf(p, sizeof p, "%s/lib.so", d);
    copy_lib(E2E_LIB("counter"), p, 0755);
    snprintf(want, sizeof want,
             "directory '%s' is writable by group and others (mode 0777): run chmod go-w '%s'", d,
             d);
    const char *has[] = {want};
    warned_then_refused(p, p, has, 1);

    /* Sticky counts too (decided as OpenSSH's StrictModes and sudo do). */
    assert_int_equal(mkdir(at(d, sizeof d, "sticky"), 0700), 0);
    assert_int_equal(chmod(d, 01777), 0);
    snprintf(p, sizeof p, "%s/lib.so", d);
    copy_lib(E2E_LIB("counter"), p, 0755);
    snprintf(want, sizeof want, "directory '%s' is writable by group and others (mode 1777; sticky",
             d);
    const char *has_sticky[] = {want, "keep plugins in a directory only"};
    warned_then_refused(p, p, has_sticky, 2);

    /* Reached through a link in an open directory: the link can be swapped. */
    char link[PATH_MAX + 16], target[PATH_MAX];
    copy_lib(E2E_LIB("counter"), at(target, sizeof target, "target.so"), 0755);
    snprintf(link, sizeof link, "%s/open/link.so", base);
    assert_int_equal(symlink(target, link), 0);
    snprintf(want, sizeof want, "directory '%.1000s/open' is writable by group and others", base);
    const char *has_link[] = {want};
    warned_then_refused(link, target, has_link, 1);
}

static void test_owned_by_another_user(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* only root can give a file away */
    char p[PATH_MAX], want[PATH_MAX + 200];
    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "theirs.so"), 0755);
    assert_int_equal(chown(p, 4321, 4321), 0);
    snprintf(want, sizeof want, "file '%s' is owned by uid 4321", p);
    const char *has[] = {want, "not by root (the host runs as root): run chown root"};
    warned_then_refused(p, p, has, 2);
}

/* ------------------------------------------------------------------ */
/* Pinning                                                             */
/* ------------------------------------------------------------------ */

static void file_sha256(const char *path, char hex[CPEX__SHA256_HEX + 1])
{
    size_t len = 0;
    char *bytes = test_read_file(path, &len);
    assert_non_null(bytes);
    cpex__sha256_of(bytes, len, hex);
    free(bytes);
}

static void test_sha256_pin(void **state)
{
    (void)state;
    char p[PATH_MAX], hex[CPEX__SHA256_HEX + 1], extra[200];
    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "pinned.so"), 0755);
    file_sha256(p, hex);

    /* The description gives the hash to pin. */
    cpex_library_info *info = NULL;
    assert_int_equal(cpex_library_describe(p, NULL, &info, NULL), CPEX_OK);
    assert_non_null(info->sha256);
    assert_string_equal(info->sha256, hex);
    cpex_library_info_free(info);

    cpex_manager *m = manager(false);
    snprintf(extra, sizeof extra, "    sha256: %s\n", hex);
    load_ok(m, p, extra);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    cpex_manager_free(m);

    char upper[CPEX__SHA256_HEX + 1];
    for (int i = 0; i <= CPEX__SHA256_HEX; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 'A' : hex[i]);
    m = manager(false);
    snprintf(extra, sizeof extra, "    sha256: \"%s\"\n", upper);
    load_ok(m, p, extra);
    cpex_manager_free(m);

    /* A wrong pin names both hashes. */
    m = manager(false);
    static const char wrong[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    snprintf(extra, sizeof extra, "    sha256: %s\n", wrong);
    char *msg = load_refused(m, p, extra, CPEX_E_LOAD);
    assert_contains(msg, "plugin 'p': library '");
    assert_contains(msg, "does not match its pinned sha256");
    char line[200];
    snprintf(line, sizeof line, "pinned: %s", wrong);
    assert_contains(msg, line);
    snprintf(line, sizeof line, "file:   %s", hex);
    assert_contains(msg, line);
    free(msg);
    cpex_manager_free(m);

    /* Bad hex: a configuration error at the value. */
    m = manager(false);
    msg = load_refused(
        m, p, "    sha256: 0011223344556677889gaabbccddeeff00112233445566778899aabbccddeeff\n",
        CPEX_E_CONFIG);
    assert_contains(msg, "files.yaml:5:13: plugin 'p': 'sha256' must be 64 hexadecimal digits "
                         "(the SHA-256 of the library, as `cpex inspect` prints it); character "
                         "20 ('g') is not a hex digit");
    free(msg);
    msg = load_refused(m, p, "    sha256: abc123\n", CPEX_E_CONFIG);
    assert_contains(msg, "'sha256' must be 64 hexadecimal digits (the SHA-256 of the library, "
                         "as `cpex inspect` prints it); got 6");
    free(msg);
    msg = load_refused(m, p, "    sha256: [abc]\n", CPEX_E_CONFIG);
    assert_contains(msg, "'sha256' must be a string, got a list");
    free(msg);
    cpex_manager_free(m);
}

/* The pin is checked before dlopen: a library whose constructor aborts
 * is refused on a wrong pin and this process goes on. So is strictness. */
static void test_checks_come_before_any_code(void **state)
{
    (void)state;
    char p[PATH_MAX];
    copy_lib(E2E_LIB("ctor_abort"), at(p, sizeof p, "ctor_abort.so"), 0755);
    cpex_manager *m = manager(false);
    char *msg = load_refused(
        m, p, "    sha256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        CPEX_E_LOAD);
    assert_contains(msg, "does not match its pinned sha256");
    free(msg);
    cpex_manager_free(m);

    assert_int_equal(chmod(p, 0757), 0);
    m = manager(true);
    msg = load_refused(m, p, "", CPEX_E_LOAD);
    assert_contains(msg, "refusing library '");
    free(msg);
    cpex_manager_free(m);
}

/* A pin on a plugin whose factory does not check pins is refused. */
static cpex_status bare_create(void *data, const cpex_factory_request *req,
                               cpex_factory_product *out, cpex_error *err)
{
    (void)data, (void)req, (void)err;
    static const cpex_handler_reg h[] = {CPEX_HANDLER(E2E_PRE, tp_handler, "cmf")};
    out->registration.struct_size = (uint32_t)sizeof out->registration;
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.handler_count = 1;
    out->registration.handlers = h;
    return CPEX_OK;
}

static void test_pin_nobody_checks(void **state)
{
    (void)state;
    cpex_manager *m = manager(false);
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = bare_create;
    assert_int_equal(cpex_manager_register_factory(m, "test/bare", &f, NULL), CPEX_OK);
    static const char yaml[] =
        E2E_YAML1("p", "test/bare", E2E_PRE,
                  "    sha256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    char *msg = e2e_load_refused(m, yaml, "files.yaml", CPEX_E_CONFIG, NULL);
    assert_contains(msg, "plugin 'p': 'sha256' pins a file, but the factory of kind 'test/bare' "
                         "did not check it");
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    free(msg);
    cpex_manager_free(m);
}

/* cpex_library_describe notes who could replace the library. */
static void test_describe_notes_trust(void **state)
{
    (void)state;
    char p[PATH_MAX];
    copy_lib(E2E_LIB("counter"), at(p, sizeof p, "noted.so"), 0757);
    cpex_library_info *info = NULL;
    assert_int_equal(cpex_library_describe(p, NULL, &info, NULL), CPEX_OK);
    assert_true(info->usable); /* a load only warns */
    bool noted = false;
    for (size_t i = 0; i < info->note_count; i++)
        noted = noted || (strstr(info->notes[i], "could replace this library") &&
                          strstr(info->notes[i], "is writable by others (mode 0757)"));
    assert_true(noted);
    cpex_library_info_free(info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_files),
        cmocka_unit_test(test_trusted_copy_loads_quietly),
        cmocka_unit_test(test_writable_file),
        cmocka_unit_test(test_writable_directory),
        cmocka_unit_test(test_owned_by_another_user),
        cmocka_unit_test(test_sha256_pin),
        cmocka_unit_test(test_checks_come_before_any_code),
        cmocka_unit_test(test_pin_nobody_checks),
        cmocka_unit_test(test_describe_notes_trust),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
